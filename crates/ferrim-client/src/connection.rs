//! A raw msync WebSocket connection: connect (optionally from a chosen local address),
//! send and receive whole frames, and perform the PROVISION login step.

use std::net::SocketAddr;

use bytes::Bytes;
use ferrim_proto::pb::{m_sync::Command, provision::CompressType, MSync, Provision};
use ferrim_proto::Message as _;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

use crate::frames::{self, now_ms, parse_expires_in};
use crate::options::{LoginOptions, TransportOptions};
use crate::ClientError;

/// The WebSocket stream type used by this crate.
pub type WsStream = WebSocketStream<TcpStream>;

/// The outcome of a successful login.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// `Provision.resource` echoed by the server (what the SDK adopts); empty if absent.
    pub resource: String,
    /// `expires_in` of the reply's `authToken` JSON (absolute expiry, epoch ms).
    pub expires_at_ms: Option<u64>,
    /// The `Provision.sessionId` this client sent (reused by LOGOUT).
    pub session_id: String,
    /// The server's complete `Provision` reply.
    pub reply: Provision,
}

/// Interprets the server's answer to PROVISION (spec §3.3, §6.1).
///
/// Non-OK status → [`ClientError::LoginRefused`]; missing status, LZ4 accepted or a bad
/// `authToken` → [`ClientError::Protocol`].
pub fn interpret_provision_reply(
    frame: &MSync,
    session_id: String,
) -> Result<Session, ClientError> {
    if frame.command != Some(Command::Provision as i32) {
        return Err(ClientError::Protocol(format!(
            "expected a PROVISION reply, got command {:?}",
            frame.command
        )));
    }
    let reply = Provision::decode(frame.payload.as_deref().unwrap_or_default())?;
    let Some(status) = &reply.status else {
        return Err(ClientError::Protocol(
            "Provision reply without status (the SDK crashes)".to_owned(),
        ));
    };
    let code = status.error_code.unwrap_or(0);
    if code != 0 {
        return Err(ClientError::LoginRefused {
            code,
            reason: status.reason.clone().unwrap_or_default(),
        });
    }
    if reply.protocol_compress_type.first() == Some(&(CompressType::CompressLz4 as i32)) {
        return Err(ClientError::Protocol(
            "server accepted LZ4 protocol compression, which this client does not implement"
                .to_owned(),
        ));
    }
    let expires_at_ms =
        parse_expires_in(reply.auth_token.as_deref()).map_err(ClientError::Protocol)?;
    Ok(Session {
        resource: reply.resource.clone().unwrap_or_default(),
        expires_at_ms,
        session_id,
        reply,
    })
}

/// One msync WebSocket connection without any protocol logic: the building block of
/// [`Client`](crate::Client), and the tool for tests that need to send odd frames or read
/// raw replies.
#[derive(Debug)]
pub struct Connection {
    ws: WsStream,
    local_addr: SocketAddr,
    peer_addr: SocketAddr,
}

fn invalid_url(url: &str, detail: impl Into<String>) -> ClientError {
    ClientError::InvalidUrl {
        url: url.to_owned(),
        detail: detail.into(),
    }
}

