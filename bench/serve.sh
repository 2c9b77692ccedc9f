#!/usr/bin/env bash
# Load benchmark of `tarifa serve` (webhook ingestion and quotes), generator on the same machine.
# Usage: bench/serve.sh [sqlite|postgres ...]   (default: sqlite postgres)
# Env: WEBHOOK_RATE (20000), QUOTE_RATE (5000), DURATION (15), CONNECTIONS (1024),
#      EVENTS_PER_WEBHOOK (1), RECIPIENTS (4000), PG (postgres://postgres@127.0.0.1:5432), PSQL_DB (test),
#      TIMELINE (1: latency per second of the webhook phase).
set -euo pipefail
ulimit -n 8192 2>/dev/null || true   # both ends of every connection are on this machine
cd "$(dirname "$0")/.."
root=$PWD
# TARIFA_BIN: benchmark another build of tarifa (an earlier commit's, say) instead of this tree's.
if [ -n "${TARIFA_BIN:-}" ]; then bin=$TARIFA_BIN; else
  cargo build --release -q -p tarifa
  bin=${CARGO_TARGET_DIR:-$root/target}/release/tarifa
fi
webhook_rate=${WEBHOOK_RATE:-20000} quote_rate=${QUOTE_RATE:-5000}
# 1024 connections: a client with C requests in flight can offer at most C / latency requests
# a second, so offering 20,000/s while the acknowledgement may take up to the 50 ms target needs
# 20,000 × 0.05 = 1,000 of them (Meta delivers from a fleet of machines). With 256, any mean
# latency above 12.8 ms throttles the generator itself, and its backlog shows as latency.
duration=${DURATION:-15} conns=${CONNECTIONS:-1024} k=${EVENTS_PER_WEBHOOK:-1}
pg=${PG:-postgres://postgres@127.0.0.1:5432} port=${PORT:-18080}
backends=("$@"); [ ${#backends[@]} -gt 0 ] || backends=(sqlite postgres)
tmp=$(mktemp -d); server=""
cleanup() { [ -z "$server" ] || kill "$server" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
url=http://127.0.0.1:$port

# SQL on PostgreSQL's administrative database (creates, checkpoints and drops the bench's own).
psql_admin() { psql -q -h 127.0.0.1 -U postgres -d "${PSQL_DB:-test}" -c "$1"; }

# Checkpoints PostgreSQL has started so far (requested or timed; pg_stat_bgwriter, PostgreSQL 15).
pg_checkpoints() {
  psql -At -h 127.0.0.1 -U postgres -d "${PSQL_DB:-test}" \
    -c "select checkpoints_timed + checkpoints_req from pg_stat_bgwriter"
}

# PostgreSQL's write-ahead log position (bytes since its start).
pg_wal_bytes() {
  psql -At -h 127.0.0.1 -U postgres -d "${PSQL_DB:-test}" \
    -c "select pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"
}

# The machine's steal time, in clock ticks (8th value of the cpu line of /proc/stat).
steal_ticks() { awk '/^cpu / { print $9 }' /proc/stat; }
# Bytes and calls a process has written (wchar and syscw of /proc/PID/io).
write_io() { awk '/^wchar/ { b = $2 } /^syscw/ { c = $2 } END { print b, c }' "/proc/$1/io"; }
# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# The same, summed over the PostgreSQL server's processes (0 where there are none).
postgres_ticks() {
  local total=0 pid
  for pid in $(pgrep -x postgres || true); do
    total=$(( total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0) ))
  done
  echo "$total"
}

run_backend() { # $1 = name, $2 = database url
  local name=$1 db=$2
  TARIFA_DATABASE_URL=$db TARIFA_LISTEN=127.0.0.1:$port TARIFA_LOG=warn \
    "$bin" serve --config "$root/samples/serve.toml" 2>"$tmp/serve-$name.log" &
  server=$!
  for _ in $(seq 100); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.1; done
  curl -sf "$url/healthz" >/dev/null || { cat "$tmp/serve-$name.log"; exit 1; }
  echo "== $name: warm-up"
  "$bin" load --url "$url" --kind webhook --rate 2000 --duration 3 --connections "$conns" \
    --events-per-webhook "$k" --recipients "${RECIPIENTS:-4000}" --json >/dev/null
  # Start from a clean page cache: dirty pages of an earlier run (or of the warm-up), flushed by
  # the kernel or by PostgreSQL's checkpointer in the middle of this one, would stall its fsyncs.
  [ "$name" = sqlite ] || psql_admin checkpoint
  sync
  echo "== $name: webhooks, $webhook_rate/s for ${duration}s, $k event(s) each, $conns connections"
  local cpu0 pg0 cpu1 pg1 events
  local steal0 steal1 checkpoints0=0
  local wal0=0
  [ "$name" = sqlite ] || { checkpoints0=$(pg_checkpoints); wal0=$(pg_wal_bytes); }
  cpu0=$(cpu_ticks "$server") pg0=$(postgres_ticks) steal0=$(steal_ticks)
  local io0; io0=$(write_io "$server")
  # The generator's own CPU (user + system seconds) goes to a file: it shares the two cores.
  local timer=()
  [ ! -x /usr/bin/time ] || timer=(/usr/bin/time -f "%U %S" -o "$tmp/generator-cpu")
  "${timer[@]}" "$bin" load --url "$url" --kind webhook --rate "$webhook_rate" --duration "$duration" \
    --connections "$conns" --events-per-webhook "$k" --recipients "${RECIPIENTS:-4000}" \
    ${TIMELINE:+--timeline} | tee "$tmp/$name-webhook.txt"
  cpu1=$(cpu_ticks "$server") pg1=$(postgres_ticks) steal1=$(steal_ticks)
  local io1; io1=$(write_io "$server")
  events=$(awk -v r="$webhook_rate" -v d="$duration" -v k="$k" 'BEGIN { print int(r * d * k) }')
  # CPU time (clock ticks of 10 ms) spent per event during the webhook phase.
  echo "server CPU per event     $(( (cpu1 - cpu0) * 10000 / events )) µs"
  [ "$name" = sqlite ] || echo "PostgreSQL CPU per event $(( (pg1 - pg0) * 10000 / events )) µs"
  # A checkpoint during the phase (at 20,000 events/s PostgreSQL's default max_wal_size of 1 GB
  # lasts about 18 s) raises latency while it runs.
  [ "$name" = sqlite ] || echo "PostgreSQL checkpoints   $(( $(pg_checkpoints) - checkpoints0 ))"
  # Write-ahead log per event (the whole cluster's: other databases are idle).
  [ "$name" = sqlite ] || echo "PostgreSQL WAL per event $(( ($(pg_wal_bytes) - wal0) / events )) bytes"
  # What the server handed to write calls (files and sockets) per event: on SQLite mostly its
  # write-ahead log and checkpoints.
  echo "$io0 $io1" | awk -v e="$events" \
    '{ printf "server writes per event  %d bytes in %.1f calls\n", ($3 - $1) / e, ($4 - $2) / e }'
  [ ! -f "$tmp/generator-cpu" ] ||
    awk -v e="$events" '{ printf "generator CPU per event  %d µs\n", ($1 + $2) * 1e6 / e }' \
      "$tmp/generator-cpu"
  # Time the hypervisor gave the VM's CPUs to someone else: a noisy host shows here.
  echo "steal                    $(( steal1 - steal0 )) ticks of 10 ms over ${duration} s × 2 CPUs"
  echo "== $name: quotes, $quote_rate/s for ${duration}s"
  "$bin" load --url "$url" --kind quote --rate "$quote_rate" --duration "$duration" \
    --connections "$conns" | tee "$tmp/$name-quote.txt"
  echo "== $name: server metrics"
  curl -sf "$url/metrics" | grep -E '^tarifa_(events_|webhooks_|group_commit_seconds_(sum|count)|transaction_seconds_(sum|count)|apply_seconds_(sum|count)|webhook_ack_seconds_(sum|count))' || true
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
}

for b in "${backends[@]}"; do
  case $b in
    sqlite) run_backend sqlite "sqlite://$tmp/tarifa.db" ;;
    postgres)
      name=tarifa_bench_$(date +%s)
      psql_admin "create database $name"
      run_backend postgres "$pg/$name"
      psql_admin "drop database $name" ;;
    *) echo "unknown backend $b" >&2; exit 2 ;;
  esac
done
rm -rf "$tmp"
