//! What the agent runs with: command-line flags and environment variables laid over the config
//! file, defaults filled in, and every value checked once, before anything connects.
//!
//! Precedence is flag or `DESKBRIDGE_…` variable, then `agent.toml`, then the default. Each error
//! names where the bad value came from, so the user knows which of the three to fix.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use awc::http::Uri;
use deskbridge_protocol::ClientId;

use crate::cli::{ConfigArg, ConnectionArgs, TimingArgs};
use crate::config::{self, ConfigError, FileConfig, Token};

/// Reporting interval when neither flag nor file sets one.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// A checked relay address.
#[derive(Clone, PartialEq, Eq)]
pub struct RelayUrl {
    uri: Uri,
}

impl RelayUrl {
    /// Accepts `ws://` and `wss://` URLs with a host.
    pub fn parse(text: &str) -> Result<Self, String> {
        let uri: Uri = text
            .trim()
            .parse()
            .map_err(|e| format!("not a URL ({e})"))?;
        match uri.scheme_str() {
            Some("ws") | Some("wss") => {}
            Some("http") | Some("https") => {
                return Err("use ws:// or wss:// instead of http:// or https://".into())
            }
            _ => return Err("it must start with ws:// or wss://".into()),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err("it has no host".into());
        }
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err("credentials in the URL are not supported; use the token setting".into());
        }
        Ok(Self { uri })
    }

    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Whether the connection is TLS (`wss://`).
    pub fn is_tls(&self) -> bool {
        self.uri.scheme_str() == Some("wss")
    }
}

impl fmt::Display for RelayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Query strings could carry secrets someone put there; logs show scheme, host and path.
        write!(
            f,
            "{}://{}{}",
            self.uri.scheme_str().unwrap_or("ws"),
            self.uri.authority().map(|a| a.as_str()).unwrap_or(""),
            self.uri.path()
        )
    }
}

impl fmt::Debug for RelayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelayUrl({self})")
    }
}

/// One or more relays, tried in turn: a cluster's nodes listed directly, for when there is no
/// load balancer in front of them (or as a fallback to one).
#[derive(Clone, PartialEq, Eq)]
pub struct Relays {
    urls: Vec<RelayUrl>,
}

impl Relays {
    /// Parses a comma-separated list of `ws://`/`wss://` URLs.
    pub fn parse(text: &str) -> Result<Self, String> {
        let urls = text
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| RelayUrl::parse(u).map_err(|why| format!("{u}: {why}")))
            .collect::<Result<Vec<_>, _>>()?;
        if urls.is_empty() {
            return Err("no URL given".into());
        }
        Ok(Self { urls })
    }

    /// The relay to use on attempt `n` (0, 1, 2, … cycling through the list).
    pub fn nth(&self, n: usize) -> &RelayUrl {
        &self.urls[n % self.urls.len()]
    }

    pub fn len(&self) -> usize {
        self.urls.len()
    }

    /// Whether any relay is `wss://`, so the client needs TLS.
    pub fn any_tls(&self) -> bool {
        self.urls.iter().any(RelayUrl::is_tls)
    }
}

impl fmt::Display for Relays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, url) in self.urls.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{url}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Relays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Relays({self})")
    }
}

/// Connection timing; see [`TimingArgs`] for what each one means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    pub ping_interval: Duration,
    pub idle_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub stable_after: Duration,
    pub replaced_backoff: Duration,
    pub connect_timeout: Duration,
}

impl Default for Timing {
    /// The same values as the hidden flags' defaults (a test keeps the two in step).
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            stable_after: Duration::from_secs(30),
            replaced_backoff: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Everything `run` needs, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config_path: PathBuf,
    /// Tried in turn; the agent moves to the next one when a connection fails or drops.
    pub relays: Relays,
    pub id: ClientId,
    pub token: Option<Token>,
    pub interval: Duration,
    pub ca_file: Option<PathBuf>,
    pub timing: Timing,
}

