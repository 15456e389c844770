//! Load for `kir serve`, on loopback only: EventList batches of a busy cluster's audit events
//! (the generator of `gen-audit`), sent over keep-alive connections at a bounded rate, each
//! request's latency measured. Every batch carries audit IDs of its own (a round number written
//! over the first eight characters), so the service stores everything it is sent.
//!
//! `load-serve --addr 127.0.0.1:8080 --token TOKEN [--rate EVENTS_PER_S] [--seconds 20]
//!  [--batch 400] [--connections 4] [--seed 42]`; `--rate 0` sends as fast as it is answered.
//! Prints one JSON line: batches sent, accepted, refused (429), failed; events accepted per
//! second; latency p50, p90, p99 and max in milliseconds.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Args {
    addr: SocketAddr,
    token: String,
    rate: u64,
    seconds: u64,
    batch: usize,
    connections: usize,
    seed: u64,
}

fn parse_args() -> Args {
    let mut a = Args {
        addr: "127.0.0.1:8080".parse().unwrap(),
        token: std::env::var("KIR_TOKEN").unwrap_or_default(),
        rate: 0,
        seconds: 20,
        batch: 400,
        connections: 4,
        seed: 42,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--addr" => a.addr = value.parse().expect("--addr IP:PORT"),
            "--token" => a.token = value,
            "--rate" => a.rate = value.parse().expect("--rate EVENTS_PER_S"),
            "--seconds" => a.seconds = value.parse().expect("--seconds N"),
            "--batch" => a.batch = value.parse().expect("--batch N"),
            "--connections" => a.connections = value.parse().expect("--connections N"),
            "--seed" => a.seed = value.parse().expect("--seed N"),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    // Bounded and local by design: this is a measuring tool, not a way to flood a server.
    assert!(a.addr.ip().is_loopback(), "load-serve sends to a loopback address only");
    assert!(a.seconds <= 600, "at most 600 seconds");
    assert!(!a.token.is_empty(), "--token (an ingest token) or KIR_TOKEN");
    a
}

/// A pool of events, each split where its audit ID begins.
fn pool(seed: u64) -> Vec<(String, String)> {
    let mut bytes = Vec::new();
    kir_bench::generate(&mut bytes, 24 << 20, seed).expect("generated");
    let text = String::from_utf8(bytes).expect("UTF-8");
    text.lines()
        .filter_map(|l| {
            let at = l.find("\"auditID\":\"")? + "\"auditID\":\"".len();
            (l.len() > at + 8).then(|| (l[..at].to_string(), l[at + 8..].to_string()))
        })
        .collect()
}

fn batch_body(pool: &[(String, String)], round: u64, start: usize, size: usize) -> String {
    let mut body = String::with_capacity(size * 1500);
    body.push_str(r#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":["#);
    for i in 0..size {
        let (head, tail) = &pool[(start + i) % pool.len()];
        if i > 0 {
            body.push(',');
        }
        body.push_str(head);
        body.push_str(&format!("{:08x}", round & 0xffff_ffff));
        body.push_str(tail);
    }
    body.push_str("]}");
    body
}

/// One request on a kept-alive connection; the status.
fn post(conn: &mut Option<BufReader<TcpStream>>, addr: SocketAddr, token: &str, body: &str) -> std::io::Result<u16> {
    if conn.is_none() {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        *conn = Some(BufReader::new(s));
    }
    let reader = conn.as_mut().expect("connected");
    let s = reader.get_mut();
    write!(
        s,
        "POST /v1/audit HTTP/1.1\r\nHost: kir\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    s.write_all(body.as_bytes())?;
    let mut status = 0;
    let mut length = 0usize;
    let mut close = false;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed"));
        }
        let l = line.to_ascii_lowercase();
        if status == 0 {
            status = l.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        } else if let Some(n) = l.strip_prefix("content-length:") {
            length = n.trim().parse().unwrap_or(0);
        } else if l.starts_with("connection: close") {
            close = true;
        } else if l == "\r\n" {
            break;
        }
    }
    let mut sink = vec![0; length];
    reader.read_exact(&mut sink)?;
    if close {
        *conn = None;
    }
    Ok(status)
}

fn main() {
    let a = parse_args();
    let pool = Arc::new(pool(a.seed));
    let (sent, accepted, refused, failed) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let round = Arc::new(AtomicU64::new(1));
    let start = Instant::now();
    let end = start + Duration::from_secs(a.seconds);
    // Each connection sends its share of the rate, on a schedule (not as answers come back), so a
    // slow answer shows as latency and a fast server is not flattered.
    let per_connection = if a.rate == 0 { 0.0 } else { a.rate as f64 / a.batch as f64 / a.connections as f64 };
    let threads: Vec<_> = (0..a.connections)
        .map(|_| {
            let (pool, sent, accepted, refused, failed, latencies, round, token) = (
                pool.clone(),
                sent.clone(),
                accepted.clone(),
                refused.clone(),
                failed.clone(),
                latencies.clone(),
                round.clone(),
                a.token.clone(),
            );
            let (addr, batch) = (a.addr, a.batch);
            std::thread::spawn(move || {
                let mut conn = None;
                let mut n = 0u64;
                let mut mine = Vec::new();
                while Instant::now() < end {
                    if per_connection > 0.0 {
                        let due = start + Duration::from_secs_f64(n as f64 / per_connection);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                    n += 1;
                    let r = round.fetch_add(1, Ordering::Relaxed);
                    let body = batch_body(&pool, r, (r as usize * batch) % pool.len(), batch);
                    let t = Instant::now();
                    sent.fetch_add(1, Ordering::Relaxed);
                    // A connection the server closed (it does after a 429, whose body it did not
                    // read) is opened again once before the batch counts as failed.
                    let reused = conn.is_some();
                    let mut answer = post(&mut conn, addr, &token, &body);
                    if answer.is_err() && reused {
                        conn = None;
                        answer = post(&mut conn, addr, &token, &body);
                    }
                    match answer {
                        Ok(200) => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                            mine.push(t.elapsed().as_secs_f64() * 1000.0);
                        }
                        Ok(429) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            conn = None;
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            conn = None;
                        }
                    }
                }
                latencies.lock().unwrap().extend(mine);
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut l = latencies.lock().unwrap().clone();
    l.sort_by(|x, y| x.total_cmp(y));
    let q = |p: f64| if l.is_empty() { 0.0 } else { l[((l.len() - 1) as f64 * p).round() as usize] };
    let accepted = accepted.load(Ordering::Relaxed);
    println!(
        "{}",
        serde_json::json!({
            "seconds": (elapsed * 100.0).round() / 100.0,
            "target_events_per_s": a.rate,
            "batch": a.batch,
            "connections": a.connections,
            "batches_sent": sent.load(Ordering::Relaxed),
            "batches_accepted": accepted,
            "batches_refused_429": refused.load(Ordering::Relaxed),
            "batches_failed": failed.load(Ordering::Relaxed),
            "events_accepted_per_s": (accepted as f64 * a.batch as f64 / elapsed).round(),
            "latency_ms": {"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": q(1.0)},
        })
    );
}
