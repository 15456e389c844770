#!/usr/bin/env bash
# Reproduces the numbers in docs/benchmarks.md on this machine:
#   scripts/benchmarks.sh [SIZE]        (default 1G; the memory check always uses 2G)
# Builds in release mode, generates deterministic audit logs with gen-audit, then runs each
# measurement five times and keeps the best (shared machines are noisy; the best run is the one
# least disturbed). Needs jq and /usr/bin/time for the reference and the memory check.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-1G}
DIR=${KIR_BENCH_DIR:-/tmp/kir-bench}
RUNS=${KIR_BENCH_RUNS:-5}
mkdir -p "$DIR"
cargo build --release -q -p kir -p kir-bench
GEN=target/release/gen-audit
MEASURE=target/release/measure
[ -f "$DIR/audit-$SIZE.jsonl" ] || $GEN --size "$SIZE" --seed 42 "$DIR/audit-$SIZE.jsonl"
[ -f "$DIR/audit-2G.jsonl" ] || $GEN --size 2G --seed 42 "$DIR/audit-2G.jsonl"

best() { # mode threads file
  for _ in $(seq "$RUNS"); do $MEASURE "$3" --mode "$1" --threads "$2"; done | python3 scripts/bench_row.py
}

echo "| input | mode | threads | seconds | MB/s | events/s | records/s | peak RSS (MB) |"
echo "|---|---|---|---|---|---|---|---|"
for threads in 1 2; do
  for mode in parse full; do
    best "$mode" "$threads" "$DIR/audit-$SIZE.jsonl"
  done
done

if command -v jq >/dev/null; then
  t=$( { /usr/bin/time -f %e jq -c 'select(.verb=="create")' "$DIR/audit-$SIZE.jsonl" > /dev/null; } 2>&1 | tail -1)
  bytes=$(stat -c %s "$DIR/audit-$SIZE.jsonl")
  echo "| jq -c 'select(.verb==\"create\")' | reference | 1 | $t | $(python3 -c "print(round($bytes/1e6/$t))") | | | |"
fi

echo
echo "Memory of the real binary on 2 GB (full pack, all cores):"
/usr/bin/time -v target/release/kir hunt -q --format jsonl "$DIR/audit-2G.jsonl" 2> "$DIR/time.txt" > /dev/null || true
grep -E "Maximum resident set size|Elapsed" "$DIR/time.txt"
