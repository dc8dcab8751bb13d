//! Running a shard in this process or in a child process, behind one interface.
//!
//! A child is this same binary started with the hidden `shard` subcommand. It prints one JSON line
//! when connected (`{"ready":…}`), waits for `go` on stdin, and prints one JSON line with its
//! result (`{"result":…}`); histograms travel as value/count pairs so merging stays exact.

use std::process::Stdio;

use anyhow::{anyhow, bail, Context as _};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{run_shard, Control, FleetPlan, Ready, Shard, ShardResult};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Ready(Ready),
    Result(Box<ShardResult>),
}

/// A shard as the coordinator sees it.
pub enum ShardHandle {
    Local {
        ready: Option<oneshot::Receiver<Ready>>,
        go: Option<oneshot::Sender<()>>,
        done: JoinHandle<anyhow::Result<ShardResult>>,
    },
    Child(Box<ChildShard>),
}

/// A shard in a child process: its handle, the pipe that says go, the lines it reports.
pub struct ChildShard {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl ShardHandle {
    /// Runs the shard as a task of this process.
    pub fn local(plan: FleetPlan, shard: Shard) -> Self {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (go_tx, go_rx) = oneshot::channel();
        let control = Control {
            ready: ready_tx,
            go: go_rx,
        };
        let done = tokio::spawn(run_shard(plan, shard, control));
        ShardHandle::Local {
            ready: Some(ready_rx),
            go: Some(go_tx),
            done,
        }
    }

    /// Runs the shard in a child process with `threads` worker threads.
    pub fn spawn_child(plan: &FleetPlan, shard: Shard, threads: usize) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the load generator's own binary")?;
        let mut child = tokio::process::Command::new(exe)
            .arg("--threads")
            .arg(threads.to_string())
            .arg("shard")
            .arg("--plan")
            .arg(serde_json::to_string(plan)?)
            .arg("--index")
            .arg(shard.index.to_string())
            .arg("--count")
            .arg(shard.count.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start a load generator child process")?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        Ok(ShardHandle::Child(Box::new(ChildShard {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        })))
    }

    pub fn pid(&self) -> Option<u32> {
        match self {
            ShardHandle::Local { .. } => None,
            ShardHandle::Child(c) => c.child.id(),
        }
    }

    async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> anyhow::Result<Line> {
        let line = lines.next_line().await?.ok_or_else(|| {
            anyhow!("a load generator child exited early (see its messages above)")
        })?;
        serde_json::from_str(&line).with_context(|| format!("bad line from a child: {line:.200}"))
    }

    /// Waits until the shard is connected and paired.
    pub async fn ready(&mut self) -> anyhow::Result<Ready> {
        match self {
            ShardHandle::Local { ready, done, .. } => match ready.take() {
                Some(rx) => match rx.await {
                    Ok(r) => Ok(r),
                    Err(_) => Err(match done.await {
                        Ok(Err(e)) => e,
                        Ok(Ok(_)) => anyhow!("shard finished without reporting ready"),
                        Err(e) => anyhow!("shard panicked: {e}"),
                    }),
                },
                None => bail!("ready asked twice"),
            },
            ShardHandle::Child(c) => match Self::next_line(&mut c.lines).await? {
                Line::Ready(r) => Ok(r),
                Line::Result(_) => bail!("child sent its result before ready"),
            },
        }
    }

    /// Starts the shard's traffic.
    pub async fn go(&mut self) -> anyhow::Result<()> {
        match self {
            ShardHandle::Local { go, .. } => {
                if let Some(go) = go.take() {
                    let _ = go.send(());
                }
                Ok(())
            }
            ShardHandle::Child(c) => {
                c.stdin.write_all(b"go\n").await?;
                c.stdin.flush().await?;
                Ok(())
            }
        }
    }

    /// Waits for the shard's result.
    pub async fn finish(self) -> anyhow::Result<ShardResult> {
        match self {
            ShardHandle::Local { done, .. } => {
                done.await.map_err(|e| anyhow!("shard panicked: {e}"))?
            }
            ShardHandle::Child(mut c) => {
                let line = Self::next_line(&mut c.lines).await;
                let _ = c.child.wait().await;
                match line? {
                    Line::Result(r) => Ok(*r),
                    Line::Ready(_) => bail!("child sent ready twice"),
                }
            }
        }
    }
}

/// The child's side: run the shard, talking to the parent over stdin and stdout.
pub async fn serve(plan: FleetPlan, shard: Shard) -> anyhow::Result<()> {
    let (ready_tx, ready_rx) = oneshot::channel();
    let (go_tx, go_rx) = oneshot::channel();
    let run = tokio::spawn(run_shard(
        plan,
        shard,
        Control {
            ready: ready_tx,
            go: go_rx,
        },
    ));
    let mut out = tokio::io::stdout();
    let ready = match ready_rx.await {
        Ok(ready) => ready,
        Err(_) => {
            return Err(run
                .await
                .map_err(|e| anyhow!("shard panicked: {e}"))?
                .err()
                .unwrap_or_else(|| anyhow!("shard ended early")))
        }
    };
    write_line(&mut out, &Line::Ready(ready)).await?;
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    match stdin.next_line().await? {
        Some(l) if l.trim() == "go" => {
            let _ = go_tx.send(());
        }
        other => bail!("expected \"go\" from the parent, got {other:?}"),
    }
    let result = run.await.map_err(|e| anyhow!("shard panicked: {e}"))??;
    write_line(&mut out, &Line::Result(Box::new(result))).await
}

async fn write_line(out: &mut tokio::io::Stdout, line: &Line) -> anyhow::Result<()> {
    let mut text = serde_json::to_string(line)?;
    text.push('\n');
    out.write_all(text.as_bytes()).await?;
    out.flush().await?;
    Ok(())
}
