//! Properties of the layer reader and the tree, on every `cargo test`.

use kir_rootfs::{Tree, normalize, read_layer};
use proptest::prelude::*;

fn tar_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        let raw = h.as_old_mut();
        let n = name.len().min(99);
        raw.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// No name, however hostile, makes a path that leaves the root.
    #[test]
    fn normalized_paths_stay_inside(raw in "[a-z./\\x00-\\x1f]{0,40}") {
        if let Some(p) = normalize(&raw) {
            prop_assert!(p.starts_with('/'));
            prop_assert!(!p.split('/').any(|s| s == ".." || s == "."));
            prop_assert!(!p.contains("//"));
        }
    }

    /// Any bytes as a layer: no panic, every kept path inside the root.
    #[test]
    fn arbitrary_layers_never_panic(data in prop::collection::vec(any::<u8>(), 0..4096)) {
        let (layer, _) = read_layer(&data[..], "p", None);
        let mut t = Tree::new();
        t.apply(layer);
        for k in t.entries.keys() {
            prop_assert!(k.starts_with('/'));
        }
    }

    /// A layer cut anywhere keeps what came before the cut.
    #[test]
    fn cut_layers_keep_what_was_read(n in 1usize..6, cut in 0usize..8192) {
        let entries: Vec<(String, Vec<u8>)> = (0..n).map(|i| (format!("f{i}"), vec![b'x'; 600])).collect();
        let whole = tar_of(&entries);
        let cut = cut.min(whole.len());
        let (layer, _) = read_layer(&whole[..cut], "p", None);
        // Each member takes 512 bytes of header and 1024 of content.
        let complete = cut / 1536;
        prop_assert!(layer.entries.len() >= complete.min(n), "{} of {complete}", layer.entries.len());
    }

    /// Whiteouts remove exactly what the lower layer had under that name.
    #[test]
    fn whiteouts_remove_the_named_subtree(names in prop::collection::btree_set("[a-c]{1,2}", 1..6), victim in "[a-c]{1,2}") {
        let lower: Vec<(String, Vec<u8>)> = names.iter().map(|n| (format!("d/{n}"), b"x".to_vec())).collect();
        let mut t = Tree::new();
        t.apply(read_layer(&tar_of(&lower)[..], "l", None).0);
        let upper = vec![(format!("d/.wh.{victim}"), Vec::new())];
        t.apply(read_layer(&tar_of(&upper)[..], "u", None).0);
        for n in &names {
            prop_assert_eq!(t.get(&format!("/d/{n}")).is_some(), n != &victim);
        }
    }
}
