//! `deskbridge-agent`: the desktop side of deskbridge. It dials out to a relay over a WebSocket,
//! reports CPU load every second and plays a beep when the web page asks for one.
//!
//! This file only parses the command line, sets up logging and maps failures to exit codes;
//! each command lives in its own module.

mod agent;
mod audio;
mod autostart;
mod backoff;
mod cadence;
mod cli;
mod commands;
mod config;
mod ledger;
mod notify;
mod power;
mod run;
mod sampler;
mod session;
mod settings;
mod tls;
mod token_expiry;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// Exit status for an unusable configuration (`EX_CONFIG` from sysexits.h). The systemd unit
/// does not restart the agent on it: only fixing the config helps.
const EXIT_CONFIG: u8 = 78;

#[actix::main]
async fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Run(args) => {
            match settings::for_run(&args.config, &args.connection, &args.timing) {
                Ok(settings) => run::run(settings).await,
                Err(e) => Err(e.into()),
            }
        }
        Command::Install(args) => commands::install(args),
        Command::Uninstall(args) => commands::uninstall(args),
        Command::Status(args) => commands::status(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{}", one_line(&e));
            if is_config_error(&e) {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn is_config_error(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.is::<settings::SettingsError>()
            || cause.is::<config::ConfigError>()
            || cause.is::<tls::TlsError>()
    })
}

/// The error and its causes on one line, skipping causes the message already quotes.
fn one_line(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text.replace('\n', " ")
}
