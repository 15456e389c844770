//! A whole input file (plain, gzip, zstd, JSON lines or one document) through the reader.
#![no_main]

use kir_audit::{ReadOptions, read_all};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options = ReadOptions { batch_bytes: 4096, max_line: 2048, ..Default::default() };
    let _ = read_all(data, &options);
});
