#!/usr/bin/env bash
# Run a sharded load test on Kubernetes and merge the shards' reports.
# Usage: ci/kubernetes/run.sh [NAMESPACE]
# Needs kubectl pointed at a cluster that can reach the transformer; edit load-indexed-job.yaml first.
# Exit code: the merge's (0 held, 1 contract violations, 3 a threshold breached on the whole run);
# if a shard itself broke (its exit 2, 4 or 130 fails the Job), that shard's exit code, at once.
# FIREHOSE_SHARD_TIMEOUT (seconds, default 7200) bounds the shards, FIREHOSE_MERGE_TIMEOUT (600)
# the merge, FIREHOSE_POLL_SECONDS (10) how often the Jobs are looked at.
set -euo pipefail
cd "$(dirname "$0")"
NS=${1:-default}
POLL=${FIREHOSE_POLL_SECONDS:-10}

# Wait until Job $1 is Complete or Failed, for at most $2 seconds; print which ("Timeout" if
# neither). `kubectl wait --for=condition=complete` alone would sit out the whole timeout when the
# Job fails, which is exactly when the run should stop.
wait_job() {
  local job=$1 deadline=$((SECONDS + $2)) state
  while :; do
    state=$(kubectl -n "$NS" get job "$job" \
      -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{"\n"}{end}')
    if grep -qx Failed <<<"$state"; then echo Failed; return; fi
    if grep -qx Complete <<<"$state"; then echo Complete; return; fi
    if ((SECONDS >= deadline)); then echo Timeout; return; fi
    sleep "$POLL"
  done
}

# The exit code of the first failed pod of Job $1 (1 when it cannot be read).
failed_exit_code() {
  local code
  code=$(kubectl -n "$NS" get pods -l "job-name=$1" --field-selector=status.phase=Failed \
    -o jsonpath='{.items[0].status.containerStatuses[0].state.terminated.exitCode}' || true)
  echo "${code:-1}"
}

kubectl -n "$NS" delete job firehose-load firehose-load-merge --ignore-not-found
kubectl -n "$NS" apply -f load-indexed-job.yaml
# A shard's violations or breaches are judged by the merge; "Failed" means a shard itself broke.
case $(wait_job firehose-load "${FIREHOSE_SHARD_TIMEOUT:-7200}") in
  Complete) ;;
  Failed)
    code=$(failed_exit_code firehose-load)
    echo "run.sh: a load shard failed (exit $code); its log:" >&2
    kubectl -n "$NS" logs -l job-name=firehose-load --prefix --tail=20 >&2 || true
    exit "$code"
    ;;
  *)
    echo "run.sh: the load shards did not finish within ${FIREHOSE_SHARD_TIMEOUT:-7200}s" >&2
    exit 1
    ;;
esac
kubectl -n "$NS" apply -f load-merge-job.yaml
# The merge exits 1 or 3 on findings, which fails its Job too: either way its log and code are the
# answer.
state=$(wait_job firehose-load-merge "${FIREHOSE_MERGE_TIMEOUT:-600}")
kubectl -n "$NS" logs job/firehose-load-merge || true
if [[ $state == Timeout ]]; then
  echo "run.sh: the merge did not finish within ${FIREHOSE_MERGE_TIMEOUT:-600}s" >&2
  exit 1
fi
CODE=$(kubectl -n "$NS" get pods -l job-name=firehose-load-merge \
  -o jsonpath='{.items[0].status.containerStatuses[0].state.terminated.exitCode}')
exit "${CODE:-1}"
