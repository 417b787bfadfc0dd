//! A minimal XMPP client (RFC 6120/6121 client-to-server over plain TCP) for ejabberd:
//! stream, SASL PLAIN, resource binding, session, initial presence, one-to-one `<message/>`
//! stanzas, in-band registration (XEP-0077) and the `conflict` stream error that ejabberd
//! sends to the oldest session when `max_user_sessions` is exceeded.
//!
//! Parsing is a small stanza splitter, not a general XML parser: it tracks element depth
//! to cut the stream into top-level stanzas and looks into them with substring matching.
//! That is enough for what ejabberd sends to a client that only chats.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use anyhow::{bail, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::ferrim::password;
use crate::target::{Incoming, RegisterOutcome, Sink};

/// How to reach the XMPP server.
#[derive(Debug, Clone)]
pub struct XmppConfig {
    /// `127.0.0.1:5222`.
    pub addr: SocketAddr,
    /// The XMPP domain (`localhost`).
    pub domain: String,
    /// User names are `{prefix}{index}`.
    pub user_prefix: String,
}

/// An XMPP server under test.
pub struct XmppTarget {
    cfg: XmppConfig,
}

/// A piece of the XML stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlEvent {
    /// `<stream:stream ...>` (the server's stream header).
    StreamOpen,
    /// One complete top-level element (a stanza, features, SASL reply, stream error).
    Element(String),
    /// `</stream:stream>`.
    StreamClose,
}

/// Cuts a byte stream into [`XmlEvent`]s.
#[derive(Default)]
pub struct Splitter {
    buf: Vec<u8>,
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// End (index of `>`) of the tag starting at `start`, skipping quoted attribute values.
fn tag_end(buf: &[u8], start: usize) -> Option<usize> {
    let mut quote = 0u8;
    for (i, &b) in buf.iter().enumerate().skip(start + 1) {
        if quote != 0 {
            if b == quote {
                quote = 0;
            }
        } else if b == b'\'' || b == b'"' {
            quote = b;
        } else if b == b'>' {
            return Some(i);
        }
    }
    None
}

impl Splitter {
    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete event, if the buffer holds one.
    pub fn next_event(&mut self) -> Option<XmlEvent> {
        let buf = &self.buf;
        let mut i = 0;
        let mut depth = 0usize;
        let mut elem_start = None;
        loop {
            let lt = find(buf, i, b"<")?;
            match buf.get(lt + 1)? {
                b'?' => {
                    i = find(buf, lt, b"?>")? + 2;
                    if depth == 0 {
                        self.buf.drain(..i);
                        return self.next_event();
                    }
                }
                b'!' => {
                    i = tag_end(buf, lt)? + 1;
                }
                b'/' => {
                    let end = tag_end(buf, lt)?;
                    if depth == 0 {
                        // `</stream:stream>`.
                        self.buf.drain(..=end);
                        return Some(XmlEvent::StreamClose);
                    }
                    depth -= 1;
                    i = end + 1;
                    if depth == 0 {
                        let start = elem_start.unwrap_or(lt);
                        let text = String::from_utf8_lossy(&buf[start..=end]).into_owned();
                        self.buf.drain(..=end);
                        return Some(XmlEvent::Element(text));
                    }
                }
                _ => {
                    let end = tag_end(buf, lt)?;
                    if depth == 0 && buf[lt..].starts_with(b"<stream:stream") {
                        self.buf.drain(..=end);
                        return Some(XmlEvent::StreamOpen);
                    }
                    let self_closing = buf[end - 1] == b'/';
                    if depth == 0 {
                        elem_start = Some(lt);
                    }
                    i = end + 1;
                    if self_closing {
                        if depth == 0 {
                            let text = String::from_utf8_lossy(&buf[lt..=end]).into_owned();
                            self.buf.drain(..=end);
                            return Some(XmlEvent::Element(text));
                        }
                    } else {
                        depth += 1;
                    }
                }
            }
        }
    }
}

/// The text between `<body>` and `</body>` (unescaped for the five XML entities).
pub fn body_of(stanza: &str) -> Option<String> {
    let start = stanza.find("<body>")? + "<body>".len();
    let end = stanza[start..].find("</body>")? + start;
    Some(unescape(&stanza[start..end]))
}

fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn is_type(stanza: &str, ty: &str) -> bool {
    stanza.contains(&format!("type='{ty}'")) || stanza.contains(&format!("type=\"{ty}\""))
}

/// A stream being set up: reads events with a buffer that is handed to the session later.
struct Stream {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    split: Splitter,
}

impl Stream {
    async fn connect(addr: SocketAddr, src: Option<IpAddr>) -> Result<Self> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(ip) = src {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let tcp: TcpStream = socket.connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (rd, wr) = tcp.into_split();
        Ok(Stream {
            rd,
            wr,
            split: Splitter::default(),
        })
    }

