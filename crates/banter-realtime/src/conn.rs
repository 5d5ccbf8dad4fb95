//! `Conn`: one upgraded connection's I/O, owned by Banter after the HTTP handshake.
//!
//! - Reading: on readiness, bytes are read into a buffer owned by the worker thread and decoded
//!   there with actix-http's WebSocket codec; only an incomplete frame (or a fragmented message
//!   being assembled) is kept in the connection. An idle socket holds no read buffer.
//! - Fragmented messages are assembled here (control frames may arrive between fragments and are
//!   answered at once); a message above the limit is refused with [`ReadError::TooBig`].
//! - Writing: whole frames taken from the socket's `Outq` wait here until written, and every
//!   write is one vectored write of everything pending (up to [`IOV_BATCH`] frames), so a
//!   burst of comments costs one syscall.
//!
//! Kept out: what the frames mean (`session/`), queuing and budgets (`outq.rs`).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice};

use actix_codec::Decoder;
use actix_http::ws::{self, CloseReason, Codec, Item, ProtocolError};
use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;

/// Frames handed to one vectored write at most (the kernel allows 1024).
pub(crate) const IOV_BATCH: usize = 128;
/// The worker thread's read buffer: how much one read takes at most.
const READ_CHUNK: usize = 64 * 1024;
/// Reads per readiness event, so one busy client cannot hold its worker.
const READS_PER_WAKE: usize = 4;

thread_local! {
    static READ_BUF: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// A whole message from the client.
#[derive(Debug, PartialEq)]
pub(crate) enum Inbound {
    Text(Bytes),
    Binary(Bytes),
    Ping(Bytes),
    Pong,
    Close(Option<CloseReason>),
}

#[derive(Debug)]
pub(crate) enum ReadError {
    /// The client closed the connection.
    Eof,
    /// A frame or an assembled message above the limit (close 1009).
    TooBig,
    /// Not valid WebSocket (close 1002, with this reason).
    Protocol(String),
    Io(io::Error),
}

impl From<ProtocolError> for ReadError {
    fn from(e: ProtocolError) -> Self {
        match e {
            ProtocolError::Overflow => ReadError::TooBig,
            e => ReadError::Protocol(format!("websocket protocol error: {e}")),
        }
    }
}

/// A fragmented message being assembled.
struct Fragments {
    text: bool,
    data: BytesMut,
}

/// What one [`Conn::flush`] wrote.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Flushed {
    pub bytes: usize,
    /// Frames completed.
    pub frames: usize,
    /// Calls of the kernel (vectored writes).
    pub writes: usize,
}

pub(crate) struct Conn {
    io: TcpStream,
    codec: Codec,
    max_message: usize,
    /// An incomplete frame carried over to the next readiness event; empty (unallocated) else.
    partial: BytesMut,
    fragments: Option<Box<Fragments>>,
    /// Frames taken from the outbound queue and not yet fully written.
    pub pending: VecDeque<Bytes>,
    /// Bytes of `pending[0]` already written.
    offset: usize,
}

impl Conn {
    /// Wraps an upgraded stream; `read_buf` holds what the HTTP layer read past the handshake.
    pub fn new(io: TcpStream, read_buf: BytesMut, max_message: usize) -> Self {
        Self {
            io,
            codec: Codec::new().max_size(max_message),
            max_message,
            // The HTTP layer's buffer is sized for requests (kilobytes); keep only its content.
            partial: if read_buf.is_empty() {
                BytesMut::new()
            } else {
                BytesMut::from(&read_buf[..])
            },
            fragments: None,
            pending: VecDeque::new(),
            offset: 0,
        }
    }

    pub async fn readable(&self) -> io::Result<()> {
        self.io.readable().await
    }

    pub async fn writable(&self) -> io::Result<()> {
        self.io.writable().await
    }

    /// Decodes what the HTTP layer read past the handshake (a client may send its first frame
    /// in the same packet).
    pub fn decode_buffered(&mut self, out: &mut Vec<Inbound>) -> Result<(), ReadError> {
        if self.partial.is_empty() {
            return Ok(());
        }
        let mut buf = std::mem::take(&mut self.partial);
        let result = self.decode_all(&mut buf, out);
        self.keep_partial(buf);
        result
    }

