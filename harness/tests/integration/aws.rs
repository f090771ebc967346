//! AWS targets against a stand-in Lambda service that checks every signature with an independent
//! SigV4 implementation (PyPI botocore), serves broken transformers by function name, throttles on
//! demand, and speaks TLS with a certificate made here (fixtures/sigv4_lambda.py).
//!
//! Credentials are planted in the environment; every byte the harness writes is searched for the
//! secret and the session token.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use base64::Engine as _;
use serde_json::Value;

use crate::runtimes::botocore_python;
use crate::support::{describe, failing_checks, read_report, temp_dir};

const ACCESS_KEY: &str = "AKIAPLANTEDKEY000001";
const SECRET: &str = "planted/Secret+Key0123456789abcdefghijKLMN";
const SESSION_TOKEN: &str = "PlantedSessionToken//ZXhhbXBsZQ==abcdefghijklmnopqrstuvwxyz0123";
const REGION: &str = "eu-west-1";

/// Small batches: the point is the transport, not the generators.
const SMALL: [&str; 6] = [
    "--records",
    "1..3",
    "--record-size",
    "10..200",
    "--cases",
    "3",
];

/// The stand-in service, killed on drop.
struct Service {
    child: Child,
    port: u16,
}

impl Service {
    fn start(args: &[&str]) -> Service {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/integration/fixtures/sigv4_lambda.py");
        let mut child = Command::new(botocore_python())
            .arg(script)
            .args(args)
            .env("EXPECT_ACCESS_KEY_ID", ACCESS_KEY)
            .env("EXPECT_SECRET_ACCESS_KEY", SECRET)
            .env("EXPECT_SESSION_TOKEN", SESSION_TOKEN)
            .env("EXPECT_REGION", REGION)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the stand-in Lambda service");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the service prints its port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("not a port: {line:?}"));
        Service { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `GET path` over a fresh connection: (status, body).
    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        raw_request(
            self.port,
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
    }

    /// Signatures the service accepted and rejected so far, and why it rejected them.
    fn stats(&self) -> Value {
        let (status, body) = self.get("/_stats");
        assert_eq!(status, 200);
        serde_json::from_slice(&body).expect("stats JSON")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Send raw bytes, read the answer to the end: (status, body).
fn raw_request(port: u16, request: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.write_all(request).expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read");
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = match answer.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => answer[i + 4..].to_vec(),
        None => Vec::new(),
    };
    (status, body)
}

/// `firehose-harness ARGS --report-dir R` in `cwd` with the planted credentials and nothing else
/// from the machine's AWS setup.
fn run_with_credentials(cwd: &Path, args: &[&str]) -> (Value, Output) {
    let mut all = args.to_vec();
    all.extend(["--report-dir", "R"]);
    let out = Command::new(crate::support::bin())
        .args(&all)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_LAMBDA")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
        .env("AWS_REGION", REGION)
        .env("AWS_CONFIG_FILE", cwd.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            cwd.join("no-aws-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run firehose-harness");
    assert_no_secret(cwd, &out);
    (read_report(&cwd.join("R")), out)
}

/// Neither the secret key nor the session token is in stdout, stderr or any file under `dir`.
fn assert_no_secret(dir: &Path, out: &Output) {
    let mut files = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(
        files.iter().any(|f| f.ends_with("report.json")),
        "no report written"
    );
    let mut blobs: Vec<(PathBuf, Vec<u8>)> = files
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(&f).expect("read file");
            (f, bytes)
        })
        .collect();
    blobs.push(("stdout".into(), out.stdout.clone()));
    blobs.push(("stderr".into(), out.stderr.clone()));
    for (name, bytes) in &blobs {
        for secret in [SECRET, SESSION_TOKEN] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} contains a planted credential",
                name.display()
            );
        }
    }
}

