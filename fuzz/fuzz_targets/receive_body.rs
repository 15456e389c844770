//! A request body of anything, as `kir serve`'s receivers get it: cut into units, each keyed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for falco in [false, true] {
        if let Ok(received) = kir_serve::receive::split(data, falco) {
            for e in &received.events {
                // Every stored unit is a piece of the body, with a key.
                assert!(!e.key.is_empty());
                assert!(std::str::from_utf8(data).is_ok_and(|t| t.contains(e.body.as_str())));
            }
        }
    }
});
