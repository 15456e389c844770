//! Measures the hunt on a file: `measure FILE --threads N --mode parse|full`.
//! `parse` reads, decodes and merges stages with no rules; `full` runs the built-in pack.
//! Prints one JSON line: seconds, MB/s, events/s, peak resident memory.

// The hunt allocates a string per field of every event: the allocator is a large part of its
// speed, and mimalloc is about a third faster than the system's on it (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use kir_detect::{Placeholders, RuleSet};
use kir_hunt::HuntOptions;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut file = None;
    let mut threads = 1usize;
    let mut mode = "full".to_string();
    let mut batch_kb = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--threads" => {
                i += 1;
                threads = args[i].parse().expect("--threads N");
            }
            "--batch-kb" => {
                i += 1;
                batch_kb = Some(args[i].parse::<usize>().expect("--batch-kb N"));
            }
            "--mode" => {
                i += 1;
                mode = args[i].clone();
            }
            other => file = Some(other.to_string()),
        }
        i += 1;
    }
    let file = file.expect("usage: measure FILE [--threads N] [--mode parse|full]");
    let rules = match mode.as_str() {
        "parse" => RuleSet::from_texts(&[], Placeholders::new()),
        _ => RuleSet::builtin(&Placeholders::new()),
    };
    let inputs = kir_audit::discover(&[file.clone().into()]).expect("input exists");
    let size: u64 = inputs.iter().filter_map(|i| i.size).sum();
    let mut options = HuntOptions { threads, ..Default::default() };
    if let Some(kb) = batch_kb {
        options.read.batch_bytes = kb << 10;
    }
    let start = Instant::now();
    if mode == "read" {
        // Only the reader: lines cut into batches and the buffers handed back, the floor under
        // everything else.
        let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut lines = 0u64;
        for input in &inputs {
            kir_audit::read_input(input, &options.read, progress.clone(), &mut |batch| {
                lines += batch.lines.len() as u64;
                options.read.buffers.give(batch.data);
            })
            .expect("readable");
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{{\"file\":{file:?},\"mode\":\"read\",\"threads\":1,\"bytes\":{size},\"records\":{lines},\"seconds\":{secs:.3},\"mb_per_s\":{:.1},\"peak_rss_mb\":{:.1}}}",
            size as f64 / 1e6 / secs,
            kir_bench::peak_rss().unwrap_or(0) as f64 / 1e6
        );
        return;
    }
    let report = kir_hunt::hunt(&inputs, &rules, &options);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"file\":{file:?},\"mode\":{mode:?},\"threads\":{threads},\"bytes\":{size},\"records\":{},\"events\":{},\"findings\":{},\"seconds\":{secs:.3},\"mb_per_s\":{:.1},\"events_per_s\":{:.0},\"records_per_s\":{:.0},\"peak_rss_mb\":{:.1}}}",
        report.stats.records,
        report.stats.events,
        report.findings.len(),
        size as f64 / 1e6 / secs,
        report.stats.events as f64 / secs,
        report.stats.records as f64 / secs,
        kir_bench::peak_rss().unwrap_or(0) as f64 / 1e6
    );
}
