//! macOS: a per-user LaunchAgent, `~/Library/LaunchAgents/dev.deskbridge.agent.plist`, with
//! `RunAtLoad` (start at login) and `KeepAlive` (launchd restarts the agent if it exits), logging
//! to `~/Library/Logs/deskbridge-agent.log`.
//!
//! Loading it right away uses `launchctl load -w`, which current macOS still supports for per-user
//! agents; it is best effort, like `systemctl` on Linux: the plist alone makes the agent start at
//! the next login. Not exercised on a Mac by CI; the plist's contents are unit-tested everywhere.

use std::path::{Path, PathBuf};

use super::{
    remove_ours, run_tool, tool_error, write_if_changed, AutostartError, Launch, Removal, MARKER,
};
use crate::cli::AutostartArgs;

pub const LABEL: &str = "dev.deskbridge.agent";

/// The LaunchAgent plist and log file under `home`.
pub fn plist_path(home: &Path) -> PathBuf {
    home.join("Library/LaunchAgents")
        .join(format!("{LABEL}.plist"))
}

fn log_path(home: &Path) -> PathBuf {
    home.join("Library/Logs/deskbridge-agent.log")
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The plist for `launch`, logging to `log`.
pub fn plist(launch: &Launch, log: &Path) -> Result<String, AutostartError> {
    let args: String = launch
        .argv()?
        .iter()
        .map(|a| format!("        <string>{}</string>\n", xml_escape(a)))
        .collect();
    let log = log
        .to_str()
        .ok_or_else(|| AutostartError::BadPath(log.to_owned()))?;
    let log = xml_escape(log);
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!-- {MARKER} -->\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n\
         <dict>\n\
         \x20   <key>Label</key>\n\
         \x20   <string>{LABEL}</string>\n\
         \x20   <key>ProgramArguments</key>\n\
         \x20   <array>\n\
         {args}\
         \x20   </array>\n\
         \x20   <key>RunAtLoad</key>\n\
         \x20   <true/>\n\
         \x20   <key>KeepAlive</key>\n\
         \x20   <true/>\n\
         \x20   <key>StandardOutPath</key>\n\
         \x20   <string>{log}</string>\n\
         \x20   <key>StandardErrorPath</key>\n\
         \x20   <string>{log}</string>\n\
         </dict>\n\
         </plist>\n"
    ))
}

fn home() -> Result<PathBuf, AutostartError> {
    directories::BaseDirs::new()
        .map(|d| d.home_dir().to_owned())
        .ok_or(AutostartError::NoHome)
}

const LAUNCHCTL: &str = "launchctl";

pub fn install(launch: &Launch, _: &AutostartArgs) -> Result<Vec<String>, AutostartError> {
    let home = home()?;
    let path = plist_path(&home);
    let changed = write_if_changed(&path, &plist(launch, &log_path(&home))?)?;
    let mut report = vec![format!(
        "{} LaunchAgent {}",
        if changed { "wrote" } else { "kept" },
        path.display()
    )];
    let path_text = path.to_string_lossy();
    match run_tool(Path::new(LAUNCHCTL), &["load", "-w", &path_text]) {
        Ok(out) if out.status.success() => {
            report.push("loaded it with launchctl; the agent is running".into())
        }
        Ok(out) => report.push(format!(
            "launchctl load failed ({}); the agent starts at next login, or run \
             `launchctl load -w {path_text}`",
            tool_error(&out)
        )),
        Err(e) => report.push(format!(
            "cannot run launchctl ({e}); the agent starts at next login"
        )),
    }
    Ok(report)
}

pub fn uninstall(_: &AutostartArgs) -> Result<Vec<String>, AutostartError> {
    let path = plist_path(&home()?);
    let path_text = path.to_string_lossy().into_owned();
    if std::fs::read_to_string(&path).is_ok_and(|t| t.contains(MARKER)) {
        if let Ok(out) = run_tool(Path::new(LAUNCHCTL), &["unload", "-w", &path_text]) {
            if !out.status.success() {
                log::warn!("launchctl unload failed: {}", tool_error(&out));
            }
        }
    }
    Ok(match remove_ours(&path)? {
        Removal::Removed => vec![format!("removed LaunchAgent {path_text}")],
        Removal::NotOurs => vec![format!(
            "left {path_text} alone: it was not written by deskbridge-agent install"
        )],
        Removal::Absent => vec![],
    })
}

pub fn status(_: &AutostartArgs) -> Result<Vec<String>, AutostartError> {
    let path = plist_path(&home()?);
    Ok(
        if std::fs::read_to_string(&path).is_ok_and(|t| t.contains(MARKER)) {
            vec![format!("LaunchAgent {}", path.display())]
        } else {
            vec![]
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plist_runs_at_load_and_keeps_alive() {
        let launch = Launch {
            exe: "/Applications/Desk & Bridge/deskbridge-agent".into(),
            config: "/Users/a/Library/Application Support/deskbridge/agent.toml".into(),
        };
        let home = Path::new("/Users/a");
        let p = plist(&launch, &log_path(home)).unwrap();
        assert!(p.contains(MARKER));
        assert!(p.contains("<string>/Applications/Desk &amp; Bridge/deskbridge-agent</string>"));
        assert!(p.contains("<string>run</string>\n        <string>--config</string>"));
        assert!(p.contains("<key>RunAtLoad</key>\n    <true/>"), "{p}");
        assert!(p.contains("<key>KeepAlive</key>\n    <true/>"));
        assert!(p.contains(&format!("<string>{LABEL}</string>")));
        assert!(p.contains("/Users/a/Library/Logs/deskbridge-agent.log"));
        assert_eq!(
            plist_path(home),
            Path::new("/Users/a/Library/LaunchAgents/dev.deskbridge.agent.plist")
        );
        // Well-formed enough that every opened tag is closed.
        assert_eq!(p.matches("<dict>").count(), p.matches("</dict>").count());
        assert_eq!(p.matches("<array>").count(), p.matches("</array>").count());
    }
}
