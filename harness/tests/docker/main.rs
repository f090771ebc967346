//! Container tests: `image:` targets and the images this repository builds, against the machine's
//! real Docker engine. `.ci/run` checks first that one answers (`docker info`): a test that
//! returned early without Docker would count as passed.
//!
//! Nothing is pulled. The first test to need an image builds the static binaries and the images
//! with `ci/docker/build.sh` (cached under `target/docker/`, one builder at a time, rebuilt only
//! when the files change), so a fresh clone needs nothing but Docker.
//!
//! Every harness run is a child process; its containers are found by the owner-pid label the
//! harness puts on them, so tests running side by side never count each other's containers.

#[allow(dead_code)]
#[path = "../integration/support.rs"]
mod support;

mod image_target;
mod images;
mod lifecycle;