    async fn send(&mut self, text: &str) -> Result<()> {
        self.wr.write_all(text.as_bytes()).await?;
        Ok(())
    }

    async fn next(&mut self) -> Result<XmlEvent> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(ev) = self.split.next_event() {
                return Ok(ev);
            }
            let n = self.rd.read(&mut chunk).await?;
            if n == 0 {
                bail!("server closed the stream");
            }
            self.split.push(&chunk[..n]);
        }
    }

    /// Reads until an element starting with `prefix`; a stream error or close fails.
    async fn expect(&mut self, prefix: &str) -> Result<String> {
        loop {
            match self.next().await? {
                XmlEvent::Element(e) if e.starts_with(prefix) => return Ok(e),
                XmlEvent::Element(e) if e.starts_with("<stream:error") => {
                    bail!("stream error: {e}")
                }
                XmlEvent::StreamClose => bail!("stream closed while waiting for {prefix}"),
                _ => {}
            }
        }
    }

    async fn open(&mut self, domain: &str) -> Result<String> {
        self.send(&format!(
            "<?xml version='1.0'?><stream:stream to='{domain}' xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
        ))
        .await?;
        self.expect("<stream:features").await
    }

    /// Waits for the `<iq>` reply with id `id`; an error reply fails.
    async fn iq_result(&mut self, id: &str) -> Result<String> {
        let needle_a = format!("id='{id}'");
        let needle_b = format!("id=\"{id}\"");
        loop {
            let e = self.expect("<iq").await?;
            if e.contains(&needle_a) || e.contains(&needle_b) {
                if is_type(&e, "result") {
                    return Ok(e);
                }
                bail!("iq {id} failed: {e}");
            }
        }
    }
}

static RESOURCE_SEQ: AtomicU64 = AtomicU64::new(0);

impl XmppTarget {
    pub fn new(cfg: XmppConfig) -> Self {
        XmppTarget { cfg }
    }

    pub fn user(&self, i: usize) -> String {
        format!("{}{i}", self.cfg.user_prefix)
    }

