//! `deskbridge-relay user …`, the real binary on a users file in a temp dir: add, list, passwd,
//! set, remove; passwords only from stdin and never in the file or any output; bad roles and
//! patterns refused with exit code 2.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use deskbridge_auth::{Role, Users};

const RELAY: &str = env!("CARGO_BIN_EXE_deskbridge-relay");

/// Runs `deskbridge-relay user ARGS… --users-file FILE` with `stdin` piped in.
fn user(file: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(RELAY)
        .env_remove("DESKBRIDGE_USERS_FILE")
        .arg("user")
        .args(args)
        .arg("--users-file")
        .arg(file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the relay binary");
    // A command refused before it reads its password (a bad role, say) exits without reading
    // stdin, so this write may meet a closed pipe: what counts is the output and status below.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn people_are_added_listed_changed_and_removed_and_passwords_stay_secret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.toml");
    let secret = "correct horse battery staple";

    let out = user(
        &file,
        &[
            "add",
            "alice",
            "--role",
            "operator",
            "--desktops",
            "alice-*,office-printer",
        ],
        &format!("{secret}\n"),
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = user(
        &file,
        &["add", "bob", "--role", "viewer", "--desktops", "*"],
        "hunter2\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let stored = std::fs::read_to_string(&file).unwrap();
    assert!(!stored.contains(secret) && !stored.contains("hunter2"));

    let list = user(&file, &["list"], "");
    assert!(list.status.success());
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    assert_eq!(
        listed,
        "alice\toperator\talice-*,office-printer\nbob\tviewer\t*\n"
    );
    assert!(!text(&list).contains("argon2"), "no hashes in the listing");

    let users = Users::load(&file).unwrap();
    assert!(users.verify("alice", secret).is_some());
    assert!(users.verify("alice", "hunter2").is_none());

    let out = user(&file, &["passwd", "alice"], "new one\n");
    assert!(out.status.success(), "{}", text(&out));
    let out = user(
        &file,
        &[
            "set",
            "alice",
            "--role",
            "viewer",
            "--desktops",
            "alice-laptop",
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out));
    let users = Users::load(&file).unwrap();
    let alice = users.verify("alice", "new one").expect("the new password");
    assert_eq!(alice.role, Role::Viewer);
    assert!(alice.desktops.matches("alice-laptop") && !alice.desktops.matches("alice-pc"));

    let out = user(&file, &["remove", "bob"], "");
    assert!(out.status.success(), "{}", text(&out));
    assert!(Users::load(&file).unwrap().get("bob").is_none());
    for out in [
        user(&file, &["remove", "bob"], ""),
        user(&file, &["passwd", "nobody"], "x\n"),
    ] {
        assert!(!out.status.success());
        assert!(text(&out).contains("user list"), "{}", text(&out));
    }
}

#[test]
fn bad_roles_patterns_names_and_passwords_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.toml");
    let role = user(
        &file,
        &["add", "a", "--role", "admin", "--desktops", "*"],
        "pw\n",
    );
    assert_eq!(role.status.code(), Some(2), "{}", text(&role));
    let pattern = user(
        &file,
        &["add", "a", "--role", "viewer", "--desktops", "a/b"],
        "pw\n",
    );
    assert_eq!(pattern.status.code(), Some(2), "{}", text(&pattern));
    assert!(text(&pattern).contains("A-Z a-z 0-9"), "{}", text(&pattern));
    let name = user(
        &file,
        &["add", "no spaces", "--role", "viewer", "--desktops", "*"],
        "pw\n",
    );
    assert!(!name.status.success());
    let empty = user(
        &file,
        &["add", "a", "--role", "viewer", "--desktops", "*"],
        "\n",
    );
    assert!(!empty.status.success());
    assert!(text(&empty).contains("empty"), "{}", text(&empty));
    assert!(!file.exists(), "nothing was written");
}