impl Connection {
    /// Opens a TCP connection (bound to `transport.local_addr` if set) and upgrades it to a
    /// WebSocket at `url` (`ws://host[:port]/path`, used verbatim like the SDK does).
    pub async fn connect(url: &str, transport: &TransportOptions) -> Result<Self, ClientError> {
        let request = url
            .into_client_request()
            .map_err(|e| invalid_url(url, e.to_string()))?;
        let uri = request.uri();
        match uri.scheme_str() {
            Some("ws") => {}
            Some("wss") => return Err(invalid_url(url, "wss is not supported")),
            other => return Err(invalid_url(url, format!("unsupported scheme {other:?}"))),
        }
        let host = uri
            .host()
            .ok_or_else(|| invalid_url(url, "no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(80);

        let work = async {
            let mut addrs = tokio::net::lookup_host((host.as_str(), port)).await?;
            let want_v4 = transport.local_addr.map(|ip| ip.is_ipv4());
            let addr = addrs
                .find(|a| want_v4.is_none_or(|v4| a.is_ipv4() == v4))
                .ok_or_else(|| invalid_url(url, "host resolves to no usable address"))?;
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            if let Some(ip) = transport.local_addr {
                socket.bind(SocketAddr::new(ip, 0))?;
            }
            let stream = socket.connect(addr).await?;
            stream.set_nodelay(transport.nodelay)?;
            let local_addr = stream.local_addr()?;
            let peer_addr = stream.peer_addr()?;
            let (ws, _response) = tokio_tungstenite::client_async_with_config(
                request,
                stream,
                Some(transport.websocket),
            )
            .await?;
            Ok::<_, ClientError>(Connection {
                ws,
                local_addr,
                peer_addr,
            })
        };
        tokio::time::timeout(transport.connect_timeout, work)
            .await
            .map_err(|_| ClientError::Timeout("websocket connect"))?
    }

    /// Local socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Server socket address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// Sends any WebSocket message (binary, text, ping, close, raw frame).
    pub async fn send_ws(&mut self, msg: WsMessage) -> Result<(), ClientError> {
        self.ws.send(msg).await?;
        Ok(())
    }

    /// Sends one binary frame as is.
    pub async fn send_binary(&mut self, frame: impl Into<Bytes>) -> Result<(), ClientError> {
        self.send_ws(WsMessage::Binary(frame.into())).await
    }

    /// Sends one text frame (the SDK never does; for malformed-input tests).
    pub async fn send_text_frame(&mut self, text: &str) -> Result<(), ClientError> {
        self.send_ws(WsMessage::text(text)).await
    }

    /// Encodes and sends an `MSync`.
    pub async fn send_msync(&mut self, frame: &MSync) -> Result<(), ClientError> {
        self.send_binary(frame.encode_to_vec()).await
    }

    /// The next WebSocket message; `Ok(None)` once the stream has ended.
    pub async fn recv_ws(&mut self) -> Result<Option<WsMessage>, ClientError> {
        match self.ws.next().await {
            Some(Ok(msg)) => Ok(Some(msg)),
            Some(Err(e)) => Err(e.into()),
            None => Ok(None),
        }
    }

    /// The next binary frame decoded as `MSync`, skipping ping/pong; `Ok(None)` when the
    /// server closed. A text frame is a [`ClientError::Protocol`].
    pub async fn recv_msync(&mut self) -> Result<Option<MSync>, ClientError> {
        loop {
            match self.recv_ws().await? {
                None | Some(WsMessage::Close(_)) => return Ok(None),
                Some(WsMessage::Binary(b)) => return Ok(Some(MSync::decode(b)?)),
                Some(WsMessage::Text(t)) => {
                    return Err(ClientError::Protocol(format!(
                        "server sent a text frame: {:?}",
                        t.as_str()
                    )))
                }
                Some(_) => {}
            }
        }
    }

    /// Sends the SDK's PROVISION for `opts` and returns the `sessionId` it carried.
    pub async fn send_provision(&mut self, opts: &LoginOptions) -> Result<String, ClientError> {
        let session_id = opts
            .session_id
            .clone()
            .unwrap_or_else(|| format!("{}:", now_ms()));
        let frame = frames::provision_frame(frames::trace_id(), opts, &session_id);
        self.send_binary(frame).await?;
        Ok(session_id)
    }

    /// Logs in: sends PROVISION and waits (`opts.login_timeout`) for the PROVISION reply,
    /// skipping any other frame. See [`interpret_provision_reply`] for the errors.
    pub async fn provision(&mut self, opts: &LoginOptions) -> Result<Session, ClientError> {
        let session_id = self.send_provision(opts).await?;
        let wait = async {
            loop {
                match self.recv_msync().await? {
                    None => return Err(ClientError::Disconnected),
                    Some(frame) if frame.command == Some(Command::Provision as i32) => {
                        return Ok(frame)
                    }
                    Some(frame) => {
                        tracing::debug!(command = ?frame.command, "frame before the Provision reply ignored");
                    }
                }
            }
        };
        let reply = tokio::time::timeout(opts.login_timeout, wait)
            .await
            .map_err(|_| ClientError::Timeout("provision reply"))??;
        interpret_provision_reply(&reply, session_id)
    }

    /// Sends a WebSocket close frame and waits until the server's close (or EOF).
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.ws.close(None).await?;
        while let Some(msg) = self.ws.next().await {
            if msg.is_err() {
                break;
            }
        }
        Ok(())
    }

    /// The underlying WebSocket stream.
    pub fn into_inner(self) -> WsStream {
        self.ws
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn reply(hexstr: &str) -> Result<Session, ClientError> {
        let frame = MSync::decode(hex(hexstr).as_slice()).unwrap();
        interpret_provision_reply(&frame, "1:".to_owned())
    }

    #[test]
    fn provision_ok_vector() {
        let s = reply("40034a30420208006a0b776562696d5f7765625f3192011c7b22657870697265735f696e223a313736373232353630303030307d").unwrap();
        assert_eq!(s.resource, "webim_web_1");
        assert_eq!(s.expires_at_ms, Some(1_767_225_600_000));
        assert_eq!(s.session_id, "1:");
    }

    #[test]
    fn provision_fail_vectors() {
        match reply("40034a1a421808011214536f7272792c20746f6b656e2065787069726564") {
            Err(ClientError::LoginRefused { code, reason }) => {
                assert_eq!(code, 1);
                assert_eq!(reason, "Sorry, token expired");
            }
            other => panic!("unexpected {other:?}"),
        }
        match reply("40034a044202080d") {
            Err(ClientError::LoginRefused { code, reason }) => {
                assert_eq!(code, 13);
                assert_eq!(reason, "");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn provision_reply_rules() {
        let frame = |p: Provision| MSync {
            command: Some(Command::Provision as i32),
            payload: Some(p.encode_to_vec()),
            ..MSync::default()
        };
        let ok = ferrim_proto::pb::Status::default();
        // Missing status.
        let r = interpret_provision_reply(&frame(Provision::default()), String::new());
        assert!(matches!(r, Err(ClientError::Protocol(_))));
        // Empty Status{} is OK; no resource → empty resource; no authToken → no expiry.
        let s = interpret_provision_reply(
            &frame(Provision {
                status: Some(ok.clone()),
                ..Provision::default()
            }),
            String::new(),
        )
        .unwrap();
        assert_eq!(s.resource, "");
        assert_eq!(s.expires_at_ms, None);
        // LZ4 accepted.
        let r = interpret_provision_reply(
            &frame(Provision {
                status: Some(ok.clone()),
                protocol_compress_type: vec![2],
                ..Provision::default()
            }),
            String::new(),
        );
        assert!(matches!(r, Err(ClientError::Protocol(_))));
        // authToken `{}` would expire the SDK at once.
        let r = interpret_provision_reply(
            &frame(Provision {
                status: Some(ok),
                auth_token: Some("{}".into()),
                ..Provision::default()
            }),
            String::new(),
        );
        assert!(matches!(r, Err(ClientError::Protocol(_))));
    }
}
