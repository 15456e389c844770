//! Criterion benchmarks of the hunt on generated data (20 MB, fixed seed): parse only vs the
//! full built-in pack, on 1 and 2 threads. `docs/benchmarks.md` has the numbers on large files.

use std::io::Write;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

// The same allocator as the kir binary: the hunt's speed depends on it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use kir_detect::{Placeholders, RuleSet};
use kir_hunt::HuntOptions;

fn bench(c: &mut Criterion) {
    let dir = std::env::temp_dir().join("kir-bench");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("audit-20m.jsonl");
    if !path.exists() {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        kir_bench::generate(&mut f, 20 << 20, 42).expect("generate");
        f.flush().expect("flush");
    }
    let size = std::fs::metadata(&path).expect("exists").len();
    let inputs = kir_audit::discover(&[path]).expect("input");
    let full = RuleSet::builtin(&Placeholders::new());
    let none = RuleSet::from_texts(&[], Placeholders::new());
    let mut group = c.benchmark_group("hunt");
    group.throughput(Throughput::Bytes(size));
    group.sample_size(10);
    for threads in [1, 2] {
        let options = HuntOptions { threads, ..Default::default() };
        group.bench_function(format!("parse-only/{threads}-thread"), |b| {
            b.iter(|| kir_hunt::hunt(&inputs, &none, &options))
        });
        group.bench_function(format!("full-pack/{threads}-thread"), |b| {
            b.iter(|| kir_hunt::hunt(&inputs, &full, &options))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
