//! Frame I/O for one WebSocket, done by the session's own task: binary messages in, one
//! `MSync` each; encoded frames and the final close out through a bounded queue.
//!
//! Handlers queue frames in the [`Outbox`] without waiting; the session writes them the next
//! time it polls its [`FrameSocket`], which is right after the handler returns. An outbound
//! frame therefore costs no task wake-up, no lock and no second task per connection, and a
//! burst (an ack and a push, a batch after an ack) goes out in one write. The queue holds at
//! most [`OUTBOUND_QUEUE`] frames; nothing else buffers them.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use ferrim_proto::pb::MSync;
use ferrim_proto::Message as _;
use futures_util::{Sink, SinkExt, StreamExt};
use tokio::time::Sleep;

/// Frames that may wait for the socket. A client this far behind is not reading; see
/// [`Outbox::send`] for what happens then.
pub(crate) const OUTBOUND_QUEUE: usize = 64;
/// Longest time the socket may refuse queued frames before the client is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection that ends may take to write what is still queued.
const FINAL_WRITE: Duration = Duration::from_secs(1);

/// WebSocket close codes used by the gateway (RFC 6455 §7.4.1), with the reasons sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Close {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
}

impl Close {
    pub(crate) const LOGOUT: Close = Close::new(1000, "logout");
    pub(crate) const LOGIN_FAILED: Close = Close::new(1000, "login failed");
    pub(crate) const KICKED: Close = Close::new(1000, "kicked");
    pub(crate) const SHUTDOWN: Close = Close::new(1001, "server shutting down");
    pub(crate) const IDLE: Close = Close::new(1001, "idle timeout");
    pub(crate) const PROTOCOL: Close = Close::new(1002, "websocket protocol error");
    pub(crate) const TEXT: Close = Close::new(1003, "text frames are not supported");
    pub(crate) const UNDECODABLE: Close = Close::new(1007, "undecodable frame");
    pub(crate) const LOGIN_TIMEOUT: Close = Close::new(1008, "login timeout");
    pub(crate) const NOT_LOGGED_IN: Close = Close::new(1008, "login first");
    pub(crate) const UNEXPECTED: Close = Close::new(1008, "unexpected command");
    pub(crate) const DOUBLE_LOGIN: Close = Close::new(1008, "already logged in");
    pub(crate) const TOO_BIG: Close = Close::new(1009, "frame too large");
    pub(crate) const TRY_AGAIN: Close = Close::new(1013, "try again later");

    const fn new(code: u16, reason: &'static str) -> Self {
        Self { code, reason }
    }
}

/// What reading the socket produced.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// One decoded frame.
    Frame(Box<MSync>),
    /// A ping or pong: the client is alive, nothing to answer (the library pongs).
    Activity,
    /// The client closed or the connection dropped.
    Closed,
    /// The client broke the protocol; close with this code.
    Fault(Close),
    /// Writing failed or stalled past [`WRITE_TIMEOUT`]: no close frame can be sent.
    Broken,
}

/// The socket, read and written by the session's task only.
pub(crate) struct FrameSocket {
    ws: WebSocket,
}

impl FrameSocket {
    pub(crate) fn new(ws: WebSocket) -> Self {
        Self { ws }
    }

    /// Writes what `outbox` holds, then waits for the next frame (writing more whenever the
    /// socket takes it). Cancel-safe: a frame leaves the queue only once the socket has
    /// accepted it, and reading only polls the stream.
    pub(crate) async fn next(&mut self, outbox: &mut Outbox) -> Inbound {
        poll_fn(|cx| {
            if outbox.poll_write(&mut self.ws, cx).is_err() {
                return Poll::Ready(Inbound::Broken);
            }
            self.ws.poll_next_unpin(cx).map(|read| match read {
                None => Inbound::Closed,
                Some(Ok(Message::Binary(data))) => match MSync::decode(data) {
                    Ok(frame) => Inbound::Frame(Box::new(frame)),
                    Err(_) => Inbound::Fault(Close::UNDECODABLE),
                },
                Some(Ok(Message::Text(_))) => Inbound::Fault(Close::TEXT),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => Inbound::Activity,
                Some(Ok(Message::Close(_))) => Inbound::Closed,
                Some(Err(e)) => classify_read_error(e),
            })
        })
        .await
    }

    /// After the session ended: writes what is queued (the close frame last, if one was
    /// queued) and, when `await_close_reply`, reads and discards until the client answers
    /// the close, so the socket is not reset while our last frames are in flight. Gives up
    /// after `limit`.
    pub(crate) async fn finish(
        mut self,
        outbox: &mut Outbox,
        limit: Duration,
        await_close_reply: bool,
    ) {
        let _ = tokio::time::timeout(limit, async {
            if await_close_reply {
                while !matches!(self.next(outbox).await, Inbound::Closed | Inbound::Broken) {}
            } else {
                let _ = poll_fn(|cx| outbox.poll_drain(&mut self.ws, cx)).await;
            }
        })
        .await;
        let _ = tokio::time::timeout(FINAL_WRITE, self.ws.close()).await;
    }
}

