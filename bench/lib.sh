# Shared by the bench scripts (sourced, not run): a scratch folder removed on exit, and one local
# server started in the background whose URL is read off its "listening on URL" line.

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# start_server CMD ARGS…: runs the command in the background and sets URL to the address it prints.
start_server() {
  "$@" >"$WORK/server.out" &
  SERVER_PID=$!
  for _ in $(seq 100); do
    grep -q listening "$WORK/server.out" 2>/dev/null && break
    sleep 0.05
  done
  URL=$(sed -n 's/^listening on //p' "$WORK/server.out")
  if [[ -z $URL ]]; then
    echo "the server ($*) did not say where it listens" >&2
    exit 1
  fi
}