/// `check` with one small batch per phase against `target` behind `endpoint`.
fn check_one_small_batch(cwd: &Path, target: &str, endpoint: &str) -> (Value, Output) {
    run_with_credentials(
        cwd,
        &[
            "check",
            "--target",
            target,
            "--endpoint-url",
            endpoint,
            "--cases",
            "1",
            "--records",
            "1..1",
            "--record-size",
            "10..20",
        ],
    )
}

fn notes(report: &Value) -> String {
    report["notes"].to_string()
}

#[test]
fn every_lambda_request_verifies_with_botocore_and_a_good_function_passes() {
    let service = Service::start(&[]);
    let dir = temp_dir();
    let url = service.url();
    let mut args = vec!["check", "--target", "lambda:good", "--endpoint-url", &url];
    args.extend(SMALL);
    let (report, out) = run_with_credentials(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stats = service.stats();
    assert_eq!(stats["rejected"], 0, "{stats}");
    assert!(stats["accepted"].as_u64().unwrap() >= 3, "{stats}");
    assert!(notes(&report).contains("executed version: 7"), "{report}");
    assert_eq!(report["target"], "lambda:good");
}

#[test]
fn a_qualified_arn_is_signed_over_its_encoded_path() {
    let service = Service::start(&[]);
    let dir = temp_dir();
    let url = service.url();
    let target = format!("lambda:arn:aws:lambda:{REGION}:123456789012:function:good:live");
    let mut args = vec!["check", "--target", &target, "--endpoint-url", &url];
    args.extend(SMALL);
    let (_, out) = run_with_credentials(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stats = service.stats();
    assert_eq!(stats["rejected"], 0, "{stats}");
    let (_, captured) = service.get("/_captured");
    let captured: Value = serde_json::from_slice(&captured).unwrap();
    assert_eq!(
        captured["path"],
        format!(
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3A{REGION}%3A123456789012%3Afunction%3Agood/invocations?Qualifier=live"
        )
    );
}

#[test]
fn tampered_requests_are_rejected_by_the_verifier() {
    let service = Service::start(&[]);
    let dir = temp_dir();
    let url = service.url();
    let (_, out) = check_one_small_batch(dir.path(), "lambda:good", &url);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let (_, captured) = service.get("/_captured");
    let captured: Value = serde_json::from_slice(&captured).expect("a captured request");
    let path = captured["path"].as_str().unwrap().to_string();
    let body = base64::engine::general_purpose::STANDARD
        .decode(captured["body"].as_str().unwrap())
        .unwrap();
    let headers: Vec<(String, String)> = captured["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let send = |path: &str, headers: &[(String, String)], body: &[u8]| {
        let mut req = format!("POST {path} HTTP/1.1\r\n");
        for (k, v) in headers {
            if !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("connection") {
                req.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        req.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        raw_request(service.port, &bytes).0
    };
    let with = |name: &str, edit: &dyn Fn(&str) -> String| -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(k, v)| {
                if k.eq_ignore_ascii_case(name) {
                    (k.clone(), edit(v))
                } else {
                    (k.clone(), v.clone())
                }
            })
            .collect()
    };
    // The untouched request still verifies: the replay itself is faithful.
    assert_eq!(send(&path, &headers, &body), 200);
    let mut tampered_body = body.clone();
    let last = tampered_body.len() - 2;
    tampered_body[last] ^= 0x01;
    assert_eq!(send(&path, &headers, &tampered_body), 403, "body");
    assert_eq!(
        send(
            &path,
            &with("x-amz-invocation-type", &|_| "Event".into()),
            &body
        ),
        403,
        "signed header"
    );
    assert_eq!(
        send(&path.replace("/good/", "/gooe/"), &headers, &body),
        403,
        "path"
    );
    let later = |d: &str| {
        // One second later: still inside the allowed skew, so only the signature can reject it.
        let mut date = d.to_string();
        let s: u32 = date[13..15].parse().unwrap();
        date.replace_range(13..15, &format!("{:02}", (s + 1) % 60));
        date
    };
    assert_eq!(send(&path, &with("x-amz-date", &later), &body), 403, "date");
    let stats = service.stats();
    assert_eq!(stats["rejected"], 4, "{stats}");
    assert!(
        stats["reasons"].to_string().contains("signature mismatch"),
        "{stats}"
    );
}

#[test]
fn broken_functions_behind_the_invoke_api_get_their_check_ids() {
    let service = Service::start(&[]);
    let url = service.url();
    for (function, check) in [
        ("missing", "no_missing_record_ids"),
        ("crash", "invocation_succeeded"),
        ("too-large", "response_within_limit"),
    ] {
        let dir = temp_dir();
        let target = format!("lambda:{function}");
        let mut args = vec![
            "check",
            "--target",
            &target,
            "--endpoint-url",
            &url,
            "--log-tail",
            "--no-shrink",
        ];
        args.extend(SMALL);
        let (report, out) = run_with_credentials(dir.path(), &args);
        assert_eq!(out.status.code(), Some(1), "{function}: {}", describe(&out));
        assert_eq!(
            failing_checks(&report),
            vec![check.to_string()],
            "{function}: {report}"
        );
        // --log-tail: the decoded log is in the failing case.
        let cases = dir.path().join("R/cases");
        let case = std::fs::read_dir(&cases)
            .expect("case folders")
            .flatten()
            .next()
            .expect("a case")
            .path();
        let logs = std::fs::read_to_string(case.join("logs.txt")).expect("logs.txt");
        assert!(
            logs.contains(&format!("planted-log-line for {function}")),
            "{logs}"
        );
        // reproduce.sh replays through the harness with the same flags, and no credentials.
        let script = std::fs::read_to_string(case.join("reproduce.sh")).unwrap();
        assert!(
            script.contains("firehose-harness replay") && script.contains(&url),
            "{script}"
        );
    }
    assert_eq!(service.stats()["rejected"], 0);
}

#[test]
fn a_throttle_burst_is_retried_and_reported_as_throttles_not_function_errors() {
    let service = Service::start(&[]);
    let url = service.url();
    for (function, throttled) in [("throttle-burst", 3), ("service-burst", 2)] {
        let dir = temp_dir();
        let target = format!("lambda:{function}");
        let mut args = vec!["check", "--target", &target, "--endpoint-url", &url];
        args.extend(SMALL);
        let (report, out) = run_with_credentials(dir.path(), &args);
        assert_eq!(out.status.code(), Some(0), "{function}: {}", describe(&out));
        assert!(failing_checks(&report).is_empty(), "{report}");
        assert!(
            notes(&report).contains(&format!(
                "throttles: {throttled} throttled or service-error answers"
            )),
            "{function}: {report}"
        );
        assert!(notes(&report).contains("; 0 of "), "{function}: {report}");
    }
}

#[test]
fn a_load_report_shows_throttles_per_second() {
    let service = Service::start(&[]);
    let dir = temp_dir();
    let url = service.url();
    let (report, out) = run_with_credentials(
        dir.path(),
        &[
            "load",
            "--target",
            "lambda:throttle-burst",
            "--endpoint-url",
            &url,
            "--rate",
            "20",
            "--invocations",
            "10",
            "--records",
            "1..2",
            "--record-size",
            "10..50",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(report["load"]["errors"], 0, "{report}");
    let notes = notes(&report);
    assert!(
        notes.contains("throttles: 3 throttled or service-error answers ("),
        "{notes}"
    );
    assert!(notes.contains("/s)"), "{notes}");
}

#[test]
fn a_run_where_every_call_is_throttled_exits_4() {
    let service = Service::start(&[]);
    let dir = temp_dir();
    let url = service.url();
    let (report, out) = check_one_small_batch(dir.path(), "lambda:always-throttle", &url);
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    assert_eq!(report["exit_code"], 4);
    assert_ne!(report["verdict"], "pass");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("throttled every invocation"),
        "{}",
        describe(&out)
    );
}

#[test]
fn missing_credentials_are_a_clear_error_before_any_event() {
    let dir = temp_dir();
    let out = Command::new(crate::support::bin())
        .args([
            "check",
            "--target",
            "lambda:good",
            "--endpoint-url",
            "http://127.0.0.1:9",
            "--region",
            REGION,
        ])
        .current_dir(dir.path())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .env("AWS_CONFIG_FILE", dir.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot sign requests to lambda:good"),
        "{stderr}"
    );
    assert!(stderr.contains("AWS_PROFILE"), "{stderr}");
}

/// A self-signed certificate for 127.0.0.1 in `dir`: (cert.pem, key.pem).
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("certificate");
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.signing_key.serialize_pem()).unwrap();
    (c, k)
}

#[test]
fn invoke_https_trusts_a_self_signed_certificate_only_with_ca_cert() {
    let certs = temp_dir();
    let (cert, key) = self_signed(certs.path());
    let service = Service::start(&[
        "--tls",
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        "--no-auth",
    ]);
    let target = format!("invoke+https://127.0.0.1:{}/good", service.port);
    let mut args = vec!["check", "--target", &target];
    args.extend(SMALL);
    let dir = temp_dir();
    let (_, out) = run_with_credentials(dir.path(), &args);
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .to_lowercase()
            .contains("certificate"),
        "{}",
        describe(&out)
    );
    args.extend(["--ca-cert", cert.to_str().unwrap()]);
    let dir = temp_dir();
    let (report, out) = run_with_credentials(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(failing_checks(&report).is_empty(), "{report}");
}

#[test]
fn sigv4_signs_a_function_url_over_tls() {
    let certs = temp_dir();
    let (cert, key) = self_signed(certs.path());
    // The service verifies signatures here too: a rejected one would be HTTP 403, which fails
    // invocation_succeeded, so only no_missing_record_ids failing means every request verified.
    let service = Service::start(&["--tls", cert.to_str().unwrap(), key.to_str().unwrap()]);
    let target = format!("https://127.0.0.1:{}/missing", service.port);
    let dir = temp_dir();
    let mut args = vec![
        "check",
        "--target",
        &target,
        "--sigv4",
        "lambda",
        "--region",
        REGION,
        "--ca-cert",
        cert.to_str().unwrap(),
        "--no-shrink",
    ];
    args.extend(SMALL);
    let (report, out) = run_with_credentials(dir.path(), &args);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(
        failing_checks(&report),
        vec!["no_missing_record_ids".to_string()],
        "{report}"
    );
    let case = std::fs::read_dir(dir.path().join("R/cases"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let script = std::fs::read_to_string(case.join("reproduce.sh")).unwrap();
    assert!(
        script.contains("--sigv4 'lambda'") && script.contains("--ca-cert"),
        "{script}"
    );
}

#[test]
fn aws_flags_on_the_wrong_target_or_with_bad_values_are_usage_errors() {
    let dir = temp_dir();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let not_pem = not_pem.to_str().unwrap();
    for (args, says) in [
        (
            vec!["--target", "builtin:ndjson", "--log-tail"],
            "--log-tail",
        ),
        (vec!["--target", "lambda:f", "--sigv4", "lambda"], "--sigv4"),
        (
            vec!["--target", "https://x.example/", "--sigv4", "bad service"],
            "--sigv4",
        ),
        (
            vec!["--target", "https://x.example/", "--ca-cert", not_pem],
            "--ca-cert",
        ),
        (vec!["--target", "lambda:a/b"], "lambda:NAME"),
        (
            vec!["--target", "lambda:f", "--endpoint-url", "ftp://x"],
            "--endpoint-url",
        ),
        (
            vec!["--target", "builtin:ndjson", "--region", "eu-west-1"],
            "--region",
        ),
    ] {
        let mut all = vec!["check"];
        all.extend(&args);
        let out = crate::support::run_in(dir.path(), &all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(crate::support::error_lines(&stderr), 1, "{stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