    /// Reads what the socket has and appends every whole message to `out`. A spurious
    /// readiness reads nothing and returns `Ok`.
    pub fn read(&mut self, out: &mut Vec<Inbound>) -> Result<(), ReadError> {
        for _ in 0..READS_PER_WAKE {
            let read = if self.partial.is_empty() {
                READ_BUF.with(|cell| {
                    let mut buf = cell.borrow_mut();
                    buf.reserve(READ_CHUNK);
                    let n = self.io.try_read_buf(&mut *buf);
                    let result = match n {
                        Ok(0) => return Err(ReadError::Eof),
                        Ok(_) => self.decode_all(&mut buf, out),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                        Err(e) => return Err(ReadError::Io(e)),
                    };
                    if !buf.is_empty() {
                        // Only the incomplete frame stays with the socket.
                        self.partial = BytesMut::from(&buf[..]);
                        buf.clear();
                    }
                    result.map(|()| true)
                })?
            } else {
                let mut buf = std::mem::take(&mut self.partial);
                buf.reserve(READ_CHUNK.min(self.max_message + 14));
                let result = match self.io.try_read_buf(&mut buf) {
                    Ok(0) => Err(ReadError::Eof),
                    Ok(_) => self.decode_all(&mut buf, out).map(|()| true),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
                    Err(e) => Err(ReadError::Io(e)),
                };
                self.keep_partial(buf);
                result?
            };
            if !read {
                break;
            }
        }
        Ok(())
    }

    fn keep_partial(&mut self, buf: BytesMut) {
        // Drop the allocation once the carried-over frame was consumed.
        self.partial = if buf.is_empty() { BytesMut::new() } else { buf };
    }

    fn decode_all(&mut self, buf: &mut BytesMut, out: &mut Vec<Inbound>) -> Result<(), ReadError> {
        while let Some(frame) = self.codec.decode(buf)? {
            if let Some(message) = self.assemble(frame)? {
                out.push(message);
            }
        }
        Ok(())
    }

    /// Turns frames into messages: control frames pass at once, fragments are joined.
    fn assemble(&mut self, frame: ws::Frame) -> Result<Option<Inbound>, ReadError> {
        let interleaved =
            || ReadError::Protocol("a new message began inside a fragmented one".into());
        Ok(Some(match frame {
            ws::Frame::Ping(payload) => Inbound::Ping(payload),
            ws::Frame::Pong(_) => Inbound::Pong,
            ws::Frame::Close(reason) => Inbound::Close(reason),
            ws::Frame::Text(_) | ws::Frame::Binary(_) if self.fragments.is_some() => {
                return Err(interleaved());
            }
            ws::Frame::Text(text) => Inbound::Text(text),
            ws::Frame::Binary(bytes) => Inbound::Binary(bytes),
            ws::Frame::Continuation(item) => return self.fragment(item),
        }))
    }

    fn fragment(&mut self, item: Item) -> Result<Option<Inbound>, ReadError> {
        let (first, chunk, last) = match item {
            Item::FirstText(b) => (Some(true), b, false),
            Item::FirstBinary(b) => (Some(false), b, false),
            Item::Continue(b) => (None, b, false),
            Item::Last(b) => (None, b, true),
        };
        match (first, &mut self.fragments) {
            (Some(_), Some(_)) => {
                return Err(ReadError::Protocol(
                    "a new message began inside a fragmented one".into(),
                ));
            }
            (Some(text), None) => {
                self.fragments = Some(Box::new(Fragments {
                    text,
                    data: BytesMut::from(&chunk[..]),
                }));
            }
            (None, None) => {
                return Err(ReadError::Protocol(
                    "a continuation frame without a first fragment".into(),
                ));
            }
            (None, Some(fragments)) => {
                if fragments.data.len() + chunk.len() > self.max_message {
                    return Err(ReadError::TooBig);
                }
                fragments.data.extend_from_slice(&chunk);
            }
        }
        if !last {
            return Ok(None);
        }
        let whole = self.fragments.take().expect("assembling");
        let data = whole.data.freeze();
        Ok(Some(if whole.text {
            Inbound::Text(data)
        } else {
            Inbound::Binary(data)
        }))
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Writes as much of `pending` as the socket takes now, each call of the kernel one vectored
    /// write of up to [`IOV_BATCH`] frames.
    pub fn flush(&mut self) -> io::Result<Flushed> {
        let mut done = Flushed::default();
        while !self.pending.is_empty() {
            let mut slices = [IoSlice::new(&[]); IOV_BATCH];
            let mut count = 0;
            for (i, frame) in self.pending.iter().take(IOV_BATCH).enumerate() {
                let skip = if i == 0 { self.offset } else { 0 };
                slices[i] = IoSlice::new(&frame[skip..]);
                count += 1;
            }
            let mut n = match self.io.try_write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            };
            done.writes += 1;
            done.bytes += n;
            while n > 0 {
                let left = self.pending[0].len() - self.offset;
                if n >= left {
                    n -= left;
                    self.offset = 0;
                    self.pending.pop_front();
                    done.frames += 1;
                } else {
                    self.offset += n;
                    n = 0;
                }
            }
        }
        if self.pending.is_empty() && self.pending.capacity() > IOV_BATCH {
            self.pending = VecDeque::new(); // a burst's queue is not kept while idle
        }
        Ok(done)
    }

