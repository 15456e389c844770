//! A layer, export or diff tar of anything (plain, gzip or zstd): the reader, whiteouts, hard
//! links, the tree and the drift against an empty image. Every path kept stays inside the root.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (layer, _problems) = kir_rootfs::read_layer(data, "fuzz.tar", None);
    let mut tree = kir_rootfs::Tree::new();
    tree.apply(layer);
    for path in tree.entries.keys() {
        assert!(path.starts_with('/'), "{path}");
        assert!(!path.split('/').any(|p| p == ".."), "{path}");
    }
    let drift = kir_drift::compare(&kir_rootfs::Tree::new(), &tree, &Default::default());
    let _ = serde_json::to_string(&drift);
});
