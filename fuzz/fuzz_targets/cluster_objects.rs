//! What kir reads from an API server that it does not control: quantities (CPU, memory), label
//! selectors against labels, and Secrets redacted before they reach a bundle.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(v) = kir_cluster::top::parse_quantity(text) {
            assert!(v.is_finite() && v >= 0.0);
        }
    }
    let Ok(mut object) = serde_json::from_slice::<Value>(data) else { return };
    let labels = object.pointer("/metadata/labels").and_then(|l| l.as_object()).cloned().unwrap_or_default();
    if let Some(selector) = object.pointer("/spec/selector").cloned() {
        let _ = kir_cluster::collect::selects(&selector, &labels);
    }
    let before = object.get("data").and_then(|d| d.as_object()).cloned();
    kir_cluster::collect::redact_secret(&mut object);
    // No value survives redaction.
    if let (Some(before), Some(after)) = (before, object.get("data").and_then(|d| d.as_object())) {
        for (k, v) in after {
            let s = v.as_str().unwrap_or_default();
            assert!(s.starts_with("sha256:"), "{k} kept");
            if let Some(orig) = before.get(k).and_then(|o| o.as_str()) {
                assert!(orig.len() < 8 || !s.contains(orig), "{k} value leaked");
            }
        }
    }
});
