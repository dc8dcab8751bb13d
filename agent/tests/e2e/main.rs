//! End-to-end tests: the real `deskbridge-agent` binary against a real relay on loopback, watched
//! by a web viewer over a real WebSocket — or by the real page in headless Chromium
//! (`browser.rs`). One test binary, so the relay is linked only once.
//!
//! Linux only: they capture sound through ALSA, check systemd and XDG files, and signal processes.
#![cfg(target_os = "linux")]

mod audience;
mod auth;
mod beep;
mod browser;
mod chromium;
mod commands;
mod demo;
mod fleet_page;
mod harness;
mod history_gaps;
mod history_page;
mod install;
mod liveness;
mod offline_reason;
mod page_commands;
mod reconnect;
mod reporting;
mod sleep;
mod tls;
