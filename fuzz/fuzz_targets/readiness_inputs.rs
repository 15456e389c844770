//! `kir readiness`'s inputs: any bytes as a cluster dump, an API server manifest and an audit
//! policy, and whatever dump parses through every check. Never a panic; the score stays 0–100.
#![no_main]

use kir_readiness::{AuditPolicy, Flags, Input, Inventory, assess};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let flags = Flags::parse(text).ok();
    let policy = AuditPolicy::parse(text).ok();
    if let Ok((inventory, _)) = Inventory::from_json(text) {
        let report = assess(&Input {
            inventory: Some(&inventory),
            flags: flags.as_ref(),
            audit_policy: policy.as_ref(),
            ..Default::default()
        });
        assert!(report.score <= 100);
    }
});
