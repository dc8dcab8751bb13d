//! One simulated client's connection: a loopback TCP socket from a chosen source address, the
//! WebSocket handshake, and protocol v1 authentication up to `welcome`.
//!
//! Clients are tokio-tungstenite streams. Each connection is driven by one task that both sends
//! and reads (no split halves, no locks), and the WebSocket buffers are sized for small frames so
//! 18,000 of them fit in one process without the library's 128 KiB default read buffer each.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use deskbridge_auth::KeySet;
use deskbridge_protocol::{ClientId, ClientMode};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use crate::frames;
use crate::target::Target;

pub type Ws = WebSocketStream<TcpStream>;

/// Why a client could not get to `welcome`.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("tcp connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("websocket handshake: {0}")]
    Handshake(#[source] tungstenite::Error),
    #[error("websocket: {0}")]
    Ws(#[from] tungstenite::Error),
    #[error("the relay refused: {0}")]
    Refused(String),
    #[error("the relay closed the connection")]
    Closed,
    #[error("no welcome within {0:?}")]
    Timeout(Duration),
}

impl ClientError {
    /// A short name to count failures by.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::Connect(_) => "connect",
            ClientError::Handshake(_) => "handshake",
            ClientError::Ws(_) => "websocket",
            ClientError::Refused(_) => "refused",
            ClientError::Closed => "closed",
            ClientError::Timeout(_) => "timeout",
        }
    }
}

/// How clients prove who they are.
pub enum Credentials {
    /// No token: the relay runs with `--allow-anonymous`.
    Anonymous,
    /// Tokens minted locally with the relay's key file, as `deskbridge-relay token` would.
    Keys(KeySet),
}

impl Credentials {
    pub fn load(secret_file: Option<&Path>) -> anyhow::Result<Self> {
        Ok(match secret_file {
            Some(path) => Credentials::Keys(KeySet::load(path)?),
            None => Credentials::Anonymous,
        })
    }

    fn token(&self, client_id: &str, mode: ClientMode) -> Option<String> {
        let Credentials::Keys(keys) = self else {
            return None;
        };
        let id = ClientId::new(client_id).expect("load generator ids are valid");
        Some(deskbridge_auth::token::mint(
            keys,
            &id,
            mode,
            Duration::from_secs(3600),
        ))
    }
}

/// Socket options of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Dial {
    pub source: IpAddr,
    /// A small receive buffer makes a client that stops reading push back on the relay quickly.
    pub recv_buffer: Option<u32>,
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        // Write every frame at once: we measure latency, not batching.
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
}

/// Opens the TCP connection and does the WebSocket handshake.
pub async fn open(target: &Target, dial: Dial) -> Result<Ws, ClientError> {
    let socket = match target.addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(ClientError::Connect)?;
    socket
        .bind(SocketAddr::new(dial.source, 0))
        .map_err(ClientError::Connect)?;
    if let Some(size) = dial.recv_buffer {
        socket
            .set_recv_buffer_size(size)
            .map_err(ClientError::Connect)?;
    }
    let stream = socket
        .connect(target.addr)
        .await
        .map_err(ClientError::Connect)?;
    stream.set_nodelay(true).map_err(ClientError::Connect)?;
    let request = target
        .url
        .as_str()
        .into_client_request()
        .map_err(ClientError::Handshake)?;
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(ws_config()))
        .await
        .map_err(ClientError::Handshake)?;
    Ok(ws)
}

/// Sends `authentication` and reads up to `welcome`.
pub async fn join(
    ws: &mut Ws,
    credentials: &Credentials,
    client_id: &str,
    mode: ClientMode,
) -> Result<(), ClientError> {
    let token = credentials.token(client_id, mode);
    let auth = frames::authentication(client_id, mode.as_str(), token.as_deref());
    ws.send(Message::text(auth)).await?;
    while let Some(message) = ws.next().await {
        if let Message::Text(text) = message? {
            match frames::classify(&text) {
                frames::Incoming::Welcome => return Ok(()),
                frames::Incoming::Error => {
                    return Err(ClientError::Refused(frames::error_code(&text)))
                }
                _ => {}
            }
        }
    }
    Err(ClientError::Closed)
}

/// [`open`] then [`join`], within `timeout`.
pub async fn connect(
    target: &Target,
    dial: Dial,
    credentials: &Credentials,
    client_id: &str,
    mode: ClientMode,
    timeout: Duration,
) -> Result<Ws, ClientError> {
    let attempt = async {
        let mut ws = open(target, dial).await?;
        join(&mut ws, credentials, client_id, mode).await?;
        Ok(ws)
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| ClientError::Timeout(timeout))?
}
