//! The socket engine at the frame level, over real loopback sockets: fragmented messages with
//! control frames between the fragments, frames split across reads, both serializers on one
//! topic, and what the server does with bytes that are not WebSocket. (A burst coalesced into
//! one write: `conn.rs`'s tests and `realtime::a_fast_poster_…`; a client that stops reading:
//! `realtime::a_slow_consumer_…`.)
//!
//! The client side writes raw frames (tungstenite's frame encoder, masked as a client must) and
//! reads with tokio-tungstenite, so nothing here shares code with the server's codec.

use std::time::Duration;

use banter_tests::{TestApp, TestBackend};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// Opens a TCP connection and completes the WebSocket handshake by hand; returns the stream
/// positioned at the first WebSocket byte, and any bytes read past the response head.
async fn handshake(app: &TestApp, query: &str) -> (TcpStream, Vec<u8>) {
    let address = app.address.trim_start_matches("http://");
    let mut io = TcpStream::connect(address).await.unwrap();
    let request = format!(
        "GET /socket/websocket?{query} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    io.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1024];
    let end = loop {
        let n = io.read(&mut byte).await.unwrap();
        assert!(n > 0, "closed during the handshake");
        head.extend_from_slice(&byte[..n]);
        if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).to_string();
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    (io, head[end..].to_vec())
}

/// A client frame, masked as RFC 6455 requires.
fn client_frame(mut frame: Frame) -> Vec<u8> {
    frame.header_mut().mask = Some([0x37, 0xfa, 0x21, 0x3d]);
    let mut out = Vec::new();
    frame.format(&mut out).unwrap();
    out
}

fn text(data: &str, opcode: OpCode, fin: bool) -> Vec<u8> {
    client_frame(Frame::message(data.as_bytes().to_vec(), opcode, fin))
}

fn join(topic: &str, join_ref: &str) -> String {
    json!([join_ref, join_ref, topic, "phx_join", {}]).to_string()
}

async fn reader(io: TcpStream, read: Vec<u8>) -> WebSocketStream<TcpStream> {
    WebSocketStream::from_partially_read(io, read, Role::Client, None).await
}

/// Reads until the server's close frame.
async fn close_frame(
    mut ws: WebSocketStream<TcpStream>,
) -> tokio_tungstenite::tungstenite::protocol::CloseFrame {
    loop {
        match ws.next().await {
            Some(Ok(Message::Close(frame))) => return frame.expect("a close code"),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// The next Phoenix message, skipping pushes that are not `event`.
async fn next_event(ws: &mut WebSocketStream<TcpStream>, event: &str) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {event} within 5 s"))
            .expect("open")
            .expect("a frame");
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text).unwrap();
            if value[3] == event {
                return value;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fragmented_join_with_pings_between_its_fragments_is_answered_after_the_pongs() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let (mut io, read) = handshake(&app, "vsn=2.0.0").await;
    let message = join("comments:v1", "1");
    let (a, rest) = message.split_at(5);
    let (b, c) = rest.split_at(7);
    let mut bytes = text(a, OpCode::Data(Data::Text), false);
    bytes.extend(client_frame(Frame::ping(b"one".to_vec())));
    bytes.extend(text(b, OpCode::Data(Data::Continue), false));
    bytes.extend(client_frame(Frame::ping(b"two".to_vec())));
    bytes.extend(text(c, OpCode::Data(Data::Continue), true));
    io.write_all(&bytes).await.unwrap();
    let mut ws = reader(io, read).await;
    let mut pongs = Vec::new();
    // (A broadcast such as `viewer_count` may come before the reply, as in Phoenix.)
    let reply = loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Pong(payload) => pongs.push(payload.to_vec()),
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value[3] == "phx_reply" {
                    break value;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(
        pongs,
        vec![b"one".to_vec(), b"two".to_vec()],
        "answered in order"
    );
    assert_eq!(reply[3], "phx_reply");
    assert_eq!(reply[4]["status"], "ok", "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_split_across_reads_is_kept_until_the_rest_arrives() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let (mut io, read) = handshake(&app, "vsn=2.0.0").await;
    let bytes = text(&join("comments:v1", "1"), OpCode::Data(Data::Text), true);
    // One byte of the header, then the rest of the header and part of the payload, then the
    // end: three readiness events, each with an incomplete frame until the last.
    for chunk in [&bytes[..1], &bytes[1..9], &bytes[9..]] {
        io.write_all(chunk).await.unwrap();
        io.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let mut ws = reader(io, read).await;
    let reply = next_event(&mut ws, "phx_reply").await;
    assert_eq!(reply[4]["status"], "ok", "{reply}");
    // A second message sent in the same packet as the end of a third-party frame still parses.
    let heartbeat = json!([null, "2", "phoenix", "heartbeat", {}]).to_string();
    let mut two = text(&heartbeat, OpCode::Data(Data::Text), true);
    two.extend(text(
        &json!([null, "3", "phoenix", "heartbeat", {}]).to_string(),
        OpCode::Data(Data::Text),
        true,
    ));
    ws.get_mut().write_all(&two).await.unwrap();
    assert_eq!(next_event(&mut ws, "phx_reply").await[1], "2");
    assert_eq!(next_event(&mut ws, "phx_reply").await[1], "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_frame_sent_with_the_handshake_is_not_lost() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let address = app.address.trim_start_matches("http://");
    let mut io = TcpStream::connect(address).await.unwrap();
    let mut request = format!(
        "GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes();
    request.extend(text(
        &join("comments:v1", "1"),
        OpCode::Data(Data::Text),
        true,
    ));
    io.write_all(&request).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(io.read(&mut byte).await.unwrap(), 1);
        head.push(byte[0]);
    }
    let mut ws = reader(io, Vec::new()).await;
    assert_eq!(next_event(&mut ws, "phx_reply").await[4]["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continuation_without_a_first_fragment_or_a_message_inside_one_is_a_protocol_error() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    for bytes in [
        text("orphan", OpCode::Data(Data::Continue), true),
        [
            text("[\"1\",", OpCode::Data(Data::Text), false),
            text("[]", OpCode::Data(Data::Text), true),
        ]
        .concat(),
    ] {
        let (mut io, read) = handshake(&app, "vsn=2.0.0").await;
        io.write_all(&bytes).await.unwrap();
        let close = close_frame(reader(io, read).await).await;
        assert_eq!(u16::from(close.code), 1002, "{close:?}");
        let reason = close.reason.to_lowercase();
        assert!(
            reason.contains("continuation") || reason.contains("fragment"),
            "{close:?}"
        );
    }
    // The server is still up.
    let (_io, _) = handshake(&app, "vsn=2.0.0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_assembled_past_the_limit_closes_with_1009() {
    let app = TestApp::spawn_with(
        TestBackend::Sqlite,
        &[("BANTER_WS_MAX_FRAME_BYTES", "1024")],
    )
    .await;
    let (mut io, read) = handshake(&app, "vsn=2.0.0").await;
    let chunk = "x".repeat(600);
    let mut bytes = text(&chunk, OpCode::Data(Data::Text), false);
    bytes.extend(text(&chunk, OpCode::Data(Data::Continue), true));
    io.write_all(&bytes).await.unwrap();
    let close = close_frame(reader(io, read).await).await;
    assert_eq!(u16::from(close.code), 1009);
}

/// The next V1 (JSON object) message with `event`.
async fn v1_event(ws: &mut WebSocketStream<TcpStream>, event: &str) -> Value {
    let find = async {
        loop {
            if let Message::Text(t) = ws.next().await.unwrap().unwrap() {
                let value: Value = serde_json::from_str(&t).unwrap();
                if value["event"] == event {
                    return value;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), find)
        .await
        .unwrap_or_else(|_| panic!("no {event} within 5 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_binary_capable_serializers_share_a_topic_and_each_gets_its_own_frame() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let alice = app.register("alice").await;
    let (mut v2, read2) = handshake(&app, "vsn=2.0.0").await;
    v2.write_all(&text(
        &join("comments:v1", "1"),
        OpCode::Data(Data::Text),
        true,
    ))
    .await
    .unwrap();
    let mut v2 = reader(v2, read2).await;
    assert_eq!(next_event(&mut v2, "phx_reply").await[4]["status"], "ok");
    let (mut v1, read1) = handshake(&app, "vsn=1.0.0").await;
    let join_v1 =
        json!({"topic": "comments:v1", "event": "phx_join", "payload": {}, "ref": "1"}).to_string();
    v1.write_all(&text(&join_v1, OpCode::Data(Data::Text), true))
        .await
        .unwrap();
    let mut v1 = WebSocketStream::from_partially_read(v1, read1, Role::Client, None).await;
    assert_eq!(
        v1_event(&mut v1, "phx_reply").await["payload"]["status"],
        "ok"
    );
    app.post_comment(&alice.access_token, "v1", "both serializers")
        .await;
    let as_v2 = next_event(&mut v2, "comment_created").await;
    let as_v1 = v1_event(&mut v1, "comment_created").await;
    assert_eq!(as_v2[4]["body"], "both serializers");
    assert_eq!(as_v1["payload"]["body"], "both serializers");
    assert_eq!(as_v2[4]["seq"], as_v1["payload"]["seq"]);
    // A binary push on the same topic from the V2 socket is decoded and answered.
    let mut push = vec![0u8, 1, 2, 11, 11];
    push.extend_from_slice(b"1");
    push.extend_from_slice(b"77comments:v1new_comment");
    push.extend_from_slice(&[1, 2, 3]);
    v2.send(Message::binary(push)).await.unwrap();
    let reply = loop {
        let r = next_event(&mut v2, "phx_reply").await;
        if r[1] == "77" {
            break r;
        }
    };
    assert_eq!(reply[4]["response"]["reason"], "unauthorized");
}
