#!/usr/bin/env bash
# kir serve's figures for docs/benchmarks.md, on this machine, on loopback, with SQLite:
#  1. accepted events/s with durable findings (as fast as it answers; then the time live detection
#     needs to catch up, so the figure is events stored AND through detection per second);
#  2. batch latency at 10,000 events/s (p50/p90/p99);
#  3. memory under a sustained overload (16 connections as fast as they can, 30 s): kir's RSS
#     sampled every second.
# Usage: scripts/serve-benchmark.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
[ "${KIR_BENCH_NO_BUILD:-}" = 1 ] || cargo build --release -q -p kir -p kir-bench
kir=target/release/kir
load=target/release/load-serve
dir=$(mktemp -d)
store="sqlite:$dir/kir.db"
ingest=$("$kir" token create --role ingest --name load --store "$store")
viewer=$("$kir" token create --role viewer --name bench --store "$store")
"$kir" serve --listen 127.0.0.1:0 --store "$store" 2> "$dir/serve.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "listening on" "$dir/serve.log" && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$dir/serve.log" | head -1)
( while kill -0 $pid 2>/dev/null; do awk '/VmRSS/ {print $2}' /proc/$pid/status; sleep 1; done ) > "$dir/rss.log" 2>/dev/null &

depth() { curl -s -H "Authorization: Bearer $viewer" "http://$addr/metrics" | awk '/^kir_detection_queue_depth / {print $2}'; }
caught_up() {
    local t0=$(date +%s.%N)
    while [ "$(depth)" != "0" ]; do sleep 0.2; done
    python3 -c "print(round($(date +%s.%N) - $t0, 2))"
}

echo "== 1. as fast as it answers ($seconds s, 4 connections, batches of 400)"
t0=$(date +%s.%N)
"$load" --addr "$addr" --token "$ingest" --rate 0 --seconds "$seconds" --connections 4 | tee "$dir/max.json"
sleep 1
lag=$(caught_up)
t1=$(date +%s.%N)
accepted=$(python3 -c "import json;d=json.load(open('$dir/max.json'));print(d['batches_accepted']*d['batch'])")
echo "live detection caught up ${lag}s after the last batch: $(python3 -c "print(round($accepted/($t1-$t0)))") events/s stored and through detection"

echo "== 2. at 10,000 events/s ($seconds s)"
buckets() { curl -s -H "Authorization: Bearer $viewer" "http://$addr/metrics" | grep '^kir_detection_latency_seconds_bucket'; }
buckets > "$dir/before.txt"
"$load" --addr "$addr" --token "$ingest" --rate 10000 --seconds "$seconds" --connections 2
caught_up > /dev/null
# From a batch stored to its findings filed (incidents opened, first pages sent), over the whole run.
buckets > "$dir/after.txt"
python3 - "$dir/before.txt" "$dir/after.txt" <<'PY'
import re, sys
def read(path):
    return {m.group(1): float(m.group(2)) for m in re.finditer(r'le="([^"]+)"\} (\S+)', open(path).read())}
before, after = read(sys.argv[1]), read(sys.argv[2])
d = {k: after[k] - before.get(k, 0) for k in after}
total = d.get("+Inf", 0) or 1
print("detection latency of this run (batch stored -> findings filed): %.0f%% of pages within 0.5 s, %.0f%% within 1 s, %.0f%% within 2.5 s"
      % (100 * d.get("0.5", 0) / total, 100 * d.get("1", 0) / total, 100 * d.get("2.5", 0) / total))
PY


echo "== 3. sustained overload (30 s, 16 connections as fast as they can)"
before=$(tail -1 "$dir/rss.log")
"$load" --addr "$addr" --token "$ingest" --rate 0 --seconds 30 --connections 16
echo "kir serve RSS: before ${before} kB, peak $(sort -n "$dir/rss.log" | tail -1) kB, samples: $(tr '\n' ' ' < "$dir/rss.log" | tail -c 400)"
