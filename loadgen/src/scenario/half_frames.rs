//! `half-frames`: unauthenticated sockets opened at once, either idle or (`--hostile`) each
//! declaring a 1 GiB text frame and streaming part of it. Run against a fresh relay each way: the
//! relay must refuse the frame from its header, so its RSS with the hostile sockets stays within a
//! few MB of the idle ones (docs/performance.md, "Hostile frames: memory").
//!
//! Raw TCP with a hand-written handshake: no WebSocket library sends a frame it cannot finish.

use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::cli::{Cli, HalfFramesArgs};
use crate::probe;
use crate::report::Report;
use crate::target::Target;

/// The declared payload length: 1 GiB.
const DECLARED: u64 = 1 << 30;

pub async fn run(cli: &Cli, args: &HalfFramesArgs) -> anyhow::Result<Report> {
    let target = Target::parse(&cli.url)?;
    let Some(pid) = cli.relay_pid else {
        bail!("half-frames measures the relay's memory: pass --relay-pid");
    };
    super::raise_nofile();
    let start = probe::sample(pid)?;

    // All at once, so the relay holds every one of them at the same time if it holds any.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.sockets {
        let target = target.clone();
        let stream = if args.hostile {
            Some(args.stream)
        } else {
            None
        };
        tasks.spawn(async move { open(&target, stream).await });
    }
    let mut sockets = Vec::with_capacity(args.sockets);
    let mut cut_short = 0usize;
    while let Some(joined) = tasks.join_next().await {
        let (socket, streamed) = joined??;
        if args.hostile && streamed < args.stream {
            cut_short += 1;
        }
        sockets.push(socket);
    }
    tokio::time::sleep(args.settle).await;
    let held = probe::sample(pid)?;
    drop(sockets);

    let what = if args.hostile {
        format!(
            "each declaring a 1 GiB text frame and streaming up to {} KiB of it",
            args.stream / 1024
        )
    } else {
        "idle".to_owned()
    };
    let mut r = Report::new("half-frames", cli.label.as_deref());
    r.row(
        "scenario",
        format!(
            "{} unauthenticated sockets opened at once, {what}",
            args.sockets
        ),
    );
    r.num("relay_rss_start_mib", start.rss_mib());
    r.num("relay_rss_mib", held.rss_mib());
    r.num("relay_rss_added_mib", held.rss_mib() - start.rss_mib());
    r.num("hostile_sockets_cut_short", cut_short as f64);
    r.row(
        "relay RSS",
        format!(
            "start {:.1} MiB, with the sockets {:.1} MiB ({:+.1} MiB){}",
            start.rss_mib(),
            held.rss_mib(),
            held.rss_mib() - start.rss_mib(),
            if args.hostile {
                format!("; {cut_short} sockets could not write all they meant to")
            } else {
                String::new()
            }
        ),
    );
    Ok(r)
}

/// Upgrades; with `stream`, declares a 1 GiB text frame and streams up to that many bytes of it
/// without waiting on the relay. Returns the socket (still open on this side) and how much of the
/// payload was written.
async fn open(target: &Target, stream: Option<usize>) -> anyhow::Result<(TcpStream, usize)> {
    let mut socket = upgrade(target).await?;
    let Some(stream) = stream else {
        return Ok((socket, 0));
    };
    let mut frame = vec![0x81, 0xff];
    frame.extend_from_slice(&DECLARED.to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    socket.write_all(&frame).await?;
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < stream {
        match tokio::time::timeout(Duration::from_millis(200), socket.write_all(&chunk)).await {
            Ok(Ok(())) => sent += chunk.len(),
            _ => break,
        }
    }
    Ok((socket, sent))
}

/// Opens a TCP connection and completes the WebSocket handshake by hand.
async fn upgrade(target: &Target) -> anyhow::Result<TcpStream> {
    let mut socket = TcpStream::connect(target.addr)
        .await
        .with_context(|| format!("cannot connect to {}", target.addr))?;
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        target.addr
    );
    socket.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if socket.read(&mut byte).await? == 0 {
            bail!("the relay closed during the handshake");
        }
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        bail!(
            "the relay refused the upgrade: {}",
            String::from_utf8_lossy(&head)
                .lines()
                .next()
                .unwrap_or_default()
        );
    }
    Ok(socket)
}
