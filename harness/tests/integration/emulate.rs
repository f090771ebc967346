//! Issue 4: `firehose-harness emulate` answers plain HTTP clients the way Lambda's Invoke API does,
//! pools concurrent invocations, reports failures with `X-Amz-Function-Error`, and stops cleanly.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::exec::event;
use crate::runtimes::{python, python_fixtures, rust_transformer};
use crate::support::{bin, describe, run_in, temp_dir};

/// A running `emulate`; killed if a test fails before stopping it.
struct Emulate {
    child: Child,
    base: String,
}

impl Emulate {
    /// Start `emulate --listen 127.0.0.1:0 ARGS -- COMMAND` and read the address it prints.
    fn start(args: &[&str], command: &[&str], env: &[(&str, &str)]) -> Emulate {
        let mut cmd = Command::new(bin());
        cmd.args(["emulate", "--listen", "127.0.0.1:0", "--quiet"])
            .args(args)
            .arg("--")
            .args(command)
            .env("PYTHONPATH", python_fixtures())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start emulate");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("emulate prints its address");
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        Emulate { child, base }
    }

    fn url(&self, function: &str) -> String {
        format!("{}/2015-03-31/functions/{function}/invocations", self.base)
    }

    /// SIGTERM, then the exit code (bounded: a hang fails the test instead of stalling it).
    fn stop(mut self) -> Option<i32> {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        let until = Instant::now() + Duration::from_secs(15);
        while Instant::now() < until {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("emulate did not stop within 15 s of SIGTERM");
    }
}

impl Drop for Emulate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn alive(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie (state Z) has already died; it only waits to be reaped by its new parent.
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn with_id(id: &str) -> String {
    let mut e: Value = serde_json::from_slice(&event(2)).unwrap();
    e["invocationId"] = json!(id);
    e.to_string()
}

fn python_command(handler: &str) -> Vec<String> {
    vec![
        python().display().to_string(),
        "-m".into(),
        "awslambdaric".into(),
        handler.into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulate_answers_plain_http_pools_16_concurrent_calls_and_stops_cleanly() {
    let command = python_command("handlers.switch");
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let emulate = Emulate::start(
        &[
            "--instances",
            "4",
            "--timeout",
            "30s",
            "--env",
            "FROM_FLAG=yes",
        ],
        &command,
        &[
            ("MY_API_SECRET", "s3cr3t"),
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
            ("AWS_SESSION_TOKEN", "token"),
            ("AWS_REGION", "eu-west-1"),
        ],
    );
    let client = reqwest::Client::new();

    // A plain client, a plain event: the transformed records, no function error.
    let resp = client
        .post(emulate.url("function"))
        .body(event(3))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-amz-function-error").is_none());
    let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(body["records"].as_array().unwrap().len(), 3);

    // Sixteen at once on four instances: every caller gets its own records back.
    let calls: Vec<_> = (0..16)
        .map(|i| {
            let (client, url) = (client.clone(), emulate.url("any-name"));
            tokio::spawn(async move {
                let resp = client.post(url).body(event(i + 1)).send().await.unwrap();
                let status = resp.status();
                let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
                (i + 1, status, body)
            })
        })
        .collect();
    for call in calls {
        let (n, status, body) = call.await.unwrap();
        assert_eq!(status, 200);
        let ids: Vec<_> = body["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["recordId"].as_str().unwrap().to_string())
            .collect();
        let expected: Vec<_> = (0..n).map(|i| format!("record-{i}")).collect();
        assert_eq!(ids, expected);
    }

    // A function error: HTTP 200, the header, and the runtime's error body.
    let (status, header, body) = post(emulate.url("function"), with_id("raise")).await;
    assert_eq!((status, header.as_deref()), (200, Some("Unhandled")));
    assert_eq!(body["errorType"], "ValueError");
    assert_eq!(body["errorMessage"], "asked to fail");

    // The environment a Lambda runtime expects, without the harness's credentials.
    let (_, _, env) = post(emulate.url("function"), with_id("env")).await;
    let api = env["AWS_LAMBDA_RUNTIME_API"].as_str().unwrap();
    assert!(api.starts_with("127.0.0.1:") && !api.contains('/'), "{api}");
    for (k, v) in [
        ("AWS_LAMBDA_FUNCTION_NAME", "function"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/function"),
        ("AWS_REGION", "eu-west-1"),
        ("_HANDLER", "handlers.switch"),
        ("TZ", "UTC"),
        ("FROM_FLAG", "yes"),
    ] {
        assert_eq!(env[k], v, "{k}");
    }
    assert!(
        env["AWS_LAMBDA_LOG_STREAM_NAME"]
            .as_str()
            .unwrap()
            .contains("[$LATEST]")
    );
    for withheld in ["MY_API_SECRET", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN"] {
        assert!(
            env.get(withheld).is_none(),
            "{withheld} leaked to the function"
        );
    }
    assert!(env.get("AWS_LAMBDA_MAX_CONCURRENCY").is_none());

    // The harness's own Invoke-API target judges the same endpoint: a pass.
    let dir = temp_dir();
    let target = format!("invoke+{}/function", emulate.base);
    let out = run_in(
        dir.path(),
        &[
            "check",
            "--target",
            &target,
            "--cases",
            "10",
            "--no-boundary",
            "--no-regressions",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // SIGTERM: a clean exit, and no function process left behind.
    let mut pids = Vec::new();
    for _ in 0..4 {
        let (_, _, answer) = post(emulate.url("function"), with_id("pid")).await;
        pids.push(answer["pid"].as_u64().unwrap());
    }
    assert!(pids.iter().all(|p| alive(*p)));
    assert_eq!(emulate.stop(), Some(0));
    for pid in pids {
        assert!(!alive(pid), "function process {pid} outlived emulate");
    }
}

/// POST `body`: the status, the function-error header and the JSON answer.
async fn post(url: String, body: String) -> (u16, Option<String>, Value) {
    let resp = reqwest::Client::new()
        .post(url)
        .body(body)
        .send()
        .await
        .unwrap();
    let header = resp
        .headers()
        .get("x-amz-function-error")
        .map(|v| v.to_str().unwrap().to_string());
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    (status, header, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulate_answers_timeouts_and_crashes_as_function_errors_and_keeps_serving() {
    let command = python_command("handlers.switch");
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let emulate = Emulate::start(&["--timeout", "2s"], &command, &[]);
    let call = |id: &str| post(emulate.url("function"), with_id(id));
    let (status, header, body) = call("sleep").await;
    assert_eq!((status, header.as_deref()), (200, Some("Unhandled")));
    assert_eq!(body["errorType"], "Sandbox.Timedout");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("Task timed out after 2.00 seconds")
    );
    let (status, header, body) = call("exit").await;
    assert_eq!((status, header.as_deref()), (200, Some("Unhandled")));
    assert_eq!(body["errorType"], "Runtime.ExitError");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("exit status 2"),
        "{body}"
    );
    let (status, header, body) = call("fine").await;
    assert_eq!((status, header), (200, None));
    assert_eq!(body["records"].as_array().unwrap().len(), 2);
    assert_eq!(emulate.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulate_serves_the_rust_example_and_fails_fast_on_a_bad_command() {
    let bootstrap = rust_transformer().display().to_string();
    let emulate = Emulate::start(&[], &[&bootstrap], &[]);
    let resp = reqwest::Client::new()
        .post(emulate.url("function"))
        .header("X-Amz-Log-Type", "Tail")
        .body(event(2))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let tail = resp.headers()["x-amz-log-result"]
        .to_str()
        .unwrap()
        .to_string();
    use base64::Engine as _;
    let tail = base64::engine::general_purpose::STANDARD
        .decode(tail)
        .unwrap();
    assert!(String::from_utf8_lossy(&tail).contains("REPORT RequestId:"));
    let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(body["records"][0]["result"], "Ok");
    drop(emulate);

    let dir = temp_dir();
    let out = run_in(
        dir.path(),
        &[
            "emulate",
            "--listen",
            "127.0.0.1:0",
            "--",
            "./not-a-bootstrap",
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("was not found"));
    assert!(!Path::new("./not-a-bootstrap").exists());
}

/// Ctrl-C while the function is still starting stops `emulate` at once (exit 130) and takes the
/// function with it, instead of waiting out the init timeout and reporting an init failure (exit 4).
#[test]
fn ctrl_c_during_the_functions_start_stops_emulate_with_130() {
    let dir = crate::support::temp_dir();
    let pidfile = dir.path().join("pid");
    let script = format!("echo $$ > {}; exec sleep 60", pidfile.display());
    let mut child = Command::new(bin())
        .args([
            "emulate",
            "--listen",
            "127.0.0.1:0",
            "--quiet",
            "--",
            "sh",
            "-c",
        ])
        .arg(&script)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start emulate");
    let until = Instant::now() + Duration::from_secs(10);
    let pid: u64 = loop {
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break pid;
        }
        assert!(Instant::now() < until, "the function never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let until = Instant::now() + Duration::from_secs(5);
    while alive(pid) {
        assert!(Instant::now() < until, "the function outlived emulate");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `n` calls at once; each call's status, `x-amzn-ErrorType` and body.
async fn concurrently(url: String, n: usize) -> Vec<(u16, Option<String>, Value)> {
    let client = reqwest::Client::new();
    let calls: Vec<_> = (0..n)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let resp = client.post(url).body(event(2)).send().await.unwrap();
                let status = resp.status().as_u16();
                let error_type = resp
                    .headers()
                    .get("x-amzn-errortype")
                    .map(|v| v.to_str().unwrap().to_string());
                let body = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
                (status, error_type, body)
            })
        })
        .collect();
    let mut out = Vec::new();
    for call in calls {
        out.push(call.await.unwrap());
    }
    out
}

/// Issue 9, bug 2: eight callers at once on two instances of a 0.3 s function with a 1 s timeout.
/// Six of them wait for an instance; waiting is not the function's time, so all eight succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_9_emulate_queues_callers_beyond_its_instances_without_timing_them_out() {
    let command = python_command("handlers.sleeps");
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let emulate = Emulate::start(&["--instances", "2", "--timeout", "1s"], &command, &[]);
    for (status, _, body) in concurrently(emulate.url("function"), 8).await {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["records"].as_array().unwrap().len(), 2, "{body}");
    }
    assert_eq!(emulate.stop(), Some(0));
}

/// Issue 9, bug 2: with `--throttle` the callers beyond the instances get Lambda's 429
/// `TooManyRequestsException` at once; with `--max-queue 2` two more wait and the rest are
/// throttled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_9_emulate_throttles_beyond_its_instances_or_its_queue() {
    let command = python_command("handlers.sleeps");
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    // Long enough that all eight calls arrive while the first ones still run.
    let slow = [("SLEEP_SECONDS", "2")];
    for (flags, answered) in [(&["--throttle"][..], 2), (&["--max-queue", "2"][..], 4)] {
        let mut args = vec!["--instances", "2", "--timeout", "10s"];
        args.extend_from_slice(flags);
        let emulate = Emulate::start(&args, &command, &slow);
        let results = concurrently(emulate.url("function"), 8).await;
        let ok = results.iter().filter(|(s, _, _)| *s == 200).count();
        assert_eq!(ok, answered, "{flags:?}: {results:?}");
        for (status, error_type, body) in results.iter().filter(|(s, _, _)| *s != 200) {
            assert_eq!(*status, 429, "{flags:?}: {body}");
            assert_eq!(error_type.as_deref(), Some("TooManyRequestsException"));
            assert_eq!(body["Type"], "User");
            assert_eq!(
                body["Reason"],
                "ReservedFunctionConcurrentInvocationLimitExceeded"
            );
            assert_eq!(body["message"], "Rate Exceeded.");
        }
        assert_eq!(emulate.stop(), Some(0));
    }
}
