#!/usr/bin/env bash
# `check --workers 1` against `check --workers 8`, side by side, on a local function that sleeps
# 100 ms per invocation (issue 16, point 1).
#
# Usage: bench/check-workers.sh
#
# Runs `check --cases 100 --records 1..10 --record-size 0..4KB` twice with one seed, prints both wall
# times and their ratio (expected: at least 6x), and checks that the two reports agree on everything
# but timing: verdict, exit code, phases, checks, and every failure with its minimal case (check,
# fingerprint, counts, minimal batch, shrink steps). The function has one bug (a record whose data
# is empty is left out of the response), so there is a minimal case to compare.
#
# H=path/to/firehose-harness uses that binary instead of building the release one. All traffic
# goes to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

SEED=${SEED:-20261130}
if [[ -z "${H:-}" ]]; then
  echo "== building firehose-harness (release)"
  cargo build --release --bin firehose-harness
  H=target/release/firehose-harness
fi

# shellcheck source=bench/lib.sh
source bench/lib.sh

# The function: 100 ms per call, many calls at once (one thread each), as a scaled-out Lambda.
cat >"$WORK/function.py" <<'PY'
import base64, json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(0.1)
        out = []
        for r in event["records"]:
            data = base64.b64decode(r["data"])
            if not data:
                continue  # the bug: an empty record is left out
            out.append({"recordId": r["recordId"], "result": "Ok", "data": r["data"]})
        body = json.dumps({"records": out}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(f"listening on http://127.0.0.1:{server.server_address[1]}/", flush=True)
server.serve_forever()
PY
start_server python3 "$WORK/function.py"

run() {
  local workers=$1
  local start end
  start=$(date +%s.%N)
  "$H" check --target "$URL" --seed "$SEED" --cases 100 --records 1..10 --record-size 0..4KB \
    --no-regressions --quiet --workers "$workers" --report-dir "$WORK/w$workers" >/dev/null 2>&1 || true
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}

echo "== check --cases 100 --records 1..10 --record-size 0..4KB against a 100 ms function (seed $SEED)"
T1=$(run 1)
T8=$(run 8)
printf 'workers 1: %6.2f s\nworkers 8: %6.2f s\nratio:     %6.2fx (expected >= 6x)\n' "$T1" "$T8" \
  "$(echo "$T1 / $T8" | bc -l)"

python3 - "$WORK/w1/report.json" "$WORK/w8/report.json" <<'PY'
import json, sys

def essence(path):
    r = json.load(open(path))
    keep = ("check", "code", "fingerprint", "count", "cases", "message", "minimal_batch", "shrink",
            "flaky", "phase", "case", "record_id")
    return {
        "verdict": r["verdict"],
        "exit_code": r["exit_code"],
        "phases": r["phases"],
        "checks": r["checks"],
        "records": r["records"],
        "failures": [{k: f.get(k) for k in keep} for f in r["failures"]],
    }

one, eight = essence(sys.argv[1]), essence(sys.argv[2])
print(f"verdict: {one['verdict']} (exit {one['exit_code']}), failures: {len(one['failures'])}")
for f in one["failures"]:
    print(f"  {f['check']}: {f['minimal_batch']} ({(f['shrink'] or {}).get('steps')} shrink steps)")
if one != eight:
    print("DIFFERENT reports:\n", json.dumps(one, indent=1), "\n", json.dumps(eight, indent=1))
    sys.exit(1)
print("identical verdicts and minimal cases")
PY
