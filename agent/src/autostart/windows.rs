//! Windows: a `deskbridge-agent` value under the current user's
//! `HKCU\Software\Microsoft\Windows\CurrentVersion\Run` key, which Explorer starts at logon.
//!
//! The value is written with the system's `reg.exe` rather than a registry crate, so this module
//! needs nothing Windows-only to compile and its command lines are unit-tested on any OS. A value
//! is only deleted if it is the command `install` writes (it runs this agent's `run`), the registry
//! counterpart of the marker line in files. Known limitation: the agent is a console program, so
//! Windows shows a console window for it at logon. Not exercised on Windows by CI.

use std::path::Path;

use super::{run_tool, tool_error, AutostartError, Launch};
use crate::cli::AutostartArgs;

pub const RUN_KEY: &str = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run";
pub const VALUE_NAME: &str = "deskbridge-agent";
const REG: &str = "reg";

/// The command line stored in the `Run` value: every part double-quoted (Windows paths cannot
/// contain `"`, so no escaping is needed).
pub fn command_line(launch: &Launch) -> Result<String, AutostartError> {
    let argv = launch.argv()?;
    if argv.iter().any(|a| a.contains('"')) {
        return Err(AutostartError::BadPath(launch.exe.clone()));
    }
    Ok(argv
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(" "))
}

/// `reg` arguments that write the value.
pub fn add_args(command: &str) -> Vec<String> {
    [
        "add", RUN_KEY, "/v", VALUE_NAME, "/t", "REG_SZ", "/d", command, "/f",
    ]
    .map(String::from)
    .to_vec()
}

/// The value's data as `reg query` prints it, if it exists.
fn current_value() -> Option<String> {
    let out = run_tool(Path::new(REG), &["query", RUN_KEY, "/v", VALUE_NAME]).ok()?;
    if !out.status.success() {
        return None;
    }
    parse_query(&String::from_utf8_lossy(&out.stdout))
}

/// Picks the data out of `reg query` output: `    deskbridge-agent    REG_SZ    "C:\…" run …`.
pub fn parse_query(output: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix(VALUE_NAME)?;
        let rest = rest.trim_start().strip_prefix("REG_SZ")?;
        Some(rest.trim().to_owned())
    })
}

fn is_ours(data: &str) -> bool {
    data.contains("deskbridge-agent") && data.contains("\"run\" \"--config\"")
}

pub fn install(launch: &Launch, _: &AutostartArgs) -> Result<Vec<String>, AutostartError> {
    let command = command_line(launch)?;
    if current_value().as_deref() == Some(command.as_str()) {
        return Ok(vec![format!("kept {RUN_KEY}\\{VALUE_NAME}")]);
    }
    let args = add_args(&command);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_tool(Path::new(REG), &args)
        .map_err(|e| AutostartError::Command(format!("cannot run reg.exe: {e}")))?;
    if !out.status.success() {
        return Err(AutostartError::Command(format!(
            "reg add {RUN_KEY} failed: {}",
            tool_error(&out)
        )));
    }
    Ok(vec![format!(
        "wrote {RUN_KEY}\\{VALUE_NAME}: the agent starts at your next logon"
    )])
}

pub fn uninstall(_: &AutostartArgs) -> Result<Vec<String>, AutostartError> {
    match current_value() {
        None => Ok(vec![]),
        Some(data) if !is_ours(&data) => Ok(vec![format!(
            "left {RUN_KEY}\\{VALUE_NAME} alone: it was not written by deskbridge-agent install"
        )]),
        Some(_) => {
            let out = run_tool(Path::new(REG), &["delete", RUN_KEY, "/v", VALUE_NAME, "/f"])
                .map_err(|e| AutostartError::Command(format!("cannot run reg.exe: {e}")))?;
            if !out.status.success() {
                return Err(AutostartError::Command(format!(
                    "reg delete failed: {}",
                    tool_error(&out)
                )));
            }
            Ok(vec![format!("removed {RUN_KEY}\\{VALUE_NAME}")])
        }
    }
}

pub fn status(_: &AutostartArgs) -> Result<Vec<String>, AutostartError> {
    Ok(current_value()
        .filter(|d| is_ours(d))
        .map(|d| vec![format!("{RUN_KEY}\\{VALUE_NAME} = {d}")])
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_value_quotes_every_part() {
        let launch = Launch {
            exe: r"C:\Program Files\deskbridge\deskbridge-agent.exe".into(),
            config: r"C:\Users\a\AppData\Roaming\deskbridge\config\agent.toml".into(),
        };
        let cmd = command_line(&launch).unwrap();
        assert_eq!(
            cmd,
            r#""C:\Program Files\deskbridge\deskbridge-agent.exe" "run" "--config" "C:\Users\a\AppData\Roaming\deskbridge\config\agent.toml""#
        );
        assert!(is_ours(&cmd));
        let args = add_args(&cmd);
        assert_eq!(args[0], "add");
        assert_eq!(args[7], cmd);
        assert_eq!(args.last().unwrap(), "/f");
    }

    #[test]
    fn reg_query_output_is_parsed() {
        let out = "\r\nHKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\r\n    deskbridge-agent    REG_SZ    \"C:\\a.exe\" \"run\" \"--config\" \"C:\\c.toml\"\r\n\r\n";
        let data = parse_query(out).unwrap();
        assert_eq!(data, "\"C:\\a.exe\" \"run\" \"--config\" \"C:\\c.toml\"");
        assert!(!is_ours("\"C:\\other.exe\""));
        assert_eq!(parse_query("nothing here"), None);
    }
}