fn classify_read_error(e: axum::Error) -> Inbound {
    use tungstenite::error::Error as WsError;
    // axum wraps the WebSocket library's error; its kind decides the close code.
    match e.into_inner().downcast::<WsError>() {
        Ok(ws) => match *ws {
            WsError::Capacity(_) => Inbound::Fault(Close::TOO_BIG),
            WsError::Protocol(_) | WsError::Utf8(_) => Inbound::Fault(Close::PROTOCOL),
            _ => Inbound::Closed,
        },
        Err(_) => Inbound::Closed,
    }
}

/// The client is not reading fast enough: its outbound queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overflow;

/// Writing to the socket failed or stalled too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WriteFailed;

/// Capacity a drained queue may keep; a larger one is freed (a burst is rare on a mostly
/// idle connection).
const IDLE_QUEUE_CAPACITY: usize = 4;

/// Frames waiting for the socket.
///
/// A plain `VecDeque`, not a channel: it holds no memory until a frame is queued, and gives
/// a burst's memory back once written.
#[derive(Default)]
pub(crate) struct Outbox {
    queue: VecDeque<Message>,
    /// The socket accepted frames that are not flushed yet.
    unflushed: bool,
    /// A close frame is queued or sent: nothing more is accepted.
    closing: bool,
    /// Armed while the socket refuses to take or flush our frames.
    stall: Option<Pin<Box<Sleep>>>,
    failed: bool,
}

impl Outbox {
    /// Queues one frame without waiting.
    ///
    /// Overflow policy: if the queue is full the client has fallen [`OUTBOUND_QUEUE`] frames
    /// behind (it is not reading, or its network is too slow). Waiting would stall the
    /// session — including kicks and the idle timer — and dropping frames would silently
    /// lose protocol replies, so the connection is dropped instead; the client reconnects
    /// and resynchronises. The same holds once writing has failed or a close is queued.
    pub(crate) fn send(&mut self, frame: &MSync) -> Result<(), Overflow> {
        self.push(Message::Binary(Bytes::from(frame.encode_to_vec())))
    }

    /// Queues the close frame, sent after the frames before it; nothing is queued after it.
    pub(crate) fn close(&mut self, close: Close) -> Result<(), Overflow> {
        self.push(Message::Close(Some(CloseFrame {
            code: close.code,
            reason: close.reason.into(),
        })))?;
        self.closing = true;
        Ok(())
    }

    fn push(&mut self, message: Message) -> Result<(), Overflow> {
        if self.failed || self.closing || self.queue.len() >= OUTBOUND_QUEUE {
            return Err(Overflow);
        }
        self.queue.push_back(message);
        Ok(())
    }

