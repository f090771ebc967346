//! An embedded Lambda Runtime API: real function processes, run the way Lambda runs them.
//!
//! ```text
//! Emulator::invoke(event) ──► pool (≤ N instances; FIFO queue or 429 beyond) ──► Instance
//!                                                                         │  its own 127.0.0.1:port
//!   Invocation ◄── reply slot ◄── /response | /error | /init/error | exit ◄┘  GET /next ← the runtime
//! ```
//!
//! - [`pool`] — [`Emulator`]: on-demand instances, cold starts, timeouts, crashes, the queue (or
//!   throttle) beyond `--instances`, queue wait; [`PoolStats`].
//! - [`instance`] — one process plus the Runtime API endpoint only it polls, and its exit watcher.
//! - [`queue`] — one instance's protocol state: inbox, event in flight, reply slot; 400/403 rules.
//! - [`routes`] — every path and protocol header, as constants.
//! - [`runtime_api`] — the Runtime API one instance polls (router and thin handlers).
//! - [`invoke_api`] — the Invoke API `emulate` serves (router and its one handler); [`front`] —
//!   what that API answers: pooled invocations, Lambda-shaped errors, throttles.
//! - [`function`] — the command line and the environment a runtime expects.
//! - [`process`] — process groups, exit descriptions, peak memory; [`logs`] — per-invocation logs.
//! - [`exception`] — the one line that names a function error or crash, per runtime.
//! - [`error`] — protocol errors (with the Runtime API's statuses) and start failures (with hints).
//!
//! Used by the `exec:` target (`targets/exec.rs`) and the `emulate` command.
//!
//! ```no_run
//! # async fn demo() -> Result<(), firehose_harness::emulator::EmulatorError> {
//! use firehose_harness::emulator::{CommandLine, Emulator, EmulatorConfig, FunctionSpec};
//! let spec = FunctionSpec::new(CommandLine::parse("./target/debug/bootstrap").unwrap());
//! let emulator = Emulator::new(spec, EmulatorConfig::default());
//! emulator.warm().await?; // fails fast on a bad command or an init error
//! let inv = emulator
//!     .invoke(bytes::Bytes::from_static(br#"{"records":[]}"#), std::time::Duration::from_secs(3))
//!     .await?;
//! println!("{:?} in {:?}, cold start {:?}", inv.outcome, inv.elapsed, inv.init_duration);
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```

mod body;
pub mod error;
pub mod exception;
pub mod front;
pub mod function;
mod ids;
pub mod instance;
pub mod invoke_api;
pub mod logs;
pub mod pool;
pub mod process;
pub mod queue;
pub mod routes;
pub mod runtime_api;

pub use error::{EmulatorError, RuntimeApiError};
pub use front::Front;
pub use function::{CommandLine, FunctionSpec};
pub use pool::{Emulator, EmulatorConfig, PoolOptions, PoolStats, QueuePolicy};
