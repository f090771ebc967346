#!/usr/bin/env bash
# Container images built without a registry: static binaries compiled on this host (glibc linked
# statically: the musl target is not needed) and COPY'd into FROM scratch images. Nothing is
# compiled inside Docker and nothing is pulled.
#
#   ci/docker/build.sh                                   # image firehose-harness:latest
#   ci/docker/build.sh --tag registry.example.com/team/firehose-harness:1.0
#   docker push registry.example.com/team/firehose-harness:1.0
#   ci/docker/build.sh --function my-example-fn:latest  # also the example function image
#
# Options: --profile release|dev (default release), --tag REF, --function REF, --base IMAGE (the
# harness image's base, default scratch; one with a shell, e.g. busybox:1.36, for CI jobs and the
# Kubernetes Jobs, which run it through sh).
# Binaries are cached under target/docker/ (cargo rebuilds only what changed) and an image is
# rebuilt only when its files changed (their digest is the image's
# dev.firehose-harness.content label). One build at a time (a lock under target/docker/).
# The built references are printed on stdout, one per line; progress goes to stderr.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
profile=release
tag=firehose-harness:latest
function_tag=""
base=scratch
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --function) function_tag=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    *) echo "build.sh: unknown argument \`$1\` (see the header of $0)" >&2; exit 2 ;;
  esac
done
# dev: for tests, compiled as fast as possible (every crate unoptimised, where the workspace's
# dev profile optimises dependencies).
case "$profile" in
  dev) out_dir=debug; profile_var=DEV; fast=(--config 'profile.dev.package."*".opt-level=0') ;;
  release) out_dir=release; profile_var=RELEASE; fast=() ;;
  *) echo "build.sh: --profile is release or dev" >&2; exit 2 ;;
esac
triple=x86_64-unknown-linux-gnu
target_dir=$root/target/docker
mkdir -p "$target_dir"
exec 9>"$target_dir/.lock"
flock 9

packages=(-p firehose-harness)
[ -n "$function_tag" ] && packages+=(-p rust-transformer)
# An outer cargo's encoded flags would override RUSTFLAGS. No debug info: the image needs none.
(cd "$root" && env -u CARGO_ENCODED_RUSTFLAGS \
  RUSTFLAGS='-C target-feature=+crt-static' \
  CARGO_TARGET_DIR="$target_dir" \
  "CARGO_PROFILE_${profile_var}_DEBUG=false" \
  "CARGO_PROFILE_${profile_var}_STRIP=debuginfo" \
  "${CARGO:-cargo}" build "${fast[@]}" --profile "$profile" --target "$triple" "${packages[@]}" >&2)
bin=$target_dir/$triple/$out_dir

# build_image DOCKERFILE REF BASE FILE...: a context of just FILEs, built unless REF already holds
# them on that base.
build_image() {
  local dockerfile=$1 ref=$2 base=$3
  shift 3
  local ctx
  ctx=$(mktemp -d)
  cp "$dockerfile" "$ctx/Dockerfile"
  cp "$@" "$ctx/"
  local digest
  digest=$( (echo "$base"; cd "$ctx" && sha256sum -- *) | sha256sum | cut -c1-32)
  local have
  have=$(docker image inspect -f '{{index .Config.Labels "dev.firehose-harness.content"}}' "$ref" 2>/dev/null || true)
  if [ "$have" != "$digest" ]; then
    echo "build.sh: building $ref" >&2
    DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE=$base" --label "dev.firehose-harness.content=$digest" -t "$ref" "$ctx" >&2
  fi
  rm -rf "$ctx"
  echo "$ref"
}

build_image "$root/ci/docker/Dockerfile" "$tag" "$base" "$bin/firehose-harness"
if [ -n "$function_tag" ]; then
  build_image "$root/ci/docker/function.Dockerfile" "$function_tag" scratch "$bin/firehose-harness" "$bin/bootstrap"
fi
