//! Linux (and other freedesktop systems): a systemd user unit when a systemd user manager is
//! running, otherwise an XDG autostart entry that desktop sessions start at graphical login.
//!
//! The unit is preferred because systemd restarts the agent if it crashes (`Restart=on-failure`)
//! and collects its log (`journalctl --user -u deskbridge-agent`). Exit status 78 (`EX_CONFIG`,
//! what the agent returns for a broken config) is excluded from restarts: retrying cannot fix a
//! config file. The `systemctl` calls are best effort: a failure is reported with the command to
//! run by hand, and the unit file stays, since it is correct and only needs enabling.

use std::path::{Path, PathBuf};

use super::{
    remove_ours, run_tool, tool_error, write_if_changed, AutostartError, Launch, Removal, MARKER,
};
use crate::cli::AutostartArgs;

pub const UNIT_NAME: &str = "deskbridge-agent.service";
pub const DESKTOP_NAME: &str = "deskbridge-agent.desktop";

/// Where the two kinds of login entries live, under `$XDG_CONFIG_HOME` (or `~/.config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub unit: PathBuf,
    pub desktop: PathBuf,
}

impl Paths {
    pub fn under(config_home: &Path) -> Self {
        Self {
            unit: config_home.join("systemd/user").join(UNIT_NAME),
            desktop: config_home.join("autostart").join(DESKTOP_NAME),
        }
    }

    fn current() -> Result<Self, AutostartError> {
        let dirs = directories::BaseDirs::new().ok_or(AutostartError::NoHome)?;
        Ok(Self::under(dirs.config_dir()))
    }
}

/// The systemd user unit for `launch`.
pub fn unit_file(launch: &Launch) -> Result<String, AutostartError> {
    let exec = launch
        .argv()?
        .iter()
        .map(|a| systemd_quote(a))
        .collect::<Result<Vec<_>, _>>()?
        .join(" ");
    Ok(format!(
        "# {MARKER}\n\
         [Unit]\n\
         Description=deskbridge desktop agent (reports CPU load, plays beeps)\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={exec}\n\
         Restart=on-failure\n\
         RestartSec=5\n\
         RestartPreventExitStatus=78\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n"
    ))
}

/// The XDG autostart entry for `launch`.
pub fn desktop_entry(launch: &Launch) -> Result<String, AutostartError> {
    let exec = launch
        .argv()?
        .iter()
        .map(|a| desktop_quote(a))
        .collect::<Result<Vec<_>, _>>()?
        .join(" ");
    Ok(format!(
        "# {MARKER}\n\
         [Desktop Entry]\n\
         Type=Application\n\
         Name=deskbridge agent\n\
         Comment=Reports CPU load to the deskbridge relay and plays beeps\n\
         Exec={exec}\n\
         Terminal=false\n\
         NoDisplay=true\n\
         X-GNOME-Autostart-enabled=true\n"
    ))
}

fn no_line_breaks(arg: &str) -> Result<(), AutostartError> {
    if arg.contains(['\n', '\r']) {
        Err(AutostartError::BadPath(arg.into()))
    } else {
        Ok(())
    }
}

/// One `ExecStart=` word: double-quoted unless plainly safe, with `%` and `$` doubled so systemd
/// does not expand them as specifiers or variables.
fn systemd_quote(arg: &str) -> Result<String, AutostartError> {
    no_line_breaks(arg)?;
    let escaped = arg.replace('%', "%%").replace('$', "$$");
    let plain = !escaped.is_empty()
        && escaped
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@=,%$".contains(c));
    if plain {
        return Ok(escaped);
    }
    Ok(format!(
        "\"{}\"",
        escaped.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// One `Exec=` argument per the Desktop Entry spec: always double-quoted, with `"` `` ` `` `$` `\`
/// backslash-escaped, then every backslash doubled again because the value is itself an escaped
/// string, and `%` doubled because it introduces field codes.
fn desktop_quote(arg: &str) -> Result<String, AutostartError> {
    no_line_breaks(arg)?;
    let mut quoted = String::with_capacity(arg.len() + 2);
    for c in arg.chars() {
        match c {
            '"' | '`' | '$' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            '%' => quoted.push_str("%%"),
            _ => quoted.push(c),
        }
    }
    Ok(format!("\"{}\"", quoted.replace('\\', "\\\\")))
}

/// Whether `systemctl --user` reaches a running user manager.
fn user_manager(systemctl: &Path) -> bool {
    match run_tool(systemctl, &["--user", "show", "--property=Version"]) {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            log::debug!("no systemd user manager: {}", tool_error(&out));
            false
        }
        Err(e) => {
            log::debug!(
                "no systemd user manager: cannot run {}: {e}",
                systemctl.display()
            );
            false
        }
    }
}

/// Runs `systemctl --user ARGS`; on failure returns a line telling the user what to run.
fn systemctl(systemctl: &Path, args: &[&str]) -> Result<(), String> {
    let mut full = vec!["--user"];
    full.extend_from_slice(args);
    let manual = format!("systemctl {}", full.join(" "));
    match run_tool(systemctl, &full) {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "`{manual}` failed ({}); run it by hand",
            tool_error(&out)
        )),
        Err(e) => Err(format!("cannot run `{manual}`: {e}; run it by hand")),
    }
}

