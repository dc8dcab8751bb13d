//! `install`, `uninstall` and `status`: the config file plus the platform's login entry.
//!
//! These print their outcome to stdout for the person at the terminal (which file was written,
//! what is enabled); diagnostics still go to the log on stderr. `install` checks the merged
//! settings *before* writing anything, so a typo in `--relay` never leaves a broken config that
//! would fail at the next login.

use std::path::{Path, PathBuf};

use crate::autostart::{self, Launch};
use crate::cli::{InstallArgs, SystemArgs};
use crate::config::{self, FileConfig};
use crate::settings::{self, Timing};

/// Part of the header `config::save` writes; `uninstall` only deletes a config that has it.
const CONFIG_MARKER: &str = "written by `deskbridge-agent install`";

pub fn install(args: &InstallArgs) -> anyhow::Result<()> {
    let (path, _) = settings::config_path(&args.config)?;
    let path = absolute(&path)?;
    let existing = config::load(&path)?.unwrap_or_default();
    let mut merged = settings::merge(existing.clone(), &args.connection);
    // Pin the id now: a hostname can change, and the web page is bookmarked by id.
    if merged.id.is_none() {
        merged.id = Some(settings::default_id().to_string());
    }
    let checked = settings::resolve(
        path.clone(),
        merged.clone(),
        &args.connection,
        Timing::default(),
    )?;
    let before = std::fs::read(&path).ok();
    config::save(&path, &merged)?;
    let changed = before != std::fs::read(&path).ok();
    println!(
        "{} config {} (mode 0600): relay {}, id {}",
        if changed { "wrote" } else { "kept" },
        path.display(),
        checked.relays,
        checked.id
    );
    let launch = Launch {
        exe: std::env::current_exe()?,
        config: path,
    };
    for line in autostart::install(&launch, &args.autostart)? {
        println!("{line}");
    }
    Ok(())
}

pub fn uninstall(args: &SystemArgs) -> anyhow::Result<()> {
    let (path, named) = settings::config_path(&args.config)?;
    let mut report = autostart::uninstall(&args.autostart)?;
    match std::fs::read_to_string(&path) {
        Ok(text) if text.contains(CONFIG_MARKER) => {
            std::fs::remove_file(&path)?;
            report.push(format!("removed config {}", path.display()));
            // The default config directory is ours; leave a --config directory alone.
            if !named {
                if let Some(dir) = path.parent() {
                    if std::fs::remove_dir(dir).is_ok() {
                        report.push(format!("removed empty directory {}", dir.display()));
                    }
                }
            }
        }
        Ok(_) => report.push(format!(
            "left config {} alone: it was not written by deskbridge-agent install",
            path.display()
        )),
        Err(_) => {}
    }
    if report.is_empty() {
        report.push("nothing to remove: the agent is not installed for this user".into());
    }
    for line in report {
        println!("{line}");
    }
    Ok(())
}

pub fn status(args: &SystemArgs) -> anyhow::Result<()> {
    let (path, _) = settings::config_path(&args.config)?;
    let row = |name: &str, value: &str| println!("{:<10} {value}", format!("{name}:"));
    match config::load(&path) {
        Ok(Some(file)) => {
            row("config", &format!("{} (present)", path.display()));
            describe(&path, file, row);
        }
        Ok(None) => row(
            "config",
            &format!(
                "{} (missing; create it with `deskbridge-agent install --relay URL`)",
                path.display()
            ),
        ),
        Err(e) => row("config", &format!("{} (unusable: {e})", path.display())),
    }
    let entries = autostart::status(&args.autostart)?;
    if entries.is_empty() {
        row("autostart", "not installed");
    }
    for entry in entries {
        row("autostart", &entry);
    }
    Ok(())
}

fn describe(path: &Path, file: FileConfig, row: impl Fn(&str, &str)) {
    let token = if file.token.as_ref().is_some_and(|t| !t.expose().is_empty()) {
        "set"
    } else {
        "not set"
    };
    match settings::resolve(
        path.to_owned(),
        file,
        &Default::default(),
        Timing::default(),
    ) {
        Ok(s) => {
            row("relay", &s.relays.to_string());
            row("id", s.id.as_str());
            row("token", token);
            row(
                "interval",
                &humantime::format_duration(s.interval).to_string(),
            );
            if let Some(ca) = &s.ca_file {
                row("ca file", &ca.display().to_string());
            }
        }
        Err(e) => row("problem", &e.to_string()),
    }
}

/// Login entries run from another working directory, so the config path they name is absolute.
fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_owned())
    } else {
        Ok(std::env::current_dir()?.join(path))
    }
}
