//! `reference-relay`: a minimal forwarder, the floor the relay's figures are compared with.
//!
//! It speaks just enough of protocol v1 for the load generator: it parses the `authentication`
//! message, pairs connections by client id, answers `welcome`, tells a desktop how many viewers it
//! has (`presence`), and forwards every other text frame unparsed — desktop to viewers, viewer to
//! desktop. No validation, limits, history, heartbeats or metrics: what is left is the kernel,
//! tokio and tungstenite. It is the "minimal tokio-tungstenite forwarder" of issue 6's reference
//! points, measured here by the same probe as the relay (docs/performance.md). Loopback only.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::bail;
use deskbridge_protocol::{parse_client_message, ClientMessage, ClientMode};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

type Tx = mpsc::UnboundedSender<Message>;

/// One client id's connections.
#[derive(Default)]
struct Room {
    desktop: Option<(u64, Tx)>,
    viewers: Vec<(u64, Tx)>,
}

impl Room {
    fn presence(&self) -> Message {
        Message::text(format!(
            r#"{{"event":"presence","desktop":"{}","viewers":{}}}"#,
            if self.desktop.is_some() {
                "online"
            } else {
                "offline"
            },
            self.viewers.len()
        ))
    }

    /// Tells everyone in the room who is there.
    fn broadcast_presence(&self) {
        let presence = self.presence();
        for (_, tx) in self.desktop.iter().chain(&self.viewers) {
            let _ = tx.send(presence.clone());
        }
    }
}

type Rooms = Arc<Mutex<HashMap<String, Arc<Mutex<Room>>>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serves until the process is stopped.
pub async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    if !listen.ip().is_loopback() {
        bail!("the reference relay listens on loopback addresses only, not {listen}");
    }
    let listener = TcpListener::bind(listen).await?;
    // Same words as the relay's log line, so scripts find the port the same way.
    eprintln!(
        "reference relay listening on http://{}",
        listener.local_addr()?
    );
    let rooms = Rooms::default();
    let mut next = 0u64;
    loop {
        let (stream, _) = listener.accept().await?;
        next += 1;
        let (rooms, id) = (rooms.clone(), next);
        tokio::spawn(async move {
            if let Err(e) = connection(stream, rooms, id).await {
                log::debug!("reference relay connection {id}: {e}");
            }
        });
    }
}

async fn connection(stream: TcpStream, rooms: Rooms, id: u64) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let mut ws = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await?;
    let auth = loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => match parse_client_message(&text) {
                Ok(ClientMessage::Authentication(auth)) => break auth,
                _ => bail!("first message is not authentication"),
            },
            Some(Ok(_)) => continue,
            _ => return Ok(()),
        }
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (Some(client_id), mode @ (ClientMode::Desktop | ClientMode::Web)) =
        (auth.client_id, auth.client_mode)
    else {
        bail!("the reference forwarder pairs desktop and web connections only, not fleet ones");
    };
    let client_id = client_id.as_str().to_owned();
    let room = lock(&rooms).entry(client_id.clone()).or_default().clone();
    ws.send(Message::text(format!(
        r#"{{"event":"welcome","client_id":"{client_id}","client_mode":"{mode}","protocol":1,"server":"reference"}}"#
    )))
    .await?;
    {
        let mut r = lock(&room);
        if mode == ClientMode::Desktop {
            r.desktop = Some((id, tx));
        } else {
            r.viewers.push((id, tx));
        }
        r.broadcast_presence();
    }
    let result = relay(&mut ws, &mut rx, &room, mode).await;
    {
        let mut r = lock(&room);
        if mode == ClientMode::Desktop {
            if r.desktop.as_ref().is_some_and(|(d, _)| *d == id) {
                r.desktop = None;
            }
        } else {
            r.viewers.retain(|(v, _)| *v != id);
        }
        r.broadcast_presence();
        if r.desktop.is_none() && r.viewers.is_empty() {
            lock(&rooms).remove(&client_id);
        }
    }
    result
}

async fn relay(
    ws: &mut tokio_tungstenite::WebSocketStream<TcpStream>,
    rx: &mut mpsc::UnboundedReceiver<Message>,
    room: &Mutex<Room>,
    mode: ClientMode,
) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let r = lock(room);
                    let frame = Message::Text(text);
                    if mode == ClientMode::Desktop {
                        for (_, viewer) in &r.viewers {
                            let _ = viewer.send(frame.clone());
                        }
                    } else if let Some((_, desktop)) = &r.desktop {
                        let _ = desktop.send(frame);
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Ok(()),
                Some(Ok(_)) => {}
            },
            outgoing = rx.recv() => match outgoing {
                Some(frame) => ws.send(frame).await?,
                None => return Ok(()),
            },
        }
    }
}
