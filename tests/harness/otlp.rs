//! A local OTLP/HTTP receiver for tests: accepts `POST /v1/traces` in the JSON encoding
//! (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`), answers 200, and keeps every span it was sent with
//! its service name, so a test can check what a real node exported.
//!
//! Kept out: protobuf (nodes export JSON when told to) and anything but traces.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One received span.
#[derive(Clone, Debug)]
pub struct ReceivedSpan {
    pub service: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub name: String,
}

pub struct OtlpReceiver {
    pub endpoint: String,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

impl OtlpReceiver {
    pub async fn start() -> OtlpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind OTLP receiver");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let spans = Arc::new(Mutex::new(Vec::new()));
        let store = Arc::clone(&spans);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, Arc::clone(&store)));
            }
        });
        OtlpReceiver { endpoint, spans }
    }

    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap().clone()
    }
}

/// HTTP/1.1 with keep-alive: headers, a Content-Length body, a fixed 200 reply.
async fn serve(socket: tokio::net::TcpStream, spans: Arc<Mutex<Vec<ReceivedSpan>>>) {
    let (read, mut write) = socket.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        if let Ok(doc) = serde_json::from_slice::<Value>(&body) {
            spans.lock().unwrap().extend(parse(&doc));
        }
        let reply =
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn parse(doc: &Value) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for rs in doc["resourceSpans"].as_array().into_iter().flatten() {
        let service = rs["resource"]["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["key"] == "service.name")
            .and_then(|a| a["value"]["stringValue"].as_str())
            .unwrap_or_default()
            .to_owned();
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for span in ss["spans"].as_array().into_iter().flatten() {
                let text = |k: &str| span[k].as_str().unwrap_or_default().to_owned();
                out.push(ReceivedSpan {
                    service: service.clone(),
                    trace_id: text("traceId"),
                    span_id: text("spanId"),
                    parent_span_id: text("parentSpanId"),
                    name: text("name"),
                });
            }
        }
    }
    out
}