    /// Hands queued frames to `sink` while it takes them, then flushes. `Ok` whether or not
    /// everything went out (the waker is registered for what is left); `Err` once writing
    /// failed or has been refused for [`WRITE_TIMEOUT`].
    fn poll_write<S>(&mut self, sink: &mut S, cx: &mut Context<'_>) -> Result<(), WriteFailed>
    where
        S: Sink<Message> + Unpin,
    {
        match self.poll_drain(sink, cx) {
            Poll::Ready(result) => result,
            Poll::Pending => {
                let stall = self
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_TIMEOUT)));
                if stall.as_mut().poll(cx).is_ready() {
                    return Err(self.fail());
                }
                Ok(())
            }
        }
    }

    /// Ready once everything queued is written and flushed (or writing failed).
    fn poll_drain<S>(&mut self, sink: &mut S, cx: &mut Context<'_>) -> Poll<Result<(), WriteFailed>>
    where
        S: Sink<Message> + Unpin,
    {
        if self.failed {
            return Poll::Ready(Err(WriteFailed));
        }
        let outcome = self.poll_drain_inner(sink, cx);
        match outcome {
            Poll::Ready(Ok(())) => {
                self.stall = None;
                if self.queue.capacity() > IDLE_QUEUE_CAPACITY {
                    self.queue = VecDeque::new();
                }
            }
            Poll::Ready(Err(WriteFailed)) => {
                self.fail();
            }
            Poll::Pending => {}
        }
        outcome
    }

    /// Nothing more goes out: the queue's memory is freed and later sends overflow.
    fn fail(&mut self) -> WriteFailed {
        self.failed = true;
        self.queue = VecDeque::new();
        WriteFailed
    }

    fn poll_drain_inner<S>(
        &mut self,
        sink: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), WriteFailed>>
    where
        S: Sink<Message> + Unpin,
    {
        while !self.queue.is_empty() {
            if ready_or_fail(sink.poll_ready_unpin(cx))?.is_pending() {
                return Poll::Pending;
            }
            let message = self.queue.pop_front().expect("checked non-empty");
            sink.start_send_unpin(message).map_err(|_| WriteFailed)?;
            self.unflushed = true;
        }
        if self.unflushed {
            if ready_or_fail(sink.poll_flush_unpin(cx))?.is_pending() {
                return Poll::Pending;
            }
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }
}

/// `Poll<Result<(), E>>` as `Result<Poll<()>, WriteFailed>`, so `?` reports failures.
fn ready_or_fail<E>(poll: Poll<Result<(), E>>) -> Result<Poll<()>, WriteFailed> {
    match poll {
        Poll::Ready(Ok(())) => Ok(Poll::Ready(())),
        Poll::Ready(Err(_)) => Err(WriteFailed),
        Poll::Pending => Ok(Poll::Pending),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::task::noop_waker_ref;

    /// A sink that takes frames only while `open`, and records what it took.
    #[derive(Default)]
    struct FakeSink {
        open: bool,
        broken: bool,
        taken: Vec<Message>,
        flushes: usize,
    }

    impl Sink<Message> for FakeSink {
        type Error = ();

        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            match (self.broken, self.open) {
                (true, _) => Poll::Ready(Err(())),
                (false, true) => Poll::Ready(Ok(())),
                (false, false) => Poll::Pending,
            }
        }

        fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), ()> {
            self.taken.push(item);
            Ok(())
        }

        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            if !self.open {
                return Poll::Pending;
            }
            self.flushes += 1;
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn frame(n: u64) -> MSync {
        MSync {
            version: Some(n as i32),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_burst_goes_out_in_order_with_one_flush_then_the_close_ends_it() {
        let mut outbox = Outbox::default();
        let mut sink = FakeSink {
            open: true,
            ..Default::default()
        };
        for n in 0..3 {
            outbox.send(&frame(n)).unwrap();
        }
        outbox.close(Close::KICKED).unwrap();
        assert_eq!(
            outbox.send(&frame(9)),
            Err(Overflow),
            "nothing after the close"
        );
        let mut cx = Context::from_waker(noop_waker_ref());
        assert_eq!(outbox.poll_write(&mut sink, &mut cx), Ok(()));
        assert_eq!(sink.flushes, 1);
        let versions: Vec<_> = sink.taken[..3]
            .iter()
            .map(|m| match m {
                Message::Binary(b) => MSync::decode(b.clone()).unwrap().version.unwrap(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(versions, [0, 1, 2]);
        assert!(matches!(&sink.taken[3], Message::Close(Some(c)) if c.code == 1000));
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_overflows_the_queue() {
        let mut outbox = Outbox::default();
        let mut sink = FakeSink::default();
        let mut cx = Context::from_waker(noop_waker_ref());
        for n in 0..OUTBOUND_QUEUE as u64 {
            outbox.send(&frame(n)).unwrap();
            assert_eq!(outbox.poll_write(&mut sink, &mut cx), Ok(()));
        }
        assert_eq!(outbox.send(&frame(99)), Err(Overflow));
        assert!(sink.taken.is_empty());
        // Once the client reads again everything queued goes out.
        sink.open = true;
        assert_eq!(outbox.poll_write(&mut sink, &mut cx), Ok(()));
        assert_eq!(sink.taken.len(), OUTBOUND_QUEUE);
        assert!(outbox.send(&frame(100)).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_socket_fails_after_the_write_timeout() {
        let mut outbox = Outbox::default();
        let mut sink = FakeSink::default();
        outbox.send(&frame(1)).unwrap();
        let failed = tokio::time::timeout(
            WRITE_TIMEOUT * 2,
            poll_fn(|cx| match outbox.poll_write(&mut sink, cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(e),
            }),
        )
        .await;
        assert_eq!(failed, Ok(WriteFailed));
        assert_eq!(
            outbox.send(&frame(2)),
            Err(Overflow),
            "a failed outbox takes nothing"
        );
    }

    #[tokio::test]
    async fn a_write_error_fails_the_outbox() {
        let mut outbox = Outbox::default();
        let mut sink = FakeSink {
            broken: true,
            ..Default::default()
        };
        let mut cx = Context::from_waker(noop_waker_ref());
        outbox.send(&frame(1)).unwrap();
        assert_eq!(outbox.poll_write(&mut sink, &mut cx), Err(WriteFailed));
        assert_eq!(outbox.send(&frame(2)), Err(Overflow));
    }
}
