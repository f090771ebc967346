#!/usr/bin/env bash
# Run a sharded load test on Kubernetes and merge the shards' reports.
# Usage: ci/kubernetes/run.sh [NAMESPACE]
# Needs kubectl pointed at a cluster that can reach the transformer; edit load-indexed-job.yaml first.
# Exit code: the merge's (0 held, 1 contract violations, 3 a threshold breached on the whole run).
set -euo pipefail
cd "$(dirname "$0")"
NS=${1:-default}
kubectl -n "$NS" delete job firehose-load firehose-load-merge --ignore-not-found
kubectl -n "$NS" apply -f load-indexed-job.yaml
# A shard's violations or breaches are judged by the merge; "failed" means a shard itself broke.
kubectl -n "$NS" wait --for=condition=complete job/firehose-load --timeout=2h
kubectl -n "$NS" apply -f load-merge-job.yaml
kubectl -n "$NS" wait --for=condition=complete job/firehose-load-merge --timeout=10m || true
kubectl -n "$NS" logs job/firehose-load-merge
CODE=$(kubectl -n "$NS" get pods -l job-name=firehose-load-merge \
  -o jsonpath='{.items[0].status.containerStatuses[0].state.terminated.exitCode}')
exit "${CODE:-1}"
