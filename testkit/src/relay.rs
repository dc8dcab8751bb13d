//! A real relay, in this process, on an ephemeral loopback port.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use deskbridge_relay::{Config, RelayHandle};

/// How long a test waits for something that should happen at once.
pub const WAIT: Duration = Duration::from_secs(5);

/// Anonymous clients and rate limits out of the way; tests of a limit set it themselves.
pub fn test_config() -> Config {
    Config {
        allow_anonymous: true,
        message_rate: 10_000,
        message_burst: 10_000,
        commands_per_second: 10_000,
        ..Config::default()
    }
}

/// Starts a relay with `config` on 127.0.0.1, port 0; it stops when the handle is stopped or
/// dropped.
pub fn start_relay(config: Config) -> RelayHandle {
    let _ = env_logger::builder().is_test(true).try_init();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    RelayHandle::spawn(listener, config).expect("relay starts")
}

/// Starts a relay on a given address (a restart on the port a client keeps dialling), retrying
/// while the previous one's port is still being released.
pub fn start_relay_on(addr: SocketAddr, config: Config) -> RelayHandle {
    let _ = env_logger::builder().is_test(true).try_init();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpListener::bind(addr) {
            Ok(listener) => return RelayHandle::spawn(listener, config).expect("relay restarts"),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("cannot bind {addr} again: {e}"),
        }
    }
}

/// `ws://ADDR/ws`, the relay's WebSocket endpoint.
pub fn ws_url(addr: SocketAddr) -> String {
    format!("ws://{addr}/ws")
}

/// A loopback port free a moment ago, for programs that must be told a port rather than
/// reporting the one they got (nats-server, Chromium's debugging port).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}
