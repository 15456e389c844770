//! The receiver's steps of `kir serve` on one batch of the apiserver's default size (400 events
//! of a busy cluster, from the generator): cutting the EventList into keyed units, and storing
//! them durably in SQLite (one transaction, WAL).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn eventlist(round: u32) -> String {
    let mut bytes = Vec::new();
    kir_bench::generate(&mut bytes, 700 << 10, 7).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let items: Vec<String> = text
        .lines()
        .take(400)
        .map(|l| l.replacen("\"auditID\":\"", &format!("\"auditID\":\"{round:08x}"), 1))
        .collect();
    format!(r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#, items.join(","))
}

fn receive(c: &mut Criterion) {
    let body = eventlist(0);
    let mut g = c.benchmark_group("serve_receive");
    g.throughput(Throughput::Elements(400));
    g.bench_function("split_eventlist_400", |b| b.iter(|| kir_serve::receive::split(body.as_bytes(), false).unwrap()));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = rt.block_on(kir_store::Store::open(&format!("sqlite:{}", dir.path().join("b.db").display()))).unwrap();
    let mut round = 0u32;
    g.bench_function("store_400_sqlite", |b| {
        b.iter_batched(
            || {
                round += 1;
                kir_serve::receive::split(eventlist(round).as_bytes(), false).unwrap().events
            },
            |events| rt.block_on(store.append_events(&events, "bench", 0)).unwrap(),
            criterion::BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, receive);
criterion_main!(benches);