/// A value that cannot be used, with where it came from and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "no relay configured in {path}: run `deskbridge-agent install --relay wss://HOST/ws`, or \
         pass --relay (or set DESKBRIDGE_RELAY)"
    )]
    NoRelay { path: PathBuf },
    #[error("{what} {value:?} from {origin} is not usable: {why}")]
    Invalid {
        what: &'static str,
        value: String,
        origin: String,
        why: String,
    },
    #[error("{0}")]
    Timing(String),
}

/// Where a setting came from, for error messages.
fn origin(from_cli: bool, flag: &str, path: &Path) -> String {
    if from_cli {
        let env = format!("DESKBRIDGE_{}", flag.to_uppercase().replace('-', "_"));
        format!("--{flag} / {env}")
    } else {
        format!("{}", path.display())
    }
}

/// The config path in use and whether the user named it (a named file must exist).
pub fn config_path(arg: &ConfigArg) -> Result<(PathBuf, bool), ConfigError> {
    match &arg.config {
        Some(path) => Ok((path.clone(), true)),
        None => Ok((config::default_path()?, false)),
    }
}

/// Lays the flags over the file: every flag given replaces the file's value.
pub fn merge(file: FileConfig, cli: &ConnectionArgs) -> FileConfig {
    FileConfig {
        relay: cli.relay.clone().or(file.relay),
        id: cli.id.clone().or(file.id),
        token: cli.token.clone().map(Token::new).or(file.token),
        interval: cli.interval.clone().or(file.interval),
        ca_file: cli.ca_file.clone().or(file.ca_file),
    }
}

/// The id to use when none is configured: the hostname, made safe for ids.
pub fn default_id() -> ClientId {
    ClientId::sanitize(&sysinfo::System::host_name().unwrap_or_default())
}

/// Reads the config (if any) and resolves the settings for `run`.
pub fn for_run(
    config: &ConfigArg,
    cli: &ConnectionArgs,
    timing: &TimingArgs,
) -> Result<Settings, SettingsError> {
    let (path, named) = config_path(config)?;
    let file = match config::load(&path)? {
        Some(file) => file,
        // Flags alone are enough to run, unless the user pointed at a file that is not there.
        None if !named && cli.relay.is_some() => FileConfig::default(),
        None => return Err(ConfigError::Missing { path }.into()),
    };
    resolve(path, file, cli, check_timing(timing)?)
}

/// Checks a merged config; `cli` tells which values came from flags, for the error messages.
pub fn resolve(
    path: PathBuf,
    file: FileConfig,
    cli: &ConnectionArgs,
    timing: Timing,
) -> Result<Settings, SettingsError> {
    let merged = merge(file, cli);
    let invalid = |what, value: &str, from_cli, flag: &str, why: String| SettingsError::Invalid {
        what,
        value: value.to_owned(),
        origin: origin(from_cli, flag, &path),
        why,
    };

    let relay_text = merged
        .relay
        .as_deref()
        .ok_or_else(|| SettingsError::NoRelay { path: path.clone() })?;
    let relays = Relays::parse(relay_text)
        .map_err(|why| invalid("relay", relay_text, cli.relay.is_some(), "relay", why))?;

    let id = match merged.id.as_deref() {
        Some(text) => ClientId::new(text)
            .map_err(|e| invalid("id", text, cli.id.is_some(), "id", e.to_string()))?,
        None => default_id(),
    };

    let interval = match merged.interval.as_deref() {
        Some(text) => {
            let from_cli = cli.interval.is_some();
            let interval = humantime::parse_duration(text).map_err(|e| {
                invalid(
                    "interval",
                    text,
                    from_cli,
                    "interval",
                    format!("{e} (examples: 1s, 500ms)"),
                )
            })?;
            if interval < sysinfo::MINIMUM_CPU_UPDATE_INTERVAL {
                return Err(invalid(
                    "interval",
                    text,
                    from_cli,
                    "interval",
                    format!(
                        "the shortest interval that gives a meaningful CPU reading here is {}",
                        humantime::format_duration(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL)
                    ),
                ));
            }
            interval
        }
        None => DEFAULT_INTERVAL,
    };

    // An empty token is the same as none: `DESKBRIDGE_TOKEN=` should not send `"token":""`.
    let token = merged.token.filter(|t| !t.expose().is_empty());
    if let Some(t) = &token {
        if t.expose().len() > deskbridge_protocol::messages::MAX_TOKEN_LEN {
            return Err(invalid(
                "token",
                "<redacted>",
                cli.token.is_some(),
                "token",
                format!(
                    "it is {} bytes; the limit is {}",
                    t.expose().len(),
                    deskbridge_protocol::messages::MAX_TOKEN_LEN
                ),
            ));
        }
    }

    Ok(Settings {
        config_path: path,
        relays,
        id,
        token,
        interval,
        ca_file: merged.ca_file,
        timing,
    })
}

