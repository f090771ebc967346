#!/usr/bin/env bash
# firehose-harness `load` against oha, side by side, on the same local trivial transformer.
#
# Usage: bench/load-vs-oha.sh [--short]
#
#   1. saturation, equal concurrency (closed model, C callers / oha -c C), for SAT seconds each:
#        a. oha sending one fixed body;
#        b. the harness replaying that same fixed event (--event FILE), checking every response;
#        c. the harness generating a fresh batch per invocation (full generation), checking every
#           response;
#      and prints the achieved invocations/s of each and the ratios b/a and c/a.
#   2. memory: a run at 1,000 invocations/s of small batches (a few KiB) for RSS_SECONDS, sampling the
#      harness's RSS every few seconds and printing the peak (flat memory = the samples do not climb).
#
# Defaults: SAT=20s, RSS_SECONDS=600 (10 minutes), CONCURRENCY=64, ROUNDS=5 (medians of rate and of
# client CPU per invocation). --short: SAT=10s, RSS_SECONDS=60.
# RSS_SECONDS=0 skips the memory run.
# oha is installed from crates.io on first use into target/bench-tools (cargo install --root).
# All traffic goes to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

SAT=${SAT:-20}
RSS_SECONDS=${RSS_SECONDS:-600}
if [[ "${1:-}" == "--short" ]]; then
  SAT=10
  RSS_SECONDS=60
elif [[ -n "${1:-}" ]]; then
  echo "usage: $0 [--short]" >&2
  exit 2
fi
CONCURRENCY=${CONCURRENCY:-64}
ROUNDS=${ROUNDS:-5}
OHA_VERSION=${OHA_VERSION:-1.16.0}
TOOLS=target/bench-tools
# OHA=/path/to/oha uses an oha already installed; CARGO_TARGET_DIR is honoured for the build.
OHA=${OHA:-$TOOLS/bin/oha}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

if [[ ! -x $OHA ]]; then
  echo "== installing oha $OHA_VERSION into $TOOLS (first use only)"
  cargo install oha --version "$OHA_VERSION" --locked --root "$TOOLS"
fi
echo "== building firehose-harness and the trivial transformer (release)"
# HARNESS=/path/to/firehose-harness measures another build (an older commit, for a before/after).
cargo build --release --bin firehose-harness --example trivial_transformer
H=${HARNESS:-$TARGET_DIR/release/firehose-harness}
T=$TARGET_DIR/release/examples/trivial_transformer

# shellcheck source=bench/lib.sh
source bench/lib.sh

start_server "$T" 0
echo "== target: trivial transformer at $URL"

