//! `deskbridge-relay user …`: the people in a users file (see `deskbridge_auth::users`). Passwords
//! are read from standard input — a prompt, unechoed, on a terminal; one line otherwise, for
//! scripts — and never from the command line, where every user of the machine could read them.

use std::io::{BufRead as _, IsTerminal as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use deskbridge_auth::{Patterns, Role, Users, UsersError};

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a person; the password is read from stdin.
    Add {
        name: String,
        #[command(flatten)]
        file: UsersFile,
        /// viewer watches; operator also sends commands, shares and adds desktops.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The desktops they may see: ids and globs, comma-separated (alice-*,office-printer; * for all).
        #[arg(long, value_parser = parse_patterns)]
        desktops: Patterns,
    },
    /// List people: name, role, desktops (never password hashes).
    List {
        #[command(flatten)]
        file: UsersFile,
    },
    /// Remove a person.
    Remove {
        name: String,
        #[command(flatten)]
        file: UsersFile,
    },
    /// Set a person's password; read from stdin.
    Passwd {
        name: String,
        #[command(flatten)]
        file: UsersFile,
    },
    /// Change a person's role and/or desktops.
    Set {
        name: String,
        #[command(flatten)]
        file: UsersFile,
        #[arg(long, value_enum)]
        role: Option<RoleArg>,
        #[arg(long, value_parser = parse_patterns)]
        desktops: Option<Patterns>,
    },
}

#[derive(Debug, Args)]
pub struct UsersFile {
    /// The users file (created by `user add` with mode 0600).
    #[arg(long, env = "DESKBRIDGE_USERS_FILE")]
    pub users_file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    Viewer,
    Operator,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Operator => Role::Operator,
        }
    }
}

fn parse_patterns(list: &str) -> Result<Patterns, String> {
    Patterns::parse(list).map_err(|e| e.to_string())
}

/// Runs one `user` command; what it prints goes to stdout, one line per fact.
pub fn run(args: UserArgs) -> anyhow::Result<()> {
    match args.command {
        UserCommand::Add {
            name,
            file,
            role,
            desktops,
        } => change(&file.users_file, true, |users| {
            let password = read_password(&name, true)?;
            users.add(&name, role.into(), desktops, &password)?;
            println!(
                "added {name} ({}) to {}",
                Role::from(role),
                file.users_file.display()
            );
            Ok(())
        }),
        UserCommand::List { file } => {
            let users = Users::load(&file.users_file)?;
            for user in users.iter() {
                println!("{}\t{}\t{}", user.name, user.role, user.desktops);
            }
            Ok(())
        }
        UserCommand::Remove { name, file } => change(&file.users_file, false, |users| {
            users.remove(&name)?;
            println!("removed {name}");
            Ok(())
        }),
        UserCommand::Passwd { name, file } => change(&file.users_file, false, |users| {
            // Checked first, so nobody types a password for a name that does not exist.
            if users.get(&name).is_none() {
                return Err(UsersError::NoSuchUser(name.clone()).into());
            }
            let password = read_password(&name, true)?;
            users.set_password(&name, &password)?;
            println!("password of {name} changed");
            Ok(())
        }),
        UserCommand::Set {
            name,
            file,
            role,
            desktops,
        } => change(&file.users_file, false, |users| {
            if role.is_none() && desktops.is_none() {
                anyhow::bail!("nothing to change: give --role and/or --desktops");
            }
            users.set(&name, role.map(Role::from), desktops)?;
            println!("changed {name}");
            Ok(())
        }),
    }
}

/// Reads the file (or starts an empty one if `create`), applies `edit`, writes it back atomically.
fn change(
    path: &Path,
    create: bool,
    edit: impl FnOnce(&mut Users) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut users = if create {
        Users::load_or_empty(path)?
    } else {
        Users::load(path)?
    };
    edit(&mut users)?;
    users.save(path)?;
    Ok(())
}

/// A password from stdin: prompted twice without echo on a terminal, else the first line.
fn read_password(name: &str, confirm: bool) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("password for {name}: "))
            .context("cannot read the password from the terminal")?;
        if confirm {
            let again = rpassword::prompt_password("again: ")
                .context("cannot read the password from the terminal")?;
            anyhow::ensure!(first == again, "the passwords differ; nothing changed");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}
