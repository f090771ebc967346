//! A zoo of transformers served over real HTTP: one correct, the rest broken in exactly one way each.
//! Every broken one must make `check` exit 1 with the expected check failing.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// Each animal of the zoo: a route and the behaviour behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Animal {
    /// Every record back Ok, data unchanged: correct.
    Correct,
    // --- the spine's zoo: one contract bug each
    DropsLastId,
    DuplicatesId,
    InventsId,
    OkWrongCase,
    PlainTextData,
    OkWithoutData,
    NotJson,
    NoRecordsKey,
    NumericPartitionKeys,
    FunctionErrorHeader,
    // --- the generators' zoo: correct except on one kind of input
    FailsOver64KiB,
    FailsOnGzip,
    FailsOnNonAscii,
    MskAnswersData,
    DropsLongIds,
    SingleRecordEmpty,
    Inflates4x,
    // --- hostile answers
    Sleeps,
    Huge,
    NeverEnds,
    InvalidUtf8,
}

impl Animal {
    pub const ALL: [Animal; 22] = [
        Animal::Correct,
        Animal::DropsLastId,
        Animal::DuplicatesId,
        Animal::InventsId,
        Animal::OkWrongCase,
        Animal::PlainTextData,
        Animal::OkWithoutData,
        Animal::NotJson,
        Animal::NoRecordsKey,
        Animal::NumericPartitionKeys,
        Animal::FunctionErrorHeader,
        Animal::FailsOver64KiB,
        Animal::FailsOnGzip,
        Animal::FailsOnNonAscii,
        Animal::MskAnswersData,
        Animal::DropsLongIds,
        Animal::SingleRecordEmpty,
        Animal::Inflates4x,
        Animal::Sleeps,
        Animal::Huge,
        Animal::NeverEnds,
        Animal::InvalidUtf8,
    ];

    pub fn path(self) -> String {
        format!("/{self:?}")
    }
}

/// All animals, each at `/{Animal:?}`.
pub fn router() -> Router {
    Animal::ALL
        .iter()
        .fold(Router::new(), |r, &animal| {
            r.route(
                &animal.path(),
                post(move |body: Bytes| async move { respond(animal, body).await }),
            )
        })
        // axum refuses bodies over 2 MB by default; Firehose sends up to 6 MB.
        .layer(axum::extract::DefaultBodyLimit::max(8 << 20))
}

fn decode(record: &Value, key: &str) -> Vec<u8> {
    record[key]
        .as_str()
        .and_then(|s| STANDARD.decode(s).ok())
        .unwrap_or_default()
}

pub async fn respond(animal: Animal, body: Bytes) -> Response {
    let event: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let msk = event.get("sourceMSKArn").is_some();
    let key = if msk { "kafkaRecordValue" } else { "data" };
    let records = event["records"].as_array().cloned().unwrap_or_default();
    let mut out: Vec<Value> = records
        .iter()
        .map(|r| json!({"recordId": r["recordId"], "result": "Ok", key: r[key]}))
        .collect();
    let payloads: Vec<Vec<u8>> = records.iter().map(|r| decode(r, key)).collect();
    let function_error = |msg: &str| {
        let mut resp = Json(json!({"errorMessage": msg, "errorType": "Error"})).into_response();
        resp.headers_mut().insert(
            "X-Amz-Function-Error",
            HeaderValue::from_static("Unhandled"),
        );
        resp
    };
    match animal {
        Animal::Correct => {}
        Animal::DropsLastId => {
            out.pop();
        }
        Animal::DuplicatesId => {
            let first = out[0].clone();
            out.push(first);
        }
        Animal::InventsId => {
            out.push(json!({"recordId": "invented-1", "result": "Ok", "data": "aGk="}))
        }
        Animal::OkWrongCase => out.iter_mut().for_each(|r| r["result"] = json!("OK")),
        Animal::PlainTextData => {
            for (r, p) in out.iter_mut().zip(&payloads) {
                r[key] = json!(String::from_utf8_lossy(p));
            }
        }
        Animal::OkWithoutData => out.iter_mut().for_each(|r| {
            r.as_object_mut().unwrap().remove(key);
        }),
        Animal::NotJson => return "OK".into_response(),
        Animal::NoRecordsKey => return Json(json!({ "items": out })).into_response(),
        Animal::NumericPartitionKeys => out.iter_mut().for_each(|r| {
            r["metadata"] = json!({"partitionKeys": {"customer_id": 42}});
        }),
        Animal::FunctionErrorHeader => return function_error("boom"),
        Animal::FailsOver64KiB => {
            if payloads.iter().any(|p| p.len() > 64 * 1024) {
                return function_error("record too large for my buffer");
            }
        }
        Animal::FailsOnGzip => {
            if payloads.iter().any(|p| p.starts_with(&[0x1f, 0x8b])) {
                return function_error("UnicodeDecodeError: 'utf-8' codec can't decode byte 0x8b");
            }
        }
        Animal::FailsOnNonAscii => {
            let non_ascii_text = payloads
                .iter()
                .any(|p| !p.is_ascii() && std::str::from_utf8(p).is_ok());
            if non_ascii_text {
                // A serialiser that writes Latin-1: not UTF-8, so not JSON.
                return Response::new(Body::from(vec![b'{', 0xe9, b'}']));
            }
        }
        Animal::MskAnswersData => {
            if msk {
                for r in out.iter_mut() {
                    let v = r.as_object_mut().unwrap().remove("kafkaRecordValue");
                    r["data"] = v.unwrap_or(Value::Null);
                }
            }
        }
        Animal::DropsLongIds => out.retain(|r| r["recordId"].as_str().unwrap_or("").len() <= 100),
        Animal::SingleRecordEmpty => {
            if out.len() == 1 {
                out.clear();
            }
        }
        Animal::Inflates4x => {
            for (r, p) in out.iter_mut().zip(&payloads) {
                r[key] = json!(STANDARD.encode(p.repeat(4)));
            }
        }
        Animal::Sleeps => tokio::time::sleep(Duration::from_secs(5)).await,
        Animal::Huge => {
            // 100 MB of valid-looking JSON, streamed.
            let chunk = Bytes::from(vec![b' '; 1 << 20]);
            let stream = futures_util::stream::iter(
                std::iter::once(Ok::<_, Infallible>(Bytes::from_static(b"{\"records\":[")))
                    .chain(std::iter::repeat_n(chunk, 100).map(Ok)),
            );
            return Response::new(Body::from_stream(stream));
        }
        Animal::NeverEnds => {
            let stream = futures_util::stream::unfold((), |()| async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Some((Ok::<_, Infallible>(Bytes::from_static(b" ")), ()))
            });
            return Response::new(Body::from_stream(stream));
        }
        Animal::InvalidUtf8 => return Response::new(Body::from(vec![0xff, 0xfe, 0xfd])),
    }
    Json(json!({ "records": out })).into_response()
}

/// axum's Json without pulling its feature into every signature.
struct Json(Value);

impl IntoResponse for Json {
    fn into_response(self) -> Response {
        let mut resp = Response::new(Body::from(serde_json::to_vec(&self.0).unwrap()));
        resp.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        resp
    }
}
