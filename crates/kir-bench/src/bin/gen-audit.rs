//! Writes a realistic audit log of the requested size: `gen-audit --size 1G [--seed N] [--gzip] OUT`.

use std::io::{BufWriter, Write};

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n.parse().ok()?;
    Some(
        n * match unit.to_ascii_uppercase().as_str() {
            "" | "B" => 1,
            "K" | "KB" => 1 << 10,
            "M" | "MB" => 1 << 20,
            "G" | "GB" => 1 << 30,
            _ => return None,
        },
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut size = 100u64 << 20;
    let mut seed = 42u64;
    let mut gzip = false;
    let mut benign = false;
    let mut out = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--size" => {
                i += 1;
                size = args.get(i).and_then(|s| parse_size(s)).unwrap_or_else(|| usage());
            }
            "--seed" => {
                i += 1;
                seed = args.get(i).and_then(|s| s.parse().ok()).unwrap_or_else(|| usage());
            }
            "--gzip" => gzip = true,
            "--benign" => benign = true,
            "-h" | "--help" => usage(),
            other => out = Some(other.to_string()),
        }
        i += 1;
    }
    let path = out.unwrap_or_else(|| usage());
    let file = std::fs::File::create(&path).unwrap_or_else(|e| {
        eprintln!("gen-audit: {path}: {e}");
        std::process::exit(2)
    });
    let mut writer: Box<dyn Write> = if gzip {
        Box::new(flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::fast()))
    } else {
        Box::new(BufWriter::with_capacity(1 << 20, file))
    };
    match kir_bench::generate_with(&mut writer, size, seed, !benign).and_then(|r| writer.flush().map(|_| r)) {
        Ok((bytes, lines)) => eprintln!("gen-audit: wrote {bytes} bytes, {lines} lines to {path}"),
        Err(e) => {
            eprintln!("gen-audit: {path}: {e}");
            std::process::exit(2)
        }
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: gen-audit [--size 1G] [--seed 42] [--gzip] [--benign] OUT\n  Writes a realistic audit log of a busy cluster (uncompressed size); --benign leaves the attacks out."
    );
    std::process::exit(2)
}