    /// Keeps only a partly written frame (the stream must stay well-formed) and drops the
    /// rest: what a slow consumer gets before its close frame.
    pub fn drop_unstarted(&mut self) -> usize {
        let keep = usize::from(self.offset > 0);
        let dropped = self.pending.len().saturating_sub(keep);
        self.pending.truncate(keep);
        dropped
    }

    /// Half-closes the write side (after the close frame) and reads until the client closes
    /// or `linger` passes, so the close frame is not lost to a reset.
    pub async fn finish(mut self, linger: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + linger;
        while self.has_pending() {
            if self.flush().is_err() {
                return;
            }
            if !self.has_pending() {
                break;
            }
            if tokio::time::timeout_at(deadline, self.io.writable())
                .await
                .is_err()
            {
                return;
            }
        }
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut self.io).await;
        loop {
            match tokio::time::timeout_at(deadline, self.io.readable()).await {
                Ok(Ok(())) if self.discard() => {}
                _ => return,
            }
        }
    }

    /// Reads and drops what the client sent after the close; `false` once it closed too.
    fn discard(&self) -> bool {
        let mut sink = [0u8; 1024];
        match self.io.try_read(&mut sink) {
            Ok(0) => false,
            Ok(_) => true,
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        }
    }
}

#[cfg(test)]
mod tests {
    use banter_protocol::Frame;
    use tokio::net::TcpListener;

    use super::*;

    async fn pair() -> (Conn, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (Conn::new(server, BytesMut::new(), 1024), client)
    }

    #[tokio::test]
    async fn a_burst_goes_out_in_one_vectored_write_and_decodes_as_separate_frames() {
        let (mut conn, mut client) = pair().await;
        let shared = crate::wire::SharedFrame::new("comments:v", "comment_created", "{}".into());
        for i in 0..10 {
            conn.pending
                .push_back(crate::wire::encode(Frame::Text(format!("m{i}"))));
            conn.pending
                .push_back(shared.bytes(banter_protocol::Vsn::V2));
        }
        let flushed = conn.flush().unwrap();
        assert_eq!((flushed.frames, flushed.writes), (20, 1), "{flushed:?}");
        assert!(!conn.has_pending());
        let mut buf = BytesMut::new();
        let mut codec = Codec::new().client_mode();
        let mut texts = Vec::new();
        while texts.len() < 20 {
            tokio::io::AsyncReadExt::read_buf(&mut client, &mut buf)
                .await
                .unwrap();
            while let Some(ws::Frame::Text(t)) = codec.decode(&mut buf).unwrap() {
                texts.push(String::from_utf8(t.to_vec()).unwrap());
            }
        }
        for (i, pair) in texts.chunks(2).enumerate() {
            assert_eq!(pair[0], format!("m{i}"));
            assert!(pair[1].contains("comment_created"));
        }
    }

    #[tokio::test]
    async fn a_reader_that_stops_leaves_the_rest_pending_and_a_partial_frame_stays_whole() {
        let (mut conn, client) = pair().await;
        let big = crate::wire::encode(Frame::Text("x".repeat(64 * 1024)));
        let mut written = 0;
        // The client reads nothing: the kernel's buffers fill and the write stops short.
        for _ in 0..200 {
            conn.pending.push_back(big.clone());
            written += conn.flush().unwrap().frames;
            if conn.has_pending() {
                break;
            }
        }
        assert!(conn.has_pending(), "the kernel took everything");
        assert!(written > 0, "the kernel took nothing");
        let started = conn.offset > 0;
        let dropped = conn.drop_unstarted();
        assert_eq!(conn.pending.len(), usize::from(started));
        assert!(dropped > 0 || started);
        drop(client);
    }
}
