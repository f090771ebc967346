//! A trivial, fast Firehose transformer over plain HTTP: every record comes back `Ok` with its data
//! unchanged. The target of `bench/load-vs-oha.sh`, so both load tools hit the same server.
//!
//! Run:    cargo run --release --example trivial_transformer -- [PORT]
//! Expect: one line `listening on http://127.0.0.1:PORT/` (PORT 0, the default, lets the OS pick), then
//!         it answers until killed. Try it:
//!         firehose-harness load --target http://127.0.0.1:PORT/ --rate 100 --duration 5s
//!
//! It is written against hyper directly (no framework) so the server costs as little CPU as possible
//! and the benchmark measures the load tools, not the target.

use std::borrow::Cow;
use std::convert::Infallible;
use std::io::Write;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    records: Vec<InRecord<'a>>,
}

#[derive(Deserialize)]
struct InRecord<'a> {
    #[serde(rename = "recordId", borrow)]
    record_id: Cow<'a, str>,
    #[serde(borrow, default)]
    data: Option<Cow<'a, str>>,
    #[serde(rename = "kafkaRecordValue", borrow, default)]
    kafka_record_value: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct Answer<'a> {
    records: Vec<OutRecord<'a>>,
}

#[derive(Serialize)]
struct OutRecord<'a> {
    #[serde(rename = "recordId")]
    record_id: &'a str,
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a str>,
    /// MSK sources answer in `kafkaRecordValue`, as they were asked.
    #[serde(rename = "kafkaRecordValue", skip_serializing_if = "Option::is_none")]
    kafka_record_value: Option<&'a str>,
}

fn transform(body: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    let event: Event<'_> = serde_json::from_slice(body)?;
    let answer = Answer {
        records: event
            .records
            .iter()
            .map(|r| OutRecord {
                record_id: &r.record_id,
                result: "Ok",
                data: r.data.as_deref(),
                kafka_record_value: r.kafka_record_value.as_deref(),
            })
            .collect(),
    };
    let mut out = Vec::with_capacity(body.len() + 64);
    serde_json::to_writer(&mut out, &answer)?;
    Ok(out)
}

async fn handle(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(status(StatusCode::BAD_REQUEST, "unreadable body")),
    };
    Ok(match transform(&body) {
        Ok(out) => Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(out)))
            .expect("static response parts"),
        Err(e) => status(StatusCode::BAD_REQUEST, &format!("not an event: {e}")),
    })
}

fn status(code: StatusCode, msg: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .body(Full::new(Bytes::from(msg.to_string())))
        .expect("static response parts")
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        None => 0,
        Some(Ok(p)) => p,
        Some(Err(_)) => {
            eprintln!("usage: trivial_transformer [PORT]");
            std::process::exit(2);
        }
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}/");
    std::io::stdout().flush()?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            // A client that hangs up mid-request is its own business.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
    }
}
