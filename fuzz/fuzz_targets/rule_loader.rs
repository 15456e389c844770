//! Rule text from a user through the loader, the linter, and a match against an event.
#![no_main]

use kir_detect::{Placeholders, RuleSet, RuleText};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let set = RuleSet::from_texts(&[RuleText { path: "fuzz.yml".into(), text: text.to_string() }], Placeholders::new());
    let event = kir_audit::AuditEvent { verb: "create".into(), request_uri: "/api/v1/pods".into(), ..Default::default() };
    let mut hits = Vec::new();
    set.matching(&event, &mut hits);
    let _ = kir_detect::selftest::run_examples(&set);
});