# Small batches, a few KiB: 1-8 JSON records of 256 B-1 KiB, uncompressed.
GEN=(--seed 1 --payload json --compression none --records 1..8 --record-size 256..1KiB)
# The fixed event is the median-sized one of the events the generated run sends first, so oha, the
# fixed replay and the generated run move bodies of the same typical size.
"$H" generate --count 101 "${GEN[@]}" >"$WORK/events.ndjson"
python3 - "$WORK/events.ndjson" "$WORK/event.json" <<'PY'
import sys
lines = open(sys.argv[1], "rb").read().splitlines()
median = sorted(lines, key=len)[len(lines) // 2]
open(sys.argv[2], "wb").write(median)
PY
MEAN=$(python3 -c "import sys; l=open(sys.argv[1],'rb').read().splitlines(); print(sum(map(len,l))//len(l))" "$WORK/events.ndjson")
echo "== fixed event: $(wc -c <"$WORK/event.json") bytes (median of the first 101 generated; their mean is $MEAN bytes)"

json_field() { # FILE PYTHON-EXPR
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}

echo "== saturation: $CONCURRENCY concurrent, ${SAT}s per run, $ROUNDS rounds alternating (median)"
# This machine may be shared: alternating the tools and taking medians keeps a busy moment from
# deciding the ratio.
# Each run prints "RATE CPU_US_PER_REQUEST": the client's own user+system CPU per request, which a
# busy neighbour disturbs far less than the rate.
cpu_per_request() { # TIME-FILE REQUESTS
  python3 -c "import sys; u, s = map(float, open(sys.argv[1]).read().split()[-2:]); print(round((u + s) / float(sys.argv[2]) * 1e6, 1))" "$1" "$2"
}

run_oha() {
  /usr/bin/time -f "%U %S" -o "$WORK/oha.time" "$OHA" -z "${SAT}s" -c "$CONCURRENCY" --no-tui \
    --output-format json -m POST -H 'content-type: application/json' -D "$WORK/event.json" \
    "$URL" >"$WORK/oha.json"
  local rate total
  rate=$(json_field "$WORK/oha.json" 'round(d["summary"]["requestsPerSec"], 1)')
  total=$(json_field "$WORK/oha.json" 'round(d["summary"]["requestsPerSec"] * d["summary"]["total"])')
  echo "$rate $(cpu_per_request "$WORK/oha.time" "$total")"
}

run_harness() { # NAME ARGS...
  local name=$1
  shift
  /usr/bin/time -f "%U %S" -o "$WORK/$name.time" "$H" load --target "$URL" \
    --concurrency "$CONCURRENCY" --duration "${SAT}s" \
    --report-dir "$WORK/$name" "$@" >"$WORK/$name.out" 2>&1 || {
    echo "harness run $name failed:" >&2
    cat "$WORK/$name.out" >&2
    exit 1
  }
  local rate total
  rate=$(json_field "$WORK/$name/report.json" 'round(d["load"]["rate_achieved"], 1)')
  total=$(json_field "$WORK/$name/report.json" 'd["load"]["invocations"] + d["load"]["interrupted"]')
  echo "$rate $(cpu_per_request "$WORK/$name.time" "$total")"
}

OHA_RUNS=()
FIXED_RUNS=()
GEN_RUNS=()
for round in $(seq "$ROUNDS"); do
  OHA_RUNS+=("$(run_oha)")
  FIXED_RUNS+=("$(run_harness fixed --event "$WORK/event.json")")
  GEN_RUNS+=("$(run_harness generated "${GEN[@]}")")
  echo "round $round (rate, client CPU µs/request): oha ${OHA_RUNS[-1]} · harness fixed ${FIXED_RUNS[-1]} · harness generated ${GEN_RUNS[-1]}"
done
FIXED_CHECKED=$(json_field "$WORK/fixed/report.json" 'd["load"]["invocations"]')
FIXED_VIOLATIONS=$(json_field "$WORK/fixed/report.json" 'd["load"]["violations"]')
GEN_CHECKED=$(json_field "$WORK/generated/report.json" 'd["load"]["invocations"]')
python3 - "$FIXED_CHECKED" "$GEN_CHECKED" "$FIXED_VIOLATIONS" "${OHA_RUNS[@]}" -- "${FIXED_RUNS[@]}" -- "${GEN_RUNS[@]}" <<'PY'
import statistics, sys
fixed_checked, gen_checked, violations = sys.argv[1:4]
groups = " ".join(sys.argv[4:]).split(" -- ")
(oha, fixed, gen) = [[float(x) for x in g.split()] for g in groups]
rate = lambda v: statistics.median(v[0::2])
cpu = lambda v: statistics.median(v[1::2])
print(f"oha (one fixed body, nothing checked)   median {rate(oha):9.1f} req/s   {cpu(oha):5.1f} µs CPU/request")
print(f"harness, fixed event (--event)          median {rate(fixed):9.1f} inv/s   {cpu(fixed):5.1f} µs CPU/invocation  (last run: {fixed_checked} responses contract-checked, {violations} violations)")
print(f"harness, generated events               median {rate(gen):9.1f} inv/s   {cpu(gen):5.1f} µs CPU/invocation  (last run: {gen_checked} responses contract-checked)")
print(f"ratio fixed/oha                         {rate(fixed) / rate(oha):.2f}x rate   {cpu(oha) / cpu(fixed):.2f}x CPU efficiency")
print(f"ratio generated/oha                     {rate(gen) / rate(oha):.2f}x rate   {cpu(oha) / cpu(gen):.2f}x CPU efficiency")
PY

if [[ $RSS_SECONDS -eq 0 ]]; then exit 0; fi
echo "== memory: 1,000 invocations/s of small batches for ${RSS_SECONDS}s"
/usr/bin/time -f "%M" -o "$WORK/rss.max" "$H" load --target "$URL" --rate 1000 \
  --duration "${RSS_SECONDS}s" "${GEN[@]}" --report-dir "$WORK/rss" >"$WORK/rss.out" 2>&1 &
TIME_PID=$!
SAMPLES=()
STEP=$((RSS_SECONDS / 10))
[[ $STEP -lt 1 ]] && STEP=1
while kill -0 "$TIME_PID" 2>/dev/null; do
  sleep "$STEP"
  LOAD_PID=$(pgrep -P "$TIME_PID" || true)
  if [[ -n $LOAD_PID && -r /proc/$LOAD_PID/status ]]; then
    RSS=$(awk '/^VmRSS:/ {print $2}' "/proc/$LOAD_PID/status" 2>/dev/null || true)
    if [[ -n $RSS ]]; then SAMPLES+=("$((RSS / 1024))"); fi
  fi
done
wait "$TIME_PID" || { cat "$WORK/rss.out" >&2; exit 1; }
RSS_INV=$(json_field "$WORK/rss/report.json" 'd["load"]["invocations"]')
RSS_RATE=$(json_field "$WORK/rss/report.json" 'round(d["load"]["rate_achieved"], 1)')
RSS_P99=$(json_field "$WORK/rss/report.json" 'd["load"]["latency"]["response_time"]["p99"]')
echo "run: ${RSS_INV} invocations in ${RSS_SECONDS}s (${RSS_RATE}/s achieved, corrected p99 ${RSS_P99} µs)"
echo "RSS every ${STEP}s (MiB): ${SAMPLES[*]}"
echo "peak RSS (GNU time, max resident): $(($(tail -1 "$WORK/rss.max") / 1024)) MiB"
