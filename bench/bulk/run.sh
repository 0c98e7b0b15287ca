#!/usr/bin/env bash
# Runs the bulk cases on N sessions (default 1,000,000) in a Redis of its
# own (a free loopback port, no persistence: --save '' --appendonly no),
# each case in its own process under /usr/bin/time -v, then stops Redis.
#
#   ./run.sh                  # from bench/bulk, this checkout
#   N=100000 ./run.sh
#   OUT=/tmp/after.jsonl ./run.sh
#
# Cases: seed v1; (c) migrate, every key v1 -> v2; (b) migrate again, every
# key current (read-only); (a) the SCAN + MGET baseline; (d) tsinspect
# stats and export of the namespace.
set -euo pipefail
cd "$(dirname "$0")"
N=${N:-1000000}
OUT=${OUT:-$(mktemp /tmp/bulk-XXXXXX.jsonl)}
ROOT=$(cd ../.. && pwd)
work=$(mktemp -d /tmp/bulk-run-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --dir "$work" --save '' --appendonly no --daemonize no >"$work/redis.log" 2>&1 &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
go build -o "$work/bulk" .
(cd "$ROOT/cmd/tsinspect" && go build -o "$work/tsinspect" .)
addr=127.0.0.1:$port
echo "Redis $(redis-server --version | awk '{print $3}') on $addr; $N sessions; load $(cut -d' ' -f1-3 /proc/loadavg); results in $OUT"
timed() { # name command...
	local name=$1; shift
	/usr/bin/time -v -o "$work/time" "$@"
	echo "          /usr/bin/time: $(grep -E 'Maximum resident' "$work/time" | sed 's/^\s*//'), wall $(grep -E 'Elapsed' "$work/time" | awk '{print $NF}'), CPU $(grep -E 'Percent of CPU' "$work/time" | awk '{print $NF}')"
}
"$work/bulk" -addr "$addr" -case seed -version 1 -n "$N" -json "$OUT"
timed migrate-v1 "$work/bulk" -addr "$addr" -case migrate -json "$OUT"
timed migrate-current "$work/bulk" -addr "$addr" -case migrate -json "$OUT"
timed baseline "$work/bulk" -addr "$addr" -case baseline -json "$OUT"
for cmd in stats export; do
	args=(--store "redis://$addr/0" --prefix bulk: -n s --no-progress "$cmd")
	[ "$cmd" = export ] && args+=(-o "$work/export.jsonl")
	start=$(date +%s.%N)
	/usr/bin/time -v -o "$work/time" "$work/tsinspect" "${args[@]}" >"$work/$cmd.out"
	end=$(date +%s.%N)
	echo "tsinspect $cmd: $(python3 -c "print(f'{$N/($end-$start):9.0f} sessions/s in {$end-$start:.2f}s')"), $(grep -E 'Maximum resident' "$work/time" | sed 's/^\s*//'), CPU $(grep -E 'Percent of CPU' "$work/time" | awk '{print $NF}')"
done
head -c 600 "$work/stats.out"; echo