    /// TCP + stream + SASL PLAIN + restart + bind + session + initial presence.
    async fn establish(&self, i: usize, resource: &str, src: Option<IpAddr>) -> Result<Stream> {
        let mut s = Stream::connect(self.cfg.addr, src).await?;
        let features = s.open(&self.cfg.domain).await?;
        if !features.contains(">PLAIN<") {
            bail!("server offers no SASL PLAIN (TLS required?): {features}");
        }
        let user = self.user(i);
        let creds = STANDARD.encode(format!("\0{user}\0{}", password(i)));
        s.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{creds}</auth>"
        ))
        .await?;
        loop {
            match s.next().await? {
                XmlEvent::Element(e) if e.starts_with("<success") => break,
                XmlEvent::Element(e) if e.starts_with("<failure") => {
                    bail!("SASL failure for {user}: {e}")
                }
                XmlEvent::Element(e) if e.starts_with("<stream:error") => {
                    bail!("stream error: {e}")
                }
                XmlEvent::StreamClose => bail!("stream closed during SASL"),
                _ => {}
            }
        }
        let resource = if resource.is_empty() {
            format!("r{}", RESOURCE_SEQ.fetch_add(1, Ordering::Relaxed))
        } else {
            resource.to_owned()
        };
        // The restarted stream's header, the bind and the session request go in one write;
        // the server processes them in order.
        s.send(&format!(
            "<?xml version='1.0'?><stream:stream to='{}' xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>\
             <iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
             <resource>{}</resource></bind></iq>",
            self.cfg.domain,
            escape(&resource)
        ))
        .await?;
        s.iq_result("b1").await?;
        s.send(
            "<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>",
        )
        .await?;
        s.iq_result("s1").await?;
        s.send("<presence/>").await?;
        Ok(s)
    }

    pub async fn login(
        &self,
        i: usize,
        resource: &str,
        src: Option<IpAddr>,
        sink: Sink,
    ) -> Result<XmppSession> {
        let s = self.establish(i, resource, src).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer(s.wr, rx));
        tokio::spawn(reader(s.rd, s.split, sink));
        Ok(XmppSession {
            tx,
            domain: self.cfg.domain.clone(),
            seq: AtomicU64::new(0),
        })
    }

    pub async fn login_and_drop(
        &self,
        i: usize,
        resource: &str,
        src: Option<IpAddr>,
    ) -> Result<Instant> {
        let s = self.establish(i, resource, src).await?;
        let done = Instant::now();
        drop(s);
        Ok(done)
    }

    /// In-band registration (XEP-0077), one stream per user, 16 in flight.
    pub async fn register(&self, first: usize, n: usize) -> Result<RegisterOutcome> {
        let started = StdInstant::now();
        let mut out = RegisterOutcome {
            requested: n,
            method: "XMPP in-band registration (XEP-0077), one stream per user, 16 in flight"
                .to_owned(),
            ..RegisterOutcome::default()
        };
        let cfg = Arc::new(self.cfg.clone());
        let mut set = JoinSet::new();
        let mut next = first;
        loop {
            while set.len() < 16 && next < first + n {
                let (cfg, i) = (cfg.clone(), next);
                next += 1;
                set.spawn(async move { register_one(&cfg, i).await });
            }
            match set.join_next().await {
                Some(Ok(Ok(true))) => out.created += 1,
                Some(Ok(Ok(false))) => out.already_existed += 1,
                Some(Ok(Err(e))) => {
                    if out.failed == 0 {
                        tracing::warn!(error = %e, "in-band registration failed");
                    }
                    out.failed += 1;
                }
                Some(Err(e)) => bail!("registration task: {e}"),
                None => break,
            }
        }
        out.seconds = started.elapsed().as_secs_f64();
        out.users_per_sec = out.created as f64 / out.seconds.max(1e-9);
        Ok(out)
    }
}

/// Registers user `i`; `Ok(false)` if it already existed.
async fn register_one(cfg: &XmppConfig, i: usize) -> Result<bool> {
    let mut s = Stream::connect(cfg.addr, None).await?;
    s.open(&cfg.domain).await?;
    s.send(&format!(
        "<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>{}{i}</username>\
         <password>{}</password></query></iq>",
        cfg.user_prefix,
        password(i)
    ))
    .await?;
    let reply = loop {
        let e = s.expect("<iq").await?;
        if e.contains("id='reg'") || e.contains("id=\"reg\"") {
            break e;
        }
    };
    let _ = s.send("</stream:stream>").await;
    if is_type(&reply, "result") {
        Ok(true)
    } else if reply.contains("<conflict") {
        Ok(false)
    } else {
        bail!("registration of {}{i} refused: {reply}", cfg.user_prefix)
    }
}

