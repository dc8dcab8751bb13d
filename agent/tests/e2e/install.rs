//! `install`, `status`, `uninstall` in a throwaway HOME: what is written, with which permissions,
//! that a repeat changes nothing, and that uninstall takes away exactly what install added.
//! systemctl is replaced by a script that records its arguments, so no real user manager is
//! touched; pointing at a missing program simulates a machine without systemd.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::harness::Home;

const AGENT: &str = env!("CARGO_BIN_EXE_deskbridge-agent");

/// A stand-in systemctl: logs each call's arguments, reports `enabled` for `is-enabled`.
fn fake_systemctl(home: &Home) -> (PathBuf, PathBuf) {
    let script = home.path().join("fake-systemctl");
    let calls = home.path().join("systemctl-calls");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\ncase \"$*\" in *is-enabled*) echo enabled;; esac\nexit 0\n",
            calls.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, calls)
}

fn agent(home: &Home, systemctl: &Path, args: &[&str]) -> Output {
    home.command()
        .env("DESKBRIDGE_SYSTEMCTL", systemctl)
        .args(args)
        .output()
        .expect("run the agent binary")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file under `root` with its contents.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, &mut out);
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

const TOKEN: &str = "tok-install-secret-77";

#[test]
fn install_writes_a_private_config_and_an_enabled_systemd_unit_and_uninstall_undoes_it() {
    let home = Home::new();
    let (systemctl, calls) = fake_systemctl(&home);
    let cfg = home.config_home();
    // Somebody else's unit, which must survive everything below.
    let other_unit = cfg.join("systemd/user/other.service");
    std::fs::create_dir_all(other_unit.parent().unwrap()).unwrap();
    std::fs::write(&other_unit, "[Unit]\nDescription=not ours\n").unwrap();
    let config_dir = home.path().join(".config");
    let before = snapshot(&config_dir);

    let install = [
        "install",
        "--relay",
        "wss://relay.example.test/ws",
        "--id",
        "desk-1",
        "--token",
        TOKEN,
    ];
    let out = agent(&home, &systemctl, &install);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(!stdout(&out).contains(TOKEN) && !stderr(&out).contains(TOKEN));

    let config = cfg.join("deskbridge/agent.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("relay = \"wss://relay.example.test/ws\"\n"),
        "{text}"
    );
    assert!(text.contains("id = \"desk-1\"\n"), "{text}");
    assert!(text.contains(&format!("token = \"{TOKEN}\"\n")), "{text}");
    assert_eq!(mode(&config), 0o600, "the config holds a token");
    assert_eq!(mode(config.parent().unwrap()), 0o700);

    let unit_path = cfg.join("systemd/user/deskbridge-agent.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    assert!(
        unit.contains(&format!(
            "\nExecStart={AGENT} run --config {}\n",
            config.display()
        )),
        "{unit}"
    );
    assert!(unit.contains("\nRestart=on-failure\n"), "{unit}");
    assert!(unit.contains("\nWantedBy=default.target\n"), "{unit}");
    assert!(!cfg.join("autostart/deskbridge-agent.desktop").exists());
    let logged = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(
        logged.lines().collect::<Vec<_>>(),
        [
            "--user show --property=Version",
            "--user daemon-reload",
            "--user enable --now deskbridge-agent.service"
        ]
    );

    // Installing again with the same settings changes no file.
    let installed = snapshot(&config_dir);
    let again = agent(&home, &systemctl, &install);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(snapshot(&config_dir), installed);
    assert!(stdout(&again).contains("kept config"), "{}", stdout(&again));

    let status = agent(&home, &systemctl, &["status"]);
    assert!(status.status.success(), "{}", stderr(&status));
    let shown = stdout(&status);
    assert!(
        shown.contains(&format!("config:    {} (present)", config.display())),
        "{shown}"
    );
    assert!(
        shown.contains("relay:     wss://relay.example.test/ws"),
        "{shown}"
    );
    assert!(shown.contains("id:        desk-1"), "{shown}");
    assert!(shown.contains("token:     set"), "{shown}");
    assert!(shown.contains("(enabled)"), "{shown}");
    assert!(
        !shown.contains(TOKEN),
        "status must not print the token: {shown}"
    );

    let out = agent(&home, &systemctl, &["uninstall"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&calls)
        .unwrap()
        .contains("--user disable --now deskbridge-agent.service"));
    assert_eq!(
        snapshot(&config_dir),
        before,
        "uninstall leaves exactly the files that were there before install"
    );
    assert!(!cfg.join("deskbridge").exists());

    let twice = agent(&home, &systemctl, &["uninstall"]);
    assert!(twice.status.success());
    assert!(
        stdout(&twice).contains("nothing to remove"),
        "{}",
        stdout(&twice)
    );
    let status = agent(&home, &systemctl, &["status"]);
    assert!(
        stdout(&status).contains("autostart: not installed"),
        "{}",
        stdout(&status)
    );
}