pub fn check_timing(t: &TimingArgs) -> Result<Timing, SettingsError> {
    let fail = |why: &str| Err(SettingsError::Timing(why.to_owned()));
    if t.ping_interval.is_zero() || t.backoff_min.is_zero() || t.connect_timeout.is_zero() {
        return fail("--ping-interval, --backoff-min and --connect-timeout must be above zero");
    }
    if t.idle_timeout <= t.ping_interval {
        return fail(
            "--idle-timeout must be longer than --ping-interval, or every pause drops the \
             connection",
        );
    }
    if t.backoff_max < t.backoff_min {
        return fail("--backoff-max must not be shorter than --backoff-min");
    }
    Ok(Timing {
        ping_interval: t.ping_interval,
        idle_timeout: t.idle_timeout,
        backoff_min: t.backoff_min,
        backoff_max: t.backoff_max,
        stable_after: t.stable_after,
        replaced_backoff: t.replaced_backoff,
        connect_timeout: t.connect_timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn timing_args() -> TimingArgs {
        let Command::Run(run) = Cli::parse_from(["a", "run"]).command else {
            unreachable!()
        };
        run.timing
    }

    fn timing() -> Timing {
        Timing::default()
    }

    #[test]
    fn timing_defaults_match_the_flag_defaults() {
        assert_eq!(check_timing(&timing_args()).unwrap(), Timing::default());
    }

    fn file(relay: &str) -> FileConfig {
        FileConfig {
            relay: Some(relay.into()),
            ..Default::default()
        }
    }

    fn resolve_file(f: FileConfig) -> Result<Settings, SettingsError> {
        resolve(
            "/cfg/agent.toml".into(),
            f,
            &ConnectionArgs::default(),
            timing(),
        )
    }

    #[test]
    fn several_relays_are_tried_in_turn() {
        let relays = Relays::parse("ws://a:1/ws, wss://b/ws,").unwrap();
        assert_eq!(relays.len(), 2);
        assert_eq!(relays.nth(0).to_string(), "ws://a:1/ws");
        assert_eq!(relays.nth(1).to_string(), "wss://b/ws");
        assert_eq!(relays.nth(2).to_string(), "ws://a:1/ws");
        assert!(relays.any_tls());
        assert_eq!(relays.to_string(), "ws://a:1/ws, wss://b/ws");
        let e = Relays::parse("ws://a/ws,http://b/ws").unwrap_err();
        assert!(e.starts_with("http://b/ws:"), "{e}");
        assert!(Relays::parse(" , ").is_err());
    }

    #[test]
    fn relay_urls_are_checked() {
        assert!(RelayUrl::parse("ws://127.0.0.1:8080/ws").is_ok());
        let tls = RelayUrl::parse("wss://relay.example/ws").unwrap();
        assert!(tls.is_tls());
        assert!(RelayUrl::parse("https://relay.example/ws")
            .unwrap_err()
            .contains("wss://"));
        assert!(RelayUrl::parse("relay.example").is_err());
        assert!(RelayUrl::parse("ws:///ws").is_err());
        assert!(RelayUrl::parse("ws://user:pw@host/ws").is_err());
        let shown = RelayUrl::parse("wss://h:1/ws?key=secret")
            .unwrap()
            .to_string();
        assert_eq!(shown, "wss://h:1/ws");
    }

    #[test]
    fn flags_override_the_file_and_defaults_fill_in() {
        let cli = ConnectionArgs {
            id: Some("from-flag".into()),
            ..Default::default()
        };
        let f = FileConfig {
            relay: Some("ws://file/ws".into()),
            id: Some("from-file".into()),
            token: Some(Token::new("tok")),
            ..Default::default()
        };
        let s = resolve("/c".into(), f, &cli, timing()).unwrap();
        assert_eq!(s.id.as_str(), "from-flag");
        assert_eq!(s.relays.to_string(), "ws://file/ws");
        assert_eq!(s.token.as_ref().map(Token::expose), Some("tok"));
        assert_eq!(s.interval, DEFAULT_INTERVAL);
        assert_eq!(s.timing.ping_interval, Duration::from_secs(10));
    }

    #[test]
    fn default_id_is_a_valid_id() {
        let id = resolve_file(file("ws://h/ws")).unwrap().id;
        assert_eq!(id, default_id());
        assert!(ClientId::new(id.as_str()).is_ok());
    }

    #[test]
    fn errors_say_which_value_and_where_it_came_from() {
        let mut f = file("ws://h/ws");
        f.id = Some("a b".into());
        let e = resolve_file(f).unwrap_err().to_string();
        assert!(e.contains("id \"a b\" from /cfg/agent.toml"), "{e}");

        let cli = ConnectionArgs {
            relay: Some("http://h/ws".into()),
            ..Default::default()
        };
        let e = resolve("/c".into(), FileConfig::default(), &cli, timing())
            .unwrap_err()
            .to_string();
        assert!(e.contains("--relay / DESKBRIDGE_RELAY"), "{e}");
        assert!(e.contains("ws://"), "{e}");

        let e = resolve_file(FileConfig::default()).unwrap_err();
        assert!(matches!(e, SettingsError::NoRelay { .. }));
        assert!(e.to_string().contains("install --relay"));
    }

    #[test]
    fn interval_has_a_floor() {
        let mut f = file("ws://h/ws");
        f.interval = Some("10ms".into());
        let e = resolve_file(f).unwrap_err().to_string();
        assert!(e.contains("shortest interval"), "{e}");
        let mut f = file("ws://h/ws");
        f.interval = Some("often".into());
        assert!(resolve_file(f).unwrap_err().to_string().contains("1s"));
        let mut f = file("ws://h/ws");
        f.interval = Some("2s".into());
        assert_eq!(resolve_file(f).unwrap().interval, Duration::from_secs(2));
    }

    #[test]
    fn empty_token_means_none_and_errors_never_show_a_token() {
        let mut f = file("ws://h/ws");
        f.token = Some(Token::new(""));
        assert!(resolve_file(f).unwrap().token.is_none());
        let mut f = file("ws://h/ws");
        f.token = Some(Token::new("x".repeat(5000)));
        let e = resolve_file(f).unwrap_err().to_string();
        assert!(e.contains("<redacted>") && !e.contains("xxxx"), "{e}");
        let mut f = file("ws://h/ws");
        f.token = Some(Token::new("hunter2"));
        let s = resolve_file(f).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn timing_must_make_sense() {
        let mut t = timing_args();
        t.idle_timeout = t.ping_interval;
        assert!(matches!(check_timing(&t), Err(SettingsError::Timing(_))));
        let mut t = timing_args();
        t.backoff_max = t.backoff_min / 2;
        assert!(matches!(check_timing(&t), Err(SettingsError::Timing(_))));
    }

    #[test]
    fn a_missing_default_config_is_fine_with_flags_but_not_a_named_one() {
        let dir = tempfile::tempdir().unwrap();
        let named = ConfigArg {
            config: Some(dir.path().join("absent.toml")),
        };
        let cli = ConnectionArgs {
            relay: Some("ws://h/ws".into()),
            ..Default::default()
        };
        let e = for_run(&named, &cli, &timing_args()).unwrap_err();
        assert!(matches!(
            e,
            SettingsError::Config(ConfigError::Missing { .. })
        ));
        let e = for_run(&named, &ConnectionArgs::default(), &timing_args()).unwrap_err();
        assert!(e.to_string().contains("install --relay"), "{e}");
    }
}