async fn writer(mut wr: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<WriteCmd>) {
    let mut batch = Vec::with_capacity(1024);
    while let Some(cmd) = rx.recv().await {
        let mut close = false;
        let mut push = |c: WriteCmd, batch: &mut Vec<u8>| match c {
            WriteCmd::Data(d) => batch.extend_from_slice(d.as_bytes()),
            WriteCmd::Close => close = true,
        };
        push(cmd, &mut batch);
        while let Ok(c) = rx.try_recv() {
            push(c, &mut batch);
            if batch.len() > 16 * 1024 {
                break;
            }
        }
        if wr.write_all(&batch).await.is_err() {
            return;
        }
        batch.clear();
        if batch.capacity() > 16 * 1024 {
            batch.shrink_to(1024);
        }
        if close {
            let _ = wr.shutdown().await;
            return;
        }
    }
    let _ = wr.shutdown().await;
}

async fn reader(mut rd: OwnedReadHalf, mut split: Splitter, sink: Sink) {
    let mut chunk = vec![0u8; 2048];
    'outer: loop {
        while let Some(ev) = split.next_event() {
            match ev {
                XmlEvent::Element(e) if e.starts_with("<message") => {
                    if is_type(&e, "error") {
                        tracing::debug!(stanza = %e, "message error");
                        continue;
                    }
                    if let Some(text) = body_of(&e) {
                        sink(Incoming::Message { text });
                    }
                }
                XmlEvent::Element(e)
                    if e.starts_with("<stream:error") && e.contains("<conflict") =>
                {
                    sink(Incoming::Kicked);
                }
                XmlEvent::StreamClose => break 'outer,
                _ => {}
            }
        }
        match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => split.push(&chunk[..n]),
        }
    }
    sink(Incoming::Closed);
}

enum WriteCmd {
    Data(String),
    Close,
}

/// A logged-in XMPP session.
pub struct XmppSession {
    tx: mpsc::UnboundedSender<WriteCmd>,
    domain: String,
    seq: AtomicU64,
}

impl XmppSession {
    pub async fn send(&self, to: &str, text: &str) -> Result<()> {
        let id = self.seq.fetch_add(1, Ordering::Relaxed);
        let stanza = format!(
            "<message to='{to}@{}' type='chat' id='m{id}'><body>{}</body></message>",
            self.domain,
            escape(text)
        );
        self.tx
            .send(WriteCmd::Data(stanza))
            .map_err(|_| anyhow::anyhow!("connection closed"))
    }

    pub async fn heartbeat(&self) -> Result<()> {
        self.tx
            .send(WriteCmd::Data(" ".to_owned()))
            .map_err(|_| anyhow::anyhow!("connection closed"))
    }

    pub async fn close(&self) {
        let _ = self.tx.send(WriteCmd::Data("</stream:stream>".to_owned()));
        let _ = self.tx.send(WriteCmd::Close);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_stream_into_stanzas() {
        let mut s = Splitter::default();
        s.push(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' id='x' version='1.0'>");
        s.push(b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>");
        s.push(b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><message from='a@x/y' type='chat'><body>hi &amp; a&gt;b</bo");
        assert_eq!(s.next_event(), Some(XmlEvent::StreamOpen));
        match s.next_event() {
            Some(XmlEvent::Element(e)) => {
                assert!(e.starts_with("<stream:features") && e.contains(">PLAIN<"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(s.next_event(), Some(XmlEvent::Element(e)) if e.starts_with("<success")));
        assert_eq!(s.next_event(), None);
        s.push(b"dy></message> <stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>");
        match s.next_event() {
            Some(XmlEvent::Element(e)) => assert_eq!(body_of(&e).as_deref(), Some("hi & a>b")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(s.next_event(), Some(XmlEvent::Element(e)) if e.contains("<conflict")));
        assert_eq!(s.next_event(), Some(XmlEvent::StreamClose));
        assert_eq!(s.next_event(), None);
    }

    #[test]
    fn attribute_values_may_hold_gt() {
        let mut s = Splitter::default();
        s.push(b"<iq type='result' id='a>b'/>");
        assert!(matches!(s.next_event(), Some(XmlEvent::Element(e)) if e.ends_with("'a>b'/>")));
    }
}
