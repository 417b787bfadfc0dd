//! Frame I/O for one WebSocket: binary messages in, one `MSync` each; encoded frames and the
//! final close out through a bounded queue drained by a single writer task.
//!
//! Per-connection memory is the point of this module: the socket is split into a read half,
//! polled by the session task, and a write half owned by the writer task. Nothing else
//! buffers frames; the outbound queue holds at most [`OUTBOUND_QUEUE`] encoded frames.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use ferrim_proto::pb::MSync;
use ferrim_proto::Message as _;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::Notify;

/// Frames that may wait for the writer. A client this far behind is not reading; see
/// [`Outbox::send`] for what happens then.
pub(crate) const OUTBOUND_QUEUE: usize = 64;
/// Longest time one frame may take to reach the socket before the client is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

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
}

/// The read half.
pub(crate) struct FrameReader {
    stream: SplitStream<WebSocket>,
}

impl FrameReader {
    /// The next frame. Cancel-safe (it only awaits the stream's `next`).
    pub(crate) async fn next(&mut self) -> Inbound {
        match self.stream.next().await {
            None => Inbound::Closed,
            Some(Ok(Message::Binary(data))) => match MSync::decode(data) {
                Ok(frame) => Inbound::Frame(Box::new(frame)),
                Err(_) => Inbound::Fault(Close::UNDECODABLE),
            },
            Some(Ok(Message::Text(_))) => Inbound::Fault(Close::TEXT),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Inbound::Activity,
            Some(Ok(Message::Close(_))) => Inbound::Closed,
            Some(Err(e)) => classify_read_error(e),
        }
    }

    /// After the server decided to close: read and discard until the client answers the
    /// close (or gives up), so the socket is not reset while our last frames are in flight.
    pub(crate) async fn drain(&mut self, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            while let Some(Ok(_)) = self.stream.next().await {}
        })
        .await;
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

/// What the writer task is asked to do.
#[derive(Debug)]
enum Outbound {
    Frame(Bytes),
    Close(Close),
}

/// The client is not reading fast enough: its outbound queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overflow;

/// The queue between a session and its writer task.
///
/// Not a `tokio::sync::mpsc` channel on purpose: that allocates its first block of 32 slots
/// (about 1.3 KiB here) when created, for every connection, idle or not. This one holds
/// nothing until a frame is queued and gives the memory back once a burst is written.
#[derive(Debug, Default)]
struct Queue {
    state: Mutex<QueueState>,
    /// Wakes the writer: a frame was queued or the session let go.
    wake_writer: Notify,
    /// Wakes the session: the writer stopped.
    writer_gone: Notify,
}

#[derive(Debug, Default)]
struct QueueState {
    frames: VecDeque<Outbound>,
    /// The session dropped its outbox: write what is queued, then stop.
    session_done: bool,
    /// The writer stopped: nothing more is accepted.
    writer_done: bool,
}

/// Capacity a drained queue may keep; a larger one is freed (a burst is rare on a mostly
/// idle connection).
const IDLE_QUEUE_CAPACITY: usize = 4;

impl Queue {
    fn push(&self, out: Outbound) -> Result<(), Overflow> {
        {
            let mut state = self.state.lock().expect("outbound queue");
            if state.writer_done || state.frames.len() >= OUTBOUND_QUEUE {
                return Err(Overflow);
            }
            state.frames.push_back(out);
        }
        self.wake_writer.notify_one();
        Ok(())
    }

    /// Moves every queued frame into `into`; `None` once the session let go and nothing is
    /// left.
    async fn take(&self, into: &mut VecDeque<Outbound>) -> Option<()> {
        loop {
            {
                let mut state = self.state.lock().expect("outbound queue");
                if !state.frames.is_empty() {
                    std::mem::swap(&mut state.frames, into);
                    return Some(());
                }
                if state.session_done {
                    return None;
                }
            }
            // `notify_one` keeps a permit when the writer is not waiting yet, so a frame
            // queued between the check above and this await is not missed.
            self.wake_writer.notified().await;
        }
    }

    fn stop_writer(&self) {
        let mut state = self.state.lock().expect("outbound queue");
        state.writer_done = true;
        state.frames = VecDeque::new();
        drop(state);
        self.writer_gone.notify_waiters();
    }
}

/// The sending side of a connection, used by the session task only.
pub(crate) struct Outbox {
    queue: Arc<Queue>,
}

impl Outbox {
    /// Queues one frame without waiting.
    ///
    /// Overflow policy: if the queue is full the client has fallen [`OUTBOUND_QUEUE`] frames
    /// behind (it is not reading, or its network is too slow). Waiting would stall the
    /// session — including kicks and the idle timer — and dropping frames would silently
    /// lose protocol replies, so the connection is dropped instead; the client reconnects
    /// and resynchronises. The same holds when the writer has already stopped.
    pub(crate) fn send(&self, frame: &MSync) -> Result<(), Overflow> {
        self.queue
            .push(Outbound::Frame(Bytes::from(frame.encode_to_vec())))
    }

    /// Queues the close frame; the writer sends it after the frames before it and stops.
    pub(crate) fn close(&self, close: Close) -> Result<(), Overflow> {
        self.queue.push(Outbound::Close(close))
    }

    /// Completes when the writer task has stopped (write error or timeout).
    pub(crate) async fn closed(&self) {
        let gone = self.queue.writer_gone.notified();
        tokio::pin!(gone);
        // Registered before the check, so a stop in between still wakes us.
        gone.as_mut().enable();
        if self.queue.state.lock().expect("outbound queue").writer_done {
            return;
        }
        gone.await
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.queue
            .state
            .lock()
            .expect("outbound queue")
            .session_done = true;
        self.queue.wake_writer.notify_one();
    }
}

/// Splits an upgraded socket into the session's reader and outbox, and the writer task's
/// future, which the caller spawns.
pub(crate) fn split(
    socket: WebSocket,
) -> (
    FrameReader,
    Outbox,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (sink, stream) = socket.split();
    let queue = Arc::new(Queue::default());
    (
        FrameReader { stream },
        Outbox {
            queue: queue.clone(),
        },
        run_writer(sink, queue),
    )
}

/// The writer task: the only owner of the sink. Ends after sending a close frame, when the
/// outbox is dropped, or on the first write error or timeout.
async fn run_writer(mut sink: SplitSink<WebSocket, Message>, queue: Arc<Queue>) {
    let mut burst = VecDeque::new();
    'frames: while queue.take(&mut burst).await.is_some() {
        // Queue every frame already waiting, then flush once: one write for a burst (a send
        // ack and a notice, a pull answer after an ack) instead of one per frame.
        while let Some(out) = burst.pop_front() {
            let (message, last) = match out {
                Outbound::Frame(bytes) => (Message::Binary(bytes), false),
                Outbound::Close(close) => (
                    Message::Close(Some(CloseFrame {
                        code: close.code,
                        reason: close.reason.into(),
                    })),
                    true,
                ),
            };
            match tokio::time::timeout(WRITE_TIMEOUT, sink.feed(message)).await {
                Ok(Ok(())) if !last => {}
                Ok(Ok(())) => {
                    let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.flush()).await;
                    break 'frames;
                }
                _ => break 'frames,
            }
        }
        if burst.capacity() > IDLE_QUEUE_CAPACITY {
            burst = VecDeque::new();
        }
        if !matches!(
            tokio::time::timeout(WRITE_TIMEOUT, sink.flush()).await,
            Ok(Ok(()))
        ) {
            break;
        }
    }
    // Frees the queue's memory now and tells the session (`Outbox::closed`) we are gone.
    queue.stop_writer();
    drop(burst);
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
}