pub fn install(launch: &Launch, args: &AutostartArgs) -> Result<Vec<String>, AutostartError> {
    install_at(&Paths::current()?, launch, &args.systemctl)
}

pub fn uninstall(args: &AutostartArgs) -> Result<Vec<String>, AutostartError> {
    uninstall_at(&Paths::current()?, &args.systemctl)
}

pub fn status(args: &AutostartArgs) -> Result<Vec<String>, AutostartError> {
    Ok(status_at(&Paths::current()?, &args.systemctl))
}

fn install_at(
    paths: &Paths,
    launch: &Launch,
    systemctl_program: &Path,
) -> Result<Vec<String>, AutostartError> {
    let mut report = Vec::new();
    if user_manager(systemctl_program) {
        let changed = write_if_changed(&paths.unit, &unit_file(launch)?)?;
        report.push(format!(
            "{} systemd user unit {}",
            if changed { "wrote" } else { "kept" },
            paths.unit.display()
        ));
        // A unit replaces an XDG entry from an earlier install; both would start two agents.
        if remove_ours(&paths.desktop)? == Removal::Removed {
            report.push(format!(
                "removed XDG autostart entry {}",
                paths.desktop.display()
            ));
        }
        let enabled = systemctl(systemctl_program, &["daemon-reload"])
            .and_then(|()| systemctl(systemctl_program, &["enable", "--now", UNIT_NAME]));
        match enabled {
            Ok(()) => report.push(format!(
                "enabled {UNIT_NAME} for default.target and started it \
                 (logs: journalctl --user -u {UNIT_NAME})"
            )),
            Err(why) => {
                log::warn!("{why}");
                report.push(format!("{UNIT_NAME} is NOT enabled yet: {why}"));
            }
        }
    } else {
        let changed = write_if_changed(&paths.desktop, &desktop_entry(launch)?)?;
        report.push(format!(
            "no systemd user manager here; {} XDG autostart entry {}: the agent starts at your \
             next graphical login (start it now with `deskbridge-agent run`)",
            if changed { "wrote" } else { "kept" },
            paths.desktop.display()
        ));
        if remove_ours(&paths.unit)? == Removal::Removed {
            report.push(format!(
                "removed systemd user unit {}",
                paths.unit.display()
            ));
        }
    }
    Ok(report)
}

fn uninstall_at(paths: &Paths, systemctl_program: &Path) -> Result<Vec<String>, AutostartError> {
    let mut report = Vec::new();
    let unit_is_ours = std::fs::read_to_string(&paths.unit).is_ok_and(|t| t.contains(MARKER));
    if unit_is_ours && user_manager(systemctl_program) {
        if let Err(why) = systemctl(systemctl_program, &["disable", "--now", UNIT_NAME]) {
            log::warn!("{why}");
        }
    }
    for (what, path) in [
        ("systemd user unit", &paths.unit),
        ("XDG autostart entry", &paths.desktop),
    ] {
        match remove_ours(path)? {
            Removal::Removed => report.push(format!("removed {what} {}", path.display())),
            Removal::NotOurs => report.push(format!(
                "left {} alone: it was not written by deskbridge-agent install",
                path.display()
            )),
            Removal::Absent => {}
        }
    }
    if report.iter().any(|l| l.contains("systemd user unit")) && user_manager(systemctl_program) {
        if let Err(why) = systemctl(systemctl_program, &["daemon-reload"]) {
            log::warn!("{why}");
        }
    }
    Ok(report)
}

