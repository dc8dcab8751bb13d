//! Sign-in state that changes while the relay runs: share links made and revoked, sessions signed
//! out. One path for every change, so each one is applied, told to the other nodes of a cluster
//! (as an `AuthEvent` on [`Authenticator::events`]), kept in the data directory's
//! [`STATE_FILE`] when there is one, and logged for the audit trail.
//!
//! Changes from other nodes come back through [`Authenticator::apply`] and [`Authenticator::merge`],
//! which never re-announce them. Merging is a union: a link is live while some node knows it and
//! no node revoked it, so nodes that missed an event agree again at the next exchange.

use std::path::{Path, PathBuf};
use std::time::Duration;

use deskbridge_auth::token::{self, Claims, TokenKind};
use deskbridge_auth::{Access, TokenError};
use deskbridge_protocol::ClientId;
use tokio::sync::broadcast;

use super::events::{AuthEvent, AuthSnapshot};
use super::shares::Share;
use super::Authenticator;

/// The file in `--data-dir` holding the live share links and the runtime revocations.
pub const STATE_FILE: &str = "shares.json";

/// The state file could not be read at start.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not valid ({error}); move it away to start without its share links and sign-outs")]
    Syntax { path: String, error: String },
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Authenticator {
    /// Keeps the sign-in state in `dir` ([`STATE_FILE`]), loading what is there.
    pub fn use_data_dir(&self, dir: &Path) -> Result<(), StateFileError> {
        let path = dir.join(STATE_FILE);
        let shown = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let snapshot: AuthSnapshot =
                    serde_json::from_str(&text).map_err(|e| StateFileError::Syntax {
                        path: shown.clone(),
                        error: e.to_string(),
                    })?;
                log::info!(
                    "loaded {} share links and {} revocations from {shown}",
                    snapshot.shares.len(),
                    snapshot.revoked.len()
                );
                self.merge_quietly(snapshot);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StateFileError::Read {
                    path: shown,
                    source,
                })
            }
        }
        *self.lock_state_file() = Some(path);
        Ok(())
    }

    /// The changes made on this node, for the cluster to pass on.
    pub fn events(&self) -> broadcast::Receiver<AuthEvent> {
        self.events.subscribe()
    }

    /// Makes a view-only link for `desktop`, valid for `ttl`, made by `by`. Returns its token and
    /// its entry.
    pub fn create_share(
        &self,
        desktop: &ClientId,
        ttl: Duration,
        by: &str,
    ) -> Result<(String, Share), TokenError> {
        let verifier = self.verifier.as_ref().ok_or(TokenError::Missing)?;
        let (token, claims) = token::mint_share(verifier.keys(), desktop, ttl);
        let share = Share {
            id: claims.jti.clone(),
            desktop: desktop.to_string(),
            by: by.to_owned(),
            created: claims.iat * 1000,
            expires: claims.exp * 1000,
        };
        self.shares.insert(share.clone());
        log::info!(
            "audit: share link {} for {} made by {:?}, until {}",
            share.id,
            share.desktop,
            share.by,
            claims.exp
        );
        self.changed(Some(AuthEvent::ShareCreated {
            share: share.clone(),
        }));
        Ok((token, share))
    }

    /// Revokes the share link `id`: it opens nothing from now on and its open connections close.
    /// `by` is who did it, for the log. Returns the link, if it was live.
    pub fn revoke_share(&self, id: &str, by: &str) -> Option<Share> {
        let share = self.shares.remove(id)?;
        let until = share.expires / 1000 + self.clock_skew_secs();
        self.revocations.revoke(&share.id, until);
        log::info!(
            "audit: share link {} for {} revoked by {by:?}",
            share.id,
            share.desktop
        );
        self.changed(Some(AuthEvent::Revoked {
            jti: share.id.clone(),
            until,
        }));
        Some(share)
    }

    /// Signs out the session of `claims`: its `jti` (and so every renewal of it) is revoked
    /// until no renewal issued before now can still be valid, `renew_ttl` from now at most.
    pub fn sign_out(&self, claims: &Claims, renew_ttl: Duration) {
        let until = claims.exp.max(now_secs() + renew_ttl.as_secs()) + self.clock_skew_secs();
        self.revocations.revoke(&claims.jti, until);
        log::info!(
            "audit: {:?} signed out (session {})",
            claims.sub,
            deskbridge_auth::access::short_jti(&claims.jti)
        );
        self.changed(Some(AuthEvent::Revoked {
            jti: claims.jti.clone(),
            until,
        }));
    }

    /// A change another node made.
    pub fn apply(&self, event: AuthEvent) {
        match event {
            AuthEvent::ShareCreated { share } => {
                if self.revocations.is_revoked(&share.id) || !self.shares.insert(share) {
                    return;
                }
            }
            AuthEvent::Revoked { jti, until } => {
                self.shares.remove(&jti);
                if !self.revocations.revoke(&jti, until) {
                    return;
                }
            }
        }
        self.changed(None);
    }

    /// Another node's whole state, joined with this one's.
    pub fn merge(&self, snapshot: AuthSnapshot) {
        if self.merge_quietly(snapshot) {
            self.changed(None);
        }
    }

    /// What this node knows, for a node that asks.
    pub fn snapshot(&self) -> AuthSnapshot {
        AuthSnapshot {
            shares: self.shares.list(now_secs() * 1000, |_| true),
            revoked: self.revocations.runtime(),
        }
    }

    /// The live share links `keep` accepts, newest first.
    pub fn shares_where(&self, keep: impl Fn(&Share) -> bool) -> Vec<Share> {
        self.shares.list(now_secs() * 1000, keep)
    }

    /// The live share link `id`, if any.
    pub fn share(&self, id: &str) -> Option<Share> {
        self.shares.get(id, now_secs() * 1000)
    }

    /// Forgets expired links and revocations; called every second or so.
    pub fn prune_expired(&self) {
        let now = now_secs();
        let gone = self.shares.prune(now * 1000) + self.revocations.prune(now);
        if gone > 0 {
            self.save();
        }
    }

    /// The signed-in session a cookie holds: its access and its claims (for renewal and sign-out).
    pub fn session_of(&self, token: &str) -> Result<(Access, Claims), TokenError> {
        let verifier = self.verifier.as_ref().ok_or(TokenError::Missing)?;
        let claims = verifier.verify_signed(token)?;
        if claims.kind != Some(TokenKind::Session) {
            return Err(TokenError::WrongKind);
        }
        self.check_revoked(&claims.jti)?;
        let access = Access::from_claims(&claims, self.users.current().as_deref())?;
        Ok((access, claims))
    }

    fn merge_quietly(&self, snapshot: AuthSnapshot) -> bool {
        let mut changed = false;
        for revoked in snapshot.revoked {
            changed |= self.shares.remove(&revoked.jti).is_some();
            changed |= self.revocations.revoke(&revoked.jti, revoked.until);
        }
        let now = now_secs() * 1000;
        for share in snapshot.shares {
            if share.expires > now && !self.revocations.is_revoked(&share.id) {
                changed |= self.shares.insert(share);
            }
        }
        changed
    }

    /// After a change: keep it, and tell the cluster if it was made here.
    fn changed(&self, local: Option<AuthEvent>) {
        self.save();
        if let Some(event) = local {
            // No receiver (a single relay) is fine: there is no one to tell.
            let _ = self.events.send(event);
        }
    }

    /// Writes [`STATE_FILE`] atomically (mode 0600, renamed over); a failure is logged, and the
    /// state stays in memory.
    fn save(&self) {
        let Some(path) = self.lock_state_file().clone() else {
            return;
        };
        if let Err(e) = write_atomically(&path, &self.snapshot()) {
            log::warn!(
                "cannot write {}: {e}; share links and sign-outs are kept in memory only",
                path.display()
            );
        }
    }

    fn lock_state_file(&self) -> std::sync::MutexGuard<'_, Option<PathBuf>> {
        self.state_file.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn clock_skew_secs(&self) -> u64 {
        self.clock_skew.as_secs()
    }
}

