#!/usr/bin/env bash
# kir serve as replicas on one PostgreSQL, on loopback, for docs/benchmarks.md ("Replicas"):
#  1. throughput with 1, 2 and 3 replicas, the load spread over them (one load-serve each);
#  2. faults under a steady load of 2 x 2,500 events/s on 2 replicas:
#     a. one replica killed with kill -9 half-way (its sender sees failures; the other goes on);
#     b. PostgreSQL restarted half-way (pg_ctl restart -m fast);
#     c. PostgreSQL slow: the events table locked for 10 s (inserts wait), then free again;
#     with the replicas' RSS sampled every second.
# PostgreSQL is started here, in a temporary directory, on a free port (Debian's postgresql).
# Usage: scripts/replicas-benchmark.sh [SECONDS] [PARTS]   (PARTS: any of 1 2a 2b 2c, default all)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
parts=${2:-1 2a 2b 2c}
want() { [[ " $parts " == *" $1 "* ]]; }
[ "${KIR_BENCH_NO_BUILD:-}" = 1 ] || cargo build --release -q -p kir -p kir-bench
kir=$PWD/target/release/kir
load=$PWD/target/release/load-serve
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
dir=$(mktemp -d)
chmod 777 "$dir"
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
as_pg "$bin/initdb -D $dir/pg -U kir --auth=trust -E UTF8" > /dev/null
pg_start() { as_pg "$bin/pg_ctl -D $dir/pg -o '-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200' -l $dir/pg.log -w start" > /dev/null; }
pg_start
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; as_pg "$bin/pg_ctl -D $dir/pg -m immediate stop" > /dev/null 2>&1 || true; }
trap cleanup EXIT
psql() { "$bin/psql" -h 127.0.0.1 -p "$port" -U kir -d "$1" -qAt -c "$2"; }

# start_replicas DB N: N replicas on a fresh database; their addresses in $addrs, pids in $serve_pids.
start_replicas() {
    local db=$1 n=$2
    psql postgres "CREATE DATABASE $db" > /dev/null
    store="postgres://kir@127.0.0.1:$port/$db"
    ingest=$("$kir" token create --role ingest --name load --store "$store")
    viewer=$("$kir" token create --role viewer --name bench --store "$store")
    addrs=(); serve_pids=()
    for i in $(seq "$n"); do
        "$kir" serve --listen 127.0.0.1:0 --store "$store" 2> "$dir/$db-$i.log" &
        serve_pids+=($!); pids+=($!)
        for _ in $(seq 100); do grep -q "listening on" "$dir/$db-$i.log" && break; sleep 0.1; done
        addrs+=("$(sed -n 's/^listening on //p' "$dir/$db-$i.log" | head -1)")
    done
}
stop_replicas() { for p in "${serve_pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
sample_rss() { ( while true; do for p in "$@"; do awk -v p="$p" '/VmRSS/ {printf "%s:%s ", p, $2}' /proc/$p/status 2>/dev/null; done; echo; sleep 1; done ) > "$dir/rss.log" & pids+=($!); rss_pid=$!; }
summary() {
    python3 - "$@" <<'PY'
import json, sys
runs = [json.load(open(p)) for p in sys.argv[1:]]
total = sum(r["events_accepted_per_s"] for r in runs)
print("  %d events/s accepted in all; per replica: %s; p99 %s ms; refused (429) %d, failed %d batches"
      % (total, ", ".join(str(int(r["events_accepted_per_s"])) for r in runs),
         "/".join(str(r["latency_ms"]["p99"]) for r in runs),
         sum(r["batches_refused_429"] for r in runs), sum(r["batches_failed"] for r in runs)))
PY
}

if want 1; then
echo "== 1. throughput: 1, 2, 3 replicas, $seconds s, as fast as they answer (2 connections per replica)"
for n in 1 2 3; do
    start_replicas "t$n" "$n"
    outs=()
    for i in $(seq "$n"); do
        "$load" --addr "${addrs[$((i-1))]}" --token "$ingest" --rate 0 --seconds "$seconds" --connections 2 --seed "$((40+i))" > "$dir/t$n-$i.json" &
        outs+=("$dir/t$n-$i.json")
    done
    while pgrep -f "$load" > /dev/null; do sleep 0.5; done
    stored=$(psql "t$n" "SELECT count(*) FROM stream_events")
    echo "$n replica(s):"; summary "${outs[@]}"; echo "  stored: $stored events"
    stop_replicas
done
fi

# fault_load NAME [CONNECTIONS]: 2,500 events/s at each replica.
fault_load() {
    local c=${2:-2}
    "$load" --addr "${addrs[0]}" --token "$ingest" --rate 2500 --seconds "$seconds" --connections "$c" --seed 51 > "$dir/$1-1.json" &
    "$load" --addr "${addrs[1]}" --token "$ingest" --rate 2500 --seconds "$seconds" --connections "$c" --seed 52 > "$dir/$1-2.json" &
}
wait_load() { while pgrep -f "$load" > /dev/null; do sleep 0.5; done; }
rss_peak() { tr ' ' '\n' < "$dir/rss.log" | awk -F: 'NF==2 && $2>m {m=$2} END {print m+0}'; }

if want 2a; then
echo "== 2a. kill -9 of one replica half-way (2 replicas, 2 x 2,500 events/s, $seconds s)"
start_replicas fa 2; sample_rss "${serve_pids[@]}"
fault_load fa; sleep $((seconds / 2)); kill -9 "${serve_pids[1]}"; wait_load
summary "$dir/fa-1.json" "$dir/fa-2.json"
echo "  stored: $(psql fa "SELECT count(*) FROM stream_events") events; the survivor leads: $(curl -s -H "Authorization: Bearer $viewer" "http://${addrs[0]}/metrics" | awk '/^kir_leader / {print $2}')"
kill "$rss_pid" 2>/dev/null || true; stop_replicas

fi
if want 2b; then
echo "== 2b. PostgreSQL restarted half-way"
start_replicas fb 2; sample_rss "${serve_pids[@]}"
fault_load fb; sleep $((seconds / 2))
t0=$(date +%s.%N); as_pg "$bin/pg_ctl -D $dir/pg -m fast stop" > /dev/null; pg_start; t1=$(date +%s.%N)
wait_load
echo "  PostgreSQL was down $(python3 -c "print(round($t1-$t0,1))") s"
summary "$dir/fb-1.json" "$dir/fb-2.json"
echo "  stored: $(psql fb "SELECT count(*) FROM stream_events") events; RSS peak $(rss_peak) kB"
for a in "${addrs[@]}"; do curl -s -o /dev/null -w "  /readyz at $a after the restart: %{http_code}\n" "http://$a/readyz"; done
kill "$rss_pid" 2>/dev/null || true; stop_replicas

fi
if want 2c; then
# 16 connections per replica: while the table is locked, the batches waiting pass the
# replica's --max-in-flight (8) and the rest are refused with 429 instead of queued.
echo "== 2c. PostgreSQL slow: the events table locked for 10 s half-way (16 connections per replica)"
start_replicas fc 2; sample_rss "${serve_pids[@]}"
fault_load fc 16; sleep $((seconds / 2))
psql fc "BEGIN; LOCK TABLE stream_events IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(10); COMMIT;" > /dev/null
wait_load
summary "$dir/fc-1.json" "$dir/fc-2.json"
echo "  stored: $(psql fc "SELECT count(*) FROM stream_events") events; RSS peak $(rss_peak) kB (samples: $(wc -l < "$dir/rss.log"))"
kill "$rss_pid" 2>/dev/null || true; stop_replicas
fi
