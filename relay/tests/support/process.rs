//! The real `deskbridge-relay` binary as a child process, for what only a process shows: signals,
//! exit codes, a node that dies without a word.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// `deskbridge-relay serve` on an ephemeral loopback port; killed (SIGKILL) when dropped.
pub struct RelayProcess {
    child: Child,
    addr: SocketAddr,
}

impl RelayProcess {
    /// Starts `deskbridge-relay serve --listen 127.0.0.1:0 --allow-anonymous <extra…>` and waits
    /// until it logs the address it listens on.
    pub fn start(extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_deskbridge-relay"))
            .args(["serve", "--listen", "127.0.0.1:0", "--allow-anonymous"])
            .args(extra)
            .env("RUST_LOG", "info")
            .env_remove("DESKBRIDGE_SECRET_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start deskbridge-relay");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Keeps reading so the relay never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the relay logs its address");
        Self {
            child,
            addr: addr.parse().unwrap(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("poll the relay process")
    }

    /// SIGKILL: the relay dies without a word to anyone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
