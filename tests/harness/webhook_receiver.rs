//! A real webhook receiver for tests: an HTTP/1.1 server on a free loopback port that records
//! every request (headers and body) and answers each as told: 204, an error status, or never
//! (holding the connection open, like a hung receiver).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Ok,
    Status(u16),
    /// Read the request, never answer.
    Hang,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct HookRequest {
    pub headers: HashMap<String, String>,
    pub body: String,
    pub answered: Answer,
}

impl HookRequest {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct State {
    received: Vec<HookRequest>,
    /// Answers for the next requests, then `default`.
    script: VecDeque<Answer>,
    default: Option<Answer>,
}

pub struct WebhookReceiver {
    /// `http://localhost:<port>/hook`.
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    pub async fn start() -> WebhookReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://localhost:{}/hook",
            listener.local_addr().unwrap().port()
        );
        let state: Arc<Mutex<State>> = Arc::default();
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let mut data = Vec::new();
                    let mut buf = [0u8; 8192];
                    let (head_len, length) = loop {
                        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (end + 4, length);
                        }
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => data.extend_from_slice(&buf[..n]),
                        }
                    };
                    while data.len() < head_len + length {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => data.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&data[..head_len]).to_string();
                    let headers = head
                        .lines()
                        .skip(1)
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                        .collect();
                    let body =
                        String::from_utf8_lossy(&data[head_len..head_len + length]).to_string();
                    let answer = {
                        let mut s = state.lock().unwrap();
                        let answer = s.script.pop_front().or(s.default).unwrap_or(Answer::Ok);
                        s.received.push(HookRequest {
                            headers,
                            body,
                            answered: answer,
                        });
                        answer
                    };
                    let status = match answer {
                        Answer::Ok => 204,
                        Answer::Status(code) => code,
                        Answer::Hang => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                    };
                    let _ = socket
                        .write_all(format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes())
                        .await;
                });
            }
        });
        WebhookReceiver { url, state, task }
    }

    /// Answers the next requests so, in order, then as `set_default` says.
    pub fn script(&self, answers: &[Answer]) {
        self.state.lock().unwrap().script.extend(answers);
    }

    pub fn set_default(&self, answer: Answer) {
        self.state.lock().unwrap().default = Some(answer);
    }

    pub fn received(&self) -> Vec<HookRequest> {
        self.state.lock().unwrap().received.clone()
    }

    /// The requests answered 2xx.
    pub fn delivered(&self) -> Vec<HookRequest> {
        self.received()
            .into_iter()
            .filter(|r| r.answered == Answer::Ok)
            .collect()
    }

    /// Waits up to 20 s for `n` requests answered 2xx.
    pub async fn until_delivered(&self, n: usize) -> Vec<HookRequest> {
        for _ in 0..400 {
            let delivered = self.delivered();
            if delivered.len() >= n {
                return delivered;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{} of {n} deliveries within 20 s: {:#?}",
            self.delivered().len(),
            self.received()
                .iter()
                .map(|r| (r.answered, r.body.clone()))
                .collect::<Vec<_>>()
        );
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