fn write_atomically(path: &Path, snapshot: &AuthSnapshot) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(snapshot).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    {
        use std::io::Write as _;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(&text)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use deskbridge_auth::{Key, KeySet};

    use super::*;

    fn authenticator() -> Authenticator {
        let keys = KeySet::from_keys(vec![Key {
            kid: "k".into(),
            secret: vec![3; 32],
        }])
        .unwrap();
        Authenticator::new(Some(keys), Duration::from_secs(30), false, None, None).unwrap()
    }

    #[test]
    fn a_share_link_opens_its_desktop_until_revoked_and_nodes_agree() {
        let a = authenticator();
        let mut told = a.events();
        let id = ClientId::new("box").unwrap();
        let (token, share) = a
            .create_share(&id, Duration::from_secs(3600), "alice")
            .unwrap();
        assert!(a.access_of(&token).unwrap().may_see("box"));
        let created = told.try_recv().unwrap();

        // Another node learns of it and lets the link in too; a node that does not know it does not.
        let b = authenticator();
        assert!(matches!(b.access_of(&token), Err(TokenError::Revoked(_))));
        b.apply(created);
        assert!(b.access_of(&token).is_ok());
        assert!(
            b.events().try_recv().is_err(),
            "applied changes are not re-told"
        );

        assert_eq!(a.revoke_share(&share.id, "alice"), Some(share.clone()));
        assert!(a.revoke_share(&share.id, "alice").is_none());
        assert!(matches!(a.access_of(&token), Err(TokenError::Revoked(_))));
        b.apply(told.try_recv().unwrap());
        assert!(b.access_of(&token).is_err() && b.share(&share.id).is_none());

        // A late node merging an old snapshot that still lists the link does not bring it back.
        let c = authenticator();
        c.merge(AuthSnapshot {
            shares: vec![share.clone()],
            revoked: Vec::new(),
        });
        c.merge(b.snapshot());
        assert!(c.access_of(&token).is_err());
    }

    #[test]
    fn the_data_directory_keeps_links_and_sign_outs_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let a = authenticator();
        a.use_data_dir(dir.path()).unwrap();
        let id = ClientId::new("box").unwrap();
        let (token, _) = a
            .create_share(&id, Duration::from_secs(3600), "al")
            .unwrap();
        let keys = a.verifier().unwrap().keys().clone();
        let (_, session) = token::mint_session(&keys, "al", Duration::from_secs(60));
        a.sign_out(&session, Duration::from_secs(900));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let meta = std::fs::metadata(dir.path().join(STATE_FILE)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }

        let again = authenticator();
        again.use_data_dir(dir.path()).unwrap();
        assert!(again.access_of(&token).is_ok());
        assert!(again.revocations.is_revoked(&session.jti));

        std::fs::write(dir.path().join(STATE_FILE), "{not json").unwrap();
        let err = authenticator().use_data_dir(dir.path()).unwrap_err();
        assert!(err.to_string().contains("move it away"), "{err}");
    }
}
