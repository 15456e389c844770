//! Properties of the CRIU image and protobuf readers, on every `cargo test`.

use kir_checkpoint::proto::{COMMON_MAGIC, Message, image};
use proptest::prelude::*;

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Some(img) = image(&data) {
            for e in img.entries {
                let _ = Message::parse(e).map(|m| (m.u64(1), m.string(2), m.repeated_u64(3)));
            }
        }
        let _ = Message::parse(&data);
    }

    /// Varint fields read back as written, packed or not.
    #[test]
    fn varints_round_trip(values in prop::collection::vec(any::<u64>(), 1..20), packed in any::<bool>()) {
        let mut b = Vec::new();
        if packed {
            let mut inner = Vec::new();
            for v in &values {
                varint(*v, &mut inner);
            }
            b.push((5 << 3) | 2);
            varint(inner.len() as u64, &mut b);
            b.extend_from_slice(&inner);
        } else {
            for v in &values {
                b.push(5 << 3);
                varint(*v, &mut b);
            }
        }
        let m = Message::parse(&b).unwrap();
        prop_assert_eq!(m.repeated_u64(5), values);
    }

    /// An image cut anywhere keeps its whole entries and says it was cut.
    #[test]
    fn cut_images_keep_whole_entries(sizes in prop::collection::vec(0usize..40, 1..6), cut in 0usize..400) {
        let mut b = COMMON_MAGIC.to_le_bytes().to_vec();
        b.extend_from_slice(&0x5027_3030u32.to_le_bytes());
        let mut ends = Vec::new();
        for s in &sizes {
            b.extend_from_slice(&(*s as u32).to_le_bytes());
            b.extend(std::iter::repeat_n(0x08u8, *s));
            ends.push(b.len());
        }
        let cut = (8 + cut).min(b.len());
        let img = image(&b[..cut]).unwrap();
        let whole = ends.iter().filter(|e| **e <= cut).count();
        prop_assert_eq!(img.entries.len(), whole);
        prop_assert_eq!(img.truncated, !(cut == b.len() || cut == 8 || ends.contains(&cut)));
    }
}