fn status_at(paths: &Paths, systemctl_program: &Path) -> Vec<String> {
    let ours = |p: &Path| std::fs::read_to_string(p).is_ok_and(|t| t.contains(MARKER));
    let mut lines = Vec::new();
    if ours(&paths.unit) {
        let state = match run_tool(systemctl_program, &["--user", "is-enabled", UNIT_NAME]) {
            Ok(out) => {
                let word = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                if word.is_empty() {
                    "state unknown".to_owned()
                } else {
                    word
                }
            }
            Err(_) => "state unknown: systemctl not available".to_owned(),
        };
        lines.push(format!(
            "systemd user unit {} ({state})",
            paths.unit.display()
        ));
    }
    if ours(&paths.desktop) {
        lines.push(format!("XDG autostart entry {}", paths.desktop.display()));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch() -> Launch {
        Launch {
            exe: "/usr/local/bin/deskbridge-agent".into(),
            config: "/home/a b/.config/deskbridge/agent.toml".into(),
        }
    }

    #[test]
    fn unit_file_runs_the_agent_and_restarts_on_failure() {
        let unit = unit_file(&launch()).unwrap();
        assert!(unit.starts_with(&format!("# {MARKER}\n")));
        assert!(unit.contains(
            "\nExecStart=/usr/local/bin/deskbridge-agent run --config \"/home/a b/.config/deskbridge/agent.toml\"\n"
        ), "{unit}");
        assert!(unit.contains("\nRestart=on-failure\n"));
        assert!(unit.contains("\nWantedBy=default.target\n"));
    }

    #[test]
    fn systemd_words_are_quoted_and_unexpanded() {
        assert_eq!(systemd_quote("/a/b").unwrap(), "/a/b");
        assert_eq!(systemd_quote("a b").unwrap(), "\"a b\"");
        assert_eq!(systemd_quote("50%").unwrap(), "50%%");
        assert_eq!(systemd_quote("$HOME").unwrap(), "$$HOME");
        assert_eq!(systemd_quote("a\"b\\").unwrap(), "\"a\\\"b\\\\\"");
        assert_eq!(systemd_quote("").unwrap(), "\"\"");
        assert!(systemd_quote("a\nb").is_err());
    }

    #[test]
    fn desktop_entry_exec_follows_the_spec() {
        let entry = desktop_entry(&launch()).unwrap();
        assert!(entry.contains(
            "\nExec=\"/usr/local/bin/deskbridge-agent\" \"run\" \"--config\" \"/home/a b/.config/deskbridge/agent.toml\"\n"
        ), "{entry}");
        assert!(entry.contains("\nType=Application\n"));
        assert_eq!(desktop_quote("100%").unwrap(), "\"100%%\"");
        // `\` → `\\` (Exec quoting) → `\\\\` (string escaping).
        assert_eq!(desktop_quote("a\\b").unwrap(), "\"a\\\\\\\\b\"");
        assert_eq!(desktop_quote("a\"b").unwrap(), "\"a\\\\\"b\"");
    }

    #[test]
    fn paths_follow_xdg_config_home() {
        let p = Paths::under(Path::new("/x/cfg"));
        assert_eq!(
            p.unit,
            PathBuf::from("/x/cfg/systemd/user/deskbridge-agent.service")
        );
        assert_eq!(
            p.desktop,
            PathBuf::from("/x/cfg/autostart/deskbridge-agent.desktop")
        );
    }

    #[test]
    fn without_a_user_manager_install_falls_back_to_xdg_autostart() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path());
        let missing = dir.path().join("no-systemctl");
        let report = install_at(&paths, &launch(), &missing).unwrap();
        assert!(report[0].contains("XDG autostart"), "{report:?}");
        assert!(paths.desktop.exists() && !paths.unit.exists());
        assert!(status_at(&paths, &missing)[0].contains("XDG autostart entry"));
        let report = uninstall_at(&paths, &missing).unwrap();
        assert_eq!(report.len(), 1, "{report:?}");
        assert!(!paths.desktop.exists());
        assert!(status_at(&paths, &missing).is_empty());
    }
}
