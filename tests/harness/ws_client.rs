//! A raw Phoenix V2 client over tokio-tungstenite, for tests that check frames exactly.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_ref: u64,
}

/// What the server did with a frame we waited for.
#[derive(Debug)]
pub enum Received {
    Frame(Value),
    Closed(Option<(u16, String)>),
}

/// The upgrade request for `/socket/websocket?<query>` with extra headers.
fn handshake(
    http_address: &str,
    query: &str,
    headers: &[(&str, &str)],
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let url = format!(
        "{}/socket/websocket?{query}",
        http_address.replacen("http", "ws", 1)
    );
    let mut request = url.into_client_request().unwrap();
    for (k, v) in headers {
        request.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    request
}

impl WsClient {
    /// Connects to `/socket/websocket?<query>`; `Err` carries the HTTP status of a refusal.
    pub async fn connect(http_address: &str, query: &str) -> Result<WsClient, u16> {
        Self::connect_with(http_address, query, &[]).await
    }

    /// Connects with `vsn=2.0.0` and, when given, an access token.
    pub async fn connect_as(http_address: &str, token: Option<&str>) -> WsClient {
        let query = match token {
            Some(t) => format!("vsn=2.0.0&token={t}"),
            None => "vsn=2.0.0".to_owned(),
        };
        Self::connect(http_address, &query).await.expect("connect")
    }

    pub async fn connect_with(
        http_address: &str,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<WsClient, u16> {
        let request = handshake(http_address, query, headers);
        match tokio_tungstenite::connect_async(request).await {
            Ok((ws, _)) => Ok(WsClient { ws, next_ref: 1 }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16())
            }
            Err(e) => panic!("connect failed: {e}"),
        }
    }

    /// The handshake response headers of a successful connect.
    pub async fn connect_response(
        http_address: &str,
        query: &str,
        headers: &[(&str, &str)],
    ) -> tokio_tungstenite::tungstenite::http::Response<Option<Vec<u8>>> {
        let request = handshake(http_address, query, headers);
        tokio_tungstenite::connect_async(request)
            .await
            .expect("connect")
            .1
    }

    pub fn next_ref(&mut self) -> String {
        self.next_ref += 1;
        self.next_ref.to_string()
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    pub async fn send(
        &mut self,
        join_ref: Option<&str>,
        msg_ref: &str,
        topic: &str,
        event: &str,
        payload: Value,
    ) {
        let frame = json!([join_ref, msg_ref, topic, event, payload]).to_string();
        self.send_raw(Message::text(frame)).await;
    }

    /// The next text frame (as JSON) or the close, within 5 s.
    pub async fn recv(&mut self) -> Received {
        self.recv_within(Duration::from_secs(5)).await
    }

    /// The next text frame (as JSON) or the close, within `limit`.
    pub async fn recv_within(&mut self, limit: Duration) -> Received {
        loop {
            let next = tokio::time::timeout(limit, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no frame within {limit:?}"));
            match next {
                Some(Ok(Message::Text(text))) => {
                    return Received::Frame(serde_json::from_str(&text).expect("JSON frame"));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Received::Closed(
                        frame.map(|f| (u16::from(f.code), f.reason.to_string())),
                    );
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Received::Closed(None),
            }
        }
    }

    pub async fn frame(&mut self) -> Value {
        match self.recv().await {
            Received::Frame(v) => v,
            Received::Closed(c) => panic!("socket closed: {c:?}"),
        }
    }

    /// Skips frames until one with this event (and topic) arrives.
    pub async fn until_event(&mut self, topic: &str, event: &str) -> Value {
        loop {
            let frame = self.frame().await;
            if frame[2] == topic && frame[3] == event {
                return frame;
            }
        }
    }

    /// Like `until_event`, for waits through an outage: silence between frames is fine (bound
    /// the whole wait with a timeout).
    pub async fn until_event_patiently(&mut self, topic: &str, event: &str) -> Value {
        loop {
            match self.recv_within(Duration::from_secs(3600)).await {
                Received::Frame(frame) if frame[2] == topic && frame[3] == event => return frame,
                Received::Frame(_) => {}
                Received::Closed(c) => panic!("socket closed: {c:?}"),
            }
        }
    }

    /// Skips frames until the reply to `msg_ref`.
    pub async fn reply_to(&mut self, msg_ref: &str) -> Value {
        loop {
            let frame = self.frame().await;
            if frame[3] == "phx_reply" && frame[1] == msg_ref {
                return frame;
            }
        }
    }

    /// Joins `topic`; returns the reply frame.
    pub async fn join(&mut self, topic: &str, payload: Value) -> Value {
        let r = self.next_ref();
        self.send(Some(&r), &r, topic, "phx_join", payload).await;
        self.reply_to(&r).await
    }

    /// Expects the server to close the socket; returns the close code and reason.
    pub async fn closed(&mut self) -> Option<(u16, String)> {
        loop {
            if let Received::Closed(c) = self.recv().await {
                return c;
            }
        }
    }
}
