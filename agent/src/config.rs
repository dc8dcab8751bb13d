//! The agent's TOML config file: where it lives, how it is read, and how `install` writes it.
//!
//! The file holds a secret (the relay token), so it is written with mode 0600 inside a 0700
//! directory, and atomically (temp file + rename) so a crash never leaves half a config behind.
//! Every way a file can be wrong maps to a [`ConfigError`] whose message is one line that says
//! what is wrong *and* what to do about it: this is the first thing a user sees when the agent
//! does not start.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the config inside the platform config directory.
pub const CONFIG_FILE_NAME: &str = "agent.toml";

/// The relay token. A newtype so that no `{:?}` of a config or settings value can leak it to a log.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(String);

impl Token {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The secret itself, for the one place that needs it: the `authentication` message.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The contents of `agent.toml`. Every field is optional so that a file may set only some of them
/// and flags or environment variables fill in the rest. Unknown keys are refused: a typo such as
/// `rely = …` must not be silently ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// WebSocket URL of the relay, `ws://…` or `wss://…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<String>,
    /// Client id; the hostname when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Token>,
    /// Reporting interval in humantime form (`1s`, `500ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Extra PEM file of CA certificates trusted for `wss://`, besides the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// Why the config could not be read or written. Each message is a single line ending in advice.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no config file at {path}: run `deskbridge-agent install --relay wss://HOST/ws` to create \
         one, or pass --relay (or set DESKBRIDGE_RELAY)"
    )]
    Missing { path: PathBuf },
    #[error("cannot read config {path}: {source}; check the path and its permissions")]
    Unreadable { path: PathBuf, source: io::Error },
    #[error(
        "config {path} line {line}: {message}; fix the file or rerun `deskbridge-agent install`"
    )]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("cannot write config {path}: {source}; check that the directory is writable")]
    Unwritable { path: PathBuf, source: io::Error },
    #[error(
        "cannot find the user's config directory (is HOME set?); pass --config PATH to choose a file"
    )]
    NoConfigDir,
}

/// The default config path: `<platform config dir>/deskbridge/agent.toml`
/// (`$XDG_CONFIG_HOME/deskbridge/agent.toml` or `~/.config/deskbridge/agent.toml` on Linux).
pub fn default_path() -> Result<PathBuf, ConfigError> {
    directories::ProjectDirs::from("", "", "deskbridge")
        .map(|dirs| dirs.config_dir().join(CONFIG_FILE_NAME))
        .ok_or(ConfigError::NoConfigDir)
}

/// Reads and parses the config at `path`. `Ok(None)` when there is no file there.
pub fn load(path: &Path) -> Result<Option<FileConfig>, ConfigError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Unreadable {
                path: path.to_owned(),
                source,
            })
        }
    };
    parse(&text).map(Some).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        line: e.line,
        message: e.message,
    })
}

/// A TOML error boiled down to its line number and a single-line message.
#[derive(Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Parses config text. Separate from [`load`] so the messages can be tested without files.
pub fn parse(text: &str) -> Result<FileConfig, ParseError> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(1);
        // toml's messages may span lines; the user gets one.
        let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
        ParseError { line, message }
    })
}

/// Writes `config` to `path` with owner-only permissions, creating the directory (0700) if needed.
pub fn save(path: &Path, config: &FileConfig) -> Result<(), ConfigError> {
    let unwritable = |source| ConfigError::Unwritable {
        path: path.to_owned(),
        source,
    };
    let body = toml::to_string(config).map_err(|e| unwritable(io::Error::other(e)))?;
    let text = format!(
        "# deskbridge agent configuration, written by `deskbridge-agent install`.\n\
         # Holds the relay token: keep this file private (mode 0600).\n{body}"
    );
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private_dir(dir).map_err(unwritable)?;
    let tmp = dir.join(format!(".{CONFIG_FILE_NAME}.tmp-{}", std::process::id()));
    let written = write_private(&tmp, text.as_bytes()).and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map_err(unwritable)
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    // The mode above only applies to a new file; a leftover temp file keeps its old mode.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_config() {
        let c = parse(
            "relay = \"wss://relay.example/ws\"\nid = \"box\"\ntoken = \"s3cret\"\n\
             interval = \"2s\"\nca_file = \"/etc/ca.pem\"\n",
        )
        .unwrap();
        assert_eq!(c.relay.as_deref(), Some("wss://relay.example/ws"));
        assert_eq!(c.id.as_deref(), Some("box"));
        assert_eq!(c.token, Some(Token::new("s3cret")));
        assert_eq!(c.interval.as_deref(), Some("2s"));
        assert_eq!(c.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(parse("").unwrap(), FileConfig::default());
    }

    #[test]
    fn errors_name_the_line_and_stay_on_one_line() {
        let e = parse("relay = \"ws://a/ws\"\nrely = \"x\"\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("unknown field `rely`"), "{}", e.message);
        assert!(!e.message.contains('\n'));

        let e = parse("relay = \"ws://a/ws\"\n\nid = [1\n").unwrap_err();
        assert_eq!(e.line, 3, "{e:?}");
        assert!(!e.message.contains('\n'));

        let e = parse("interval = 5\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("string"), "{}", e.message);
    }

    #[test]
    fn config_error_messages_are_single_lines_with_advice() {
        let e = ConfigError::Syntax {
            path: "/x/agent.toml".into(),
            line: 2,
            message: "unknown field `rely`".into(),
        };
        let text = e.to_string();
        assert!(text.starts_with("config /x/agent.toml line 2: unknown field `rely`"));
        assert!(text.contains("fix the file"));
        let e = ConfigError::Missing {
            path: "/x/agent.toml".into(),
        };
        assert!(e.to_string().contains("deskbridge-agent install --relay"));
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn token_debug_is_redacted() {
        let c = FileConfig {
            token: Some(Token::new("hunter2")),
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn save_then_load_round_trips_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/deskbridge/agent.toml");
        let config = FileConfig {
            relay: Some("ws://127.0.0.1:1/ws".into()),
            id: Some("box".into()),
            token: Some(Token::new("t")),
            interval: Some("1s".into()),
            ca_file: None,
        };
        save(&path, &config).unwrap();
        assert_eq!(load(&path).unwrap(), Some(config.clone()));
        // Saving again over the file (install run twice) gives the same bytes.
        let first = fs::read(&path).unwrap();
        save(&path, &config).unwrap();
        assert_eq!(fs::read(&path).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let dir_mode = fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(dir_mode & 0o777, 0o700);
        }
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from(CONFIG_FILE_NAME)]);
    }

    #[test]
    fn load_distinguishes_missing_from_unreadable_and_broken() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(&dir.path().join("none.toml")).unwrap().is_none());
        // A directory where a file should be cannot be read.
        assert!(matches!(
            load(dir.path()),
            Err(ConfigError::Unreadable { .. })
        ));
        let broken = dir.path().join("broken.toml");
        fs::write(&broken, "relay = \n").unwrap();
        let e = load(&broken).unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { line: 1, .. }), "{e}");
    }
}
