//! Child processes for what only a process shows (signals, exit codes, a node that dies without a
//! word, a binary's own output), each with a deadline and killed when its handle drops.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a server process gets to log the address it listens on.
const START_WAIT: Duration = Duration::from_secs(10);

/// A server child process (the relay, the load generator's reference forwarder) that logs
/// `listening on http://ADDR` on stderr; killed (SIGKILL) when dropped.
pub struct RelayProcess {
    child: Child,
    addr: SocketAddr,
    /// Every line it has logged on stderr so far.
    log: Arc<Mutex<Vec<String>>>,
}

impl RelayProcess {
    /// Starts `BINARY serve --listen 127.0.0.1:0 --allow-anonymous <extra…>` (the relay binary:
    /// pass `env!("CARGO_BIN_EXE_deskbridge-relay")`) and waits until it logs its address.
    /// Without `--data-dir` in `extra` it runs with `--no-store`: a test never writes into the
    /// home directory's default store.
    pub fn start(binary: &str, extra: &[&str]) -> Self {
        let mut cmd = Command::new(binary);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--allow-anonymous"])
            .args(extra)
            .args((!extra.iter().any(|a| a.starts_with("--data-dir"))).then_some("--no-store"))
            .env_remove("DESKBRIDGE_DATA_DIR")
            .env("RUST_LOG", "info")
            .env_remove("DESKBRIDGE_SECRET_FILE");
        Self::spawn(cmd)
    }

    /// Spawns `cmd` (its stdin and stdout null, stderr read here) and waits until it logs
    /// `listening on http://ADDR`.
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        // Keeps reading so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(addr.trim().to_owned());
                }
                lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let addr = match rx.recv_timeout(START_WAIT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{cmd:?} did not log `listening on http://…` within {START_WAIT:?}");
            }
        };
        Self {
            child,
            addr: addr
                .parse()
                .unwrap_or_else(|e| panic!("listening address {addr:?}: {e}")),
            log,
        }
    }

    /// The lines it has logged on stderr so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("poll the child process")
    }

    /// SIGKILL: the process dies without a word to anyone.
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

/// Runs `cmd` to the end with stdout and stderr captured (read as they come, so a chatty child
/// never blocks on a full pipe); kills it and panics if it takes longer than `within`.
pub fn output_within(cmd: &mut Command, within: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}
