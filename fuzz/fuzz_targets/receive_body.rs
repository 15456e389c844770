//! A request body of anything, as `kir serve`'s receivers get it: cut into units, each keyed;
//! and the same bytes as a client certificate whose common name is read.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The same bytes as a client certificate's DER: the common-name reader never panics.
    let _ = kir_serve::tls::common_name(data);
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
