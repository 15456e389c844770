//! A CRIU image of anything: the framing (magics, size-prefixed entries, cuts) and the protobuf
//! reader with every accessor the checkpoint inspector uses.
#![no_main]

use kir_checkpoint::proto::{Message, image};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(img) = image(data) {
        for e in img.entries {
            if let Some(m) = Message::parse(e) {
                for n in 1..20 {
                    let _ = (m.u64(n), m.string(n), m.repeated_u64(n), m.has(n));
                    if let Some(inner) = m.message(n) {
                        let _ = (inner.u32(1), inner.string(6), inner.messages(3).len());
                    }
                }
            }
        }
    }
    let _ = Message::parse(data);
});
