//! Starting the agent at login, per platform: a systemd user unit or XDG autostart entry on Linux,
//! a LaunchAgent on macOS, the `Run` registry key on Windows.
//!
//! Every platform module is plain `std` code (files and the platform's own command-line tools), so
//! all three compile and have their file contents unit-tested on any OS; only the one matching the
//! build target is wired to the commands. Everything `install` writes carries [`MARKER`], and
//! `uninstall` only removes files that carry it, so it never deletes something a user wrote.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;

#[cfg_attr(not(all(unix, not(target_os = "macos"))), allow(dead_code))]
pub mod linux;
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub mod macos;
#[cfg_attr(not(windows), allow(dead_code))]
pub mod windows;

#[cfg(all(unix, not(target_os = "macos")))]
pub use linux::{install, status, uninstall};
#[cfg(target_os = "macos")]
pub use macos::{install, status, uninstall};
#[cfg(windows)]
pub use windows::{install, status, uninstall};

/// Identifies files written by `install`.
pub const MARKER: &str =
    "Written by `deskbridge-agent install`; `deskbridge-agent uninstall` removes it.";

/// The command run at login: `<exe> run --config <config>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub exe: PathBuf,
    pub config: PathBuf,
}

impl Launch {
    /// The arguments after the program.
    pub fn args(&self) -> Vec<OsString> {
        vec!["run".into(), "--config".into(), self.config.clone().into()]
    }

    /// Program and arguments as UTF-8 strings; service files are text.
    pub fn argv(&self) -> Result<Vec<String>, AutostartError> {
        std::iter::once(self.exe.clone().into_os_string())
            .chain(self.args())
            .map(|a| {
                a.into_string()
                    .map_err(|a| AutostartError::BadPath(PathBuf::from(a)))
            })
            .collect()
    }
}

/// Why autostart could not be set up or removed.
#[derive(Debug, thiserror::Error)]
pub enum AutostartError {
    #[error("cannot write {path}: {source}; check that the directory is writable")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot remove {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },
    #[error(
        "the path {0:?} cannot be put in a login entry (it is not UTF-8 or has a line break); \
         move the agent or its config to a plainer path"
    )]
    BadPath(PathBuf),
    #[error("cannot find the home directory (is HOME set?)")]
    NoHome,
    #[error("{0}")]
    Command(String),
}

/// Writes `contents` to `path` if it differs (so a repeated install changes nothing), creating
/// the parent directory. Returns whether the file changed.
pub(crate) fn write_if_changed(
    path: &std::path::Path,
    contents: &str,
) -> Result<bool, AutostartError> {
    let err = |source| AutostartError::Write {
        path: path.to_owned(),
        source,
    };
    if std::fs::read_to_string(path).is_ok_and(|old| old == contents) {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    std::fs::write(path, contents).map_err(err)?;
    Ok(true)
}

/// Removes `path` if it exists and carries [`MARKER`]. Returns what happened, for the report.
pub(crate) fn remove_ours(path: &std::path::Path) -> Result<Removal, AutostartError> {
    match std::fs::read_to_string(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Removal::Absent),
        Ok(text) if !text.contains(MARKER) => Ok(Removal::NotOurs),
        _ => std::fs::remove_file(path)
            .map(|()| Removal::Removed)
            .map_err(|source| AutostartError::Remove {
                path: path.to_owned(),
                source,
            }),
    }
}

/// Outcome of [`remove_ours`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    Removed,
    Absent,
    NotOurs,
}

/// Runs a helper program (systemctl, launchctl, reg) and returns its exit status and output;
/// `Err` if it could not be started at all.
pub(crate) fn run_tool(
    program: &std::path::Path,
    args: &[&str],
) -> io::Result<std::process::Output> {
    log::debug!("running {} {}", program.display(), args.join(" "));
    std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
}

/// The first line of a tool's error output, for a log line.
pub(crate) fn tool_error(output: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr);
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    format!("{} {}", output.status, line.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_runs_the_agent_with_its_config() {
        let l = Launch {
            exe: "/opt/deskbridge agent/bin".into(),
            config: "/home/a/.config/deskbridge/agent.toml".into(),
        };
        assert_eq!(
            l.argv().unwrap(),
            [
                "/opt/deskbridge agent/bin",
                "run",
                "--config",
                "/home/a/.config/deskbridge/agent.toml"
            ]
        );
    }

    #[test]
    fn only_marked_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("ours");
        let theirs = dir.path().join("theirs");
        std::fs::write(&ours, format!("# {MARKER}\n")).unwrap();
        std::fs::write(&theirs, "[Unit]\n").unwrap();
        assert_eq!(remove_ours(&ours).unwrap(), Removal::Removed);
        assert_eq!(remove_ours(&ours).unwrap(), Removal::Absent);
        assert_eq!(remove_ours(&theirs).unwrap(), Removal::NotOurs);
        assert!(theirs.exists());
    }

    #[test]
    fn writing_the_same_contents_twice_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/file");
        assert!(write_if_changed(&path, "x").unwrap());
        assert!(!write_if_changed(&path, "x").unwrap());
        assert!(write_if_changed(&path, "y").unwrap());
    }
}
