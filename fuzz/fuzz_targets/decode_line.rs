//! One line of outside input, whatever it holds, through the decoder and every field reader.
#![no_main]

use kir_audit::envelope::Line;
use kir_audit::{Envelope, Field, Fields, Origin, Record, decode, early_stage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (mut out, mut skipped) = (Vec::new(), Vec::new());
    decode(text, &Origin::new("fuzz", 1), &mut out, &mut skipped);
    assert!(!out.is_empty() || !skipped.is_empty() || text.contains("items") || text.contains("records") || text.contains("logEvents"));
    // The hunt keeps a line the quick look takes for an earlier stage undecoded: the decoder must
    // agree with it about what the line is (a line with a repeated member aside, which the
    // decoder refuses and the quick look may not see).
    if let Some((id, stage)) = early_stage(text)
        && let [Record::Audit(event)] = out.as_slice()
    {
        assert_eq!((event.audit_id.as_str(), event.stage), (id, Some(stage)));
    }
    // The envelope reader tells an earlier stage only where the quick look takes it too.
    match Envelope::read(text) {
        Line::Earlier(id) => assert_eq!(early_stage(text).map(|(id, _)| id), Some(id)),
        Line::Last(_) => assert!(early_stage(text).is_none()),
        Line::Other => {}
    }
    // A last stage the envelope reads is one the decoder reads alike: the hunt leaves it
    // undecoded when no rule can match it. (Bodies the envelope passes over are only checked for
    // their brackets: the decoder may still refuse such a line, docs/inputs.md.)
    if let Some(envelope) = Envelope::scan(text)
        && let [Record::Audit(event)] = out.as_slice()
    {
        assert_eq!(envelope.presence(), event.presence());
        // A request some rule may match is built from its envelope: it must be the decoded one.
        if let Some(built) = envelope.to_event(text, &Origin::new("fuzz", 1)) {
            assert_eq!(&built, event);
        }
        for name in ["verb", "user.username", "user.groups", "sourceIPs", "objectRef.resource", "responseStatus.code", "kir.decision"] {
            let field = Field::parse(name);
            let mut seen = Vec::new();
            if (&&envelope).any(&field, &mut |v| { seen.push(v.text().into_owned()); false }).is_some() {
                let mut decoded = Vec::new();
                field.any(event, &mut |v| { decoded.push(v.text().into_owned()); false });
                assert_eq!(seen, decoded, "{name}");
            }
        }
    }
    for record in &out {
        if let Record::Audit(event) = record {
            for name in ["verb", "user.groups", "requestObject.spec.containers.image", "kir.images", "kir.containers.args", "kir.podSpec.hostPID", "annotations.authorization.k8s.io/decision", "responseStatus.code", "kir.serviceAccount.namespace", "kir.csr.subject"] {
                Field::parse(name).any(event, &mut |v| {
                    let _ = v.text();
                    false
                });
            }
        }
    }
});