#[test]
fn without_systemd_install_writes_an_xdg_autostart_entry() {
    let home = Home::new();
    let no_systemctl = home.path().join("no-such-systemctl");
    let out = agent(
        &home,
        &no_systemctl,
        &[
            "install",
            "--relay",
            "ws://127.0.0.1:9/ws",
            "--interval",
            "2s",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("no systemd user manager"),
        "{}",
        stdout(&out)
    );
    let cfg = home.config_home();
    let entry = std::fs::read_to_string(cfg.join("autostart/deskbridge-agent.desktop")).unwrap();
    let config = cfg.join("deskbridge/agent.toml");
    assert!(
        entry.contains(&format!(
            "\nExec=\"{AGENT}\" \"run\" \"--config\" \"{}\"\n",
            config.display()
        )),
        "{entry}"
    );
    assert!(
        entry.contains("[Desktop Entry]\nType=Application\n"),
        "{entry}"
    );
    assert!(!cfg.join("systemd/user/deskbridge-agent.service").exists());
    // Without --id the hostname is written down, so the id stays stable if the hostname changes.
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("\nid = \""), "{text}");
    assert!(text.contains("interval = \"2s\""), "{text}");
    assert!(!text.contains("token ="), "{text}");

    let status = agent(&home, &no_systemctl, &["status"]);
    assert!(
        stdout(&status).contains("token:     not set"),
        "{}",
        stdout(&status)
    );
    assert!(
        stdout(&status).contains("XDG autostart entry"),
        "{}",
        stdout(&status)
    );

    let out = agent(&home, &no_systemctl, &["uninstall"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!cfg.join("autostart/deskbridge-agent.desktop").exists());
    assert!(!config.exists());
}

#[test]
fn install_refuses_bad_settings_and_writes_nothing() {
    let home = Home::new();
    let (systemctl, calls) = fake_systemctl(&home);
    for (args, expected) in [
        (vec!["install"], "no relay configured"),
        (
            vec!["install", "--relay", "https://relay.example/ws"],
            "use ws:// or wss://",
        ),
        (
            vec!["install", "--relay", "ws://h/ws", "--id", "a b"],
            "id \"a b\" from --id",
        ),
        (
            vec!["install", "--relay", "ws://h/ws", "--interval", "5ms"],
            "shortest interval",
        ),
    ] {
        let out = agent(&home, &systemctl, &args);
        assert_eq!(out.status.code(), Some(78), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    assert!(snapshot(&home.config_home()).is_empty());
    assert!(!calls.exists());
}

#[test]
fn run_with_a_missing_or_broken_config_says_what_to_do() {
    let home = Home::new();
    let out = home.command().arg("run").output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no config file at"), "{err}");
    assert!(err.contains("deskbridge-agent install --relay"), "{err}");

    let config = home.config_home().join("deskbridge/agent.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "relay = \"ws://h/ws\"\ntoken = 42\n").unwrap();
    let out = home.command().arg("run").output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("fix the file"), "{err}");

    // A --config that does not exist is an error even when --relay is given.
    let out = home
        .command()
        .args(["run", "--relay", "ws://h/ws", "--config"])
        .arg(home.path().join("nope.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(stderr(&out).contains("nope.toml"));
}

#[test]
fn uninstall_leaves_a_hand_written_config_alone() {
    let home = Home::new();
    let config = home.config_home().join("deskbridge/agent.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "relay = \"ws://h/ws\"\n").unwrap();
    let out = agent(&home, &home.path().join("none"), &["uninstall"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("left config"), "{}", stdout(&out));
    assert!(config.exists());
}
