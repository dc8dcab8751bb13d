//! Who may connect: token checks at `authentication` (through `deskbridge-auth`, which holds the
//! key file and the token format), the signed-in page's session cookie, the users file, and
//! revocation, which watches a file and is relay-side.
//!
//! Every web credential comes down to one [`Access`] (who, role, desktops): a `web` connection is
//! let in when its access may see the id it names, a `fleet` connection watches what its access
//! may see, and the HTTP API asks the same question through [`Authenticator::access_of`].

pub mod events;
pub mod live;
pub mod revocation;
pub mod shares;
pub mod users_file;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use deskbridge_auth::token::Verifier;
use deskbridge_auth::{Access, Credential, KeySet, TokenError, UsersError};
use deskbridge_protocol::{Authentication, ClientMode};
use events::AuthEvent;
use revocation::Revocations;
use shares::Shares;
use users_file::UsersFile;

/// The name of the signed-in page's session cookie.
pub const SESSION_COOKIE: &str = "deskbridge_session";

/// Decides whether an `authentication` message (or an API request) is let in.
pub struct Authenticator {
    /// The relay's keys and clock-skew allowance; `None` when it has no keys (anonymous only).
    verifier: Option<Verifier>,
    allow_anonymous: bool,
    pub revocations: Revocations,
    /// The people who may sign in (`--users-file`); sign-in is off without it.
    pub users: UsersFile,
    /// The live share links: a share token opens its desktop only while its id is here.
    pub shares: Shares,
    /// Changes to the share links and revocations made here, for the cluster (see [`live`]).
    events: tokio::sync::broadcast::Sender<AuthEvent>,
    /// Where [`live`] keeps its state (`--data-dir`), if anywhere.
    state_file: Mutex<Option<PathBuf>>,
    clock_skew: Duration,
}

/// An accepted client: the token it used, if it used one, and for web and fleet connections what
/// it may see and do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The token's id, for revocation.
    pub jti: Option<String>,
    /// The token's expiry (Unix seconds): the session ends then, plus the clock-skew allowance.
    pub expires: Option<u64>,
    /// For `web` and `fleet`: the credential's access. `None` for a desktop.
    pub access: Option<Access>,
}

/// The settings needed to build an [`Authenticator`] are wrong.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("tokens are required but no key is configured: create one with `deskbridge-relay keygen relay.keys` and pass `--secret-file relay.keys`, or pass `--allow-anonymous` for development")]
    NoKeys,
    #[error("cannot read the revocation list {path}: {source}")]
    Revocations {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} (create it with `deskbridge-relay user add NAME --users-file PATH …`)")]
    Users(UsersError),
    #[error("sign-in (--users-file) needs the relay's key file to sign its session cookies: pass --secret-file")]
    UsersWithoutKeys,
}

impl Authenticator {
    /// `clock_skew` is how far a token's `exp` and `nbf` may be off (`--clock-skew`).
    pub fn new(
        keys: Option<KeySet>,
        clock_skew: Duration,
        allow_anonymous: bool,
        revoked_file: Option<PathBuf>,
        users_file: Option<PathBuf>,
    ) -> Result<Self, AuthSetupError> {
        if keys.is_none() && !allow_anonymous {
            return Err(AuthSetupError::NoKeys);
        }
        if keys.is_none() && users_file.is_some() {
            return Err(AuthSetupError::UsersWithoutKeys);
        }
        let users = UsersFile::new(users_file).map_err(AuthSetupError::Users)?;
        let shown = revoked_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let revocations =
            Revocations::new(revoked_file).map_err(|source| AuthSetupError::Revocations {
                path: shown,
                source,
            })?;
        Ok(Self {
            verifier: keys.map(|keys| Verifier::new(keys, clock_skew)),
            allow_anonymous,
            revocations,
            users,
            shares: Shares::default(),
            events: tokio::sync::broadcast::channel(256).0,
            state_file: Mutex::new(None),
            clock_skew,
        })
    }

    /// The relay's token verifier (and keys, for minting session cookies and share links);
    /// `None` for a relay without keys.
    pub fn verifier(&self) -> Option<&Verifier> {
        self.verifier.as_ref()
    }

    /// Checks the credentials of `auth`; `cookie` is the request's session cookie, if it had one
    /// (a signed-in page's connections carry no token). A token, when presented to a relay that
    /// has keys, is always verified, even if anonymous clients are allowed: a bad token is an
    /// error, not a reason to fall back to anonymous.
    pub fn admit(
        &self,
        auth: &Authentication,
        cookie: Option<&str>,
    ) -> Result<Admitted, TokenError> {
        // Only pages carry the session cookie; a desktop proves itself with its token alone.
        let presented = match auth.client_mode {
            ClientMode::Desktop => auth.token.as_deref(),
            ClientMode::Web | ClientMode::Fleet => auth.token.as_deref().or(cookie),
        };
        match (auth.client_mode, &auth.client_id, presented) {
            (ClientMode::Desktop, Some(id), Some(token)) if self.verifier.is_some() => {
                let verifier = self.verifier.as_ref().ok_or(TokenError::Missing)?;
                let claims = verifier.verify(token, id, ClientMode::Desktop)?;
                self.check_revoked(&claims.jti)?;
                Ok(Admitted {
                    jti: Some(claims.jti),
                    expires: Some(claims.exp),
                    access: None,
                })
            }
            (ClientMode::Web | ClientMode::Fleet, _, Some(token)) if self.verifier.is_some() => {
                if let (ClientMode::Web, Some(id), Some(verifier)) =
                    (auth.client_mode, &auth.client_id, &self.verifier)
                {
                    if verifier.verify_signed(token)?.kind.is_none() {
                        // A v1 token: its own rules, and their precise refusals (wrong id, mode).
                        verifier.verify(token, id, ClientMode::Web)?;
                    }
                }
                let access = self.access_of(token)?;
                if let (ClientMode::Web, Some(id)) = (auth.client_mode, &auth.client_id) {
                    if !access.may_see(id.as_str()) {
                        return Err(TokenError::NotPermitted(id.to_string()));
                    }
                }
                Ok(Admitted {
                    jti: access.jti.clone(),
                    expires: access.expires,
                    access: Some(access),
                })
            }
            (ClientMode::Desktop | ClientMode::Web, Some(id), _) if self.allow_anonymous => {
                Ok(Admitted {
                    jti: None,
                    expires: None,
                    access: (auth.client_mode == ClientMode::Web).then(|| Access::anonymous(id)),
                })
            }
            // Unreachable by construction (no keys implies anonymous), kept total.
            (_, _, Some(_)) if self.verifier.is_none() => {
                Err(TokenError::UnknownKey(String::new()))
            }
            // A fleet connection watches what its credentials allow; "anonymous" allows nothing.
            _ => Err(TokenError::Missing),
        }
    }

    /// The access of a web token, fleet token, share link or session cookie: signature, time,
    /// revocation, and for a session the users file as it is now.
    pub fn access_of(&self, token: &str) -> Result<Access, TokenError> {
        let verifier = self.verifier.as_ref().ok_or(TokenError::Missing)?;
        let claims = verifier.verify_signed(token)?;
        if claims.kind.is_none() && claims.mode != ClientMode::Web {
            return Err(TokenError::WrongMode {
                token: claims.mode,
                requested: ClientMode::Web,
            });
        }
        self.check_revoked(&claims.jti)?;
        let access = Access::from_claims(&claims, self.users.current().as_deref())?;
        // A share link opens nothing once no one knows it (revoked, or forgotten by a restart).
        if access.credential == Credential::Share && self.share(&claims.jti).is_none() {
            return Err(TokenError::Revoked(claims.jti));
        }
        Ok(access)
    }

    fn check_revoked(&self, jti: &str) -> Result<(), TokenError> {
        if self.revocations.is_revoked(jti) {
            return Err(TokenError::Revoked(jti.to_owned()));
        }
        Ok(())
    }

    /// How often the revocation file is checked for edits.
    pub const REVOCATION_POLL: Duration = Duration::from_secs(1);
}

#[cfg(test)]
mod tests {
    use deskbridge_auth::token;
    use deskbridge_auth::{Key, Patterns, Role};
    use deskbridge_protocol::ClientId;

    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn keys() -> KeySet {
        KeySet::from_keys(vec![Key {
            kid: "k".into(),
            secret: vec![3; 32],
        }])
        .unwrap()
    }

    fn auth(mode: ClientMode, id: Option<&str>, token: Option<&str>) -> Authentication {
        Authentication {
            client_id: id.map(|id| ClientId::new(id).unwrap()),
            client_mode: mode,
            token: token.map(str::to_owned),
        }
    }

    fn authenticator(keys: Option<KeySet>, anonymous: bool) -> Authenticator {
        Authenticator::new(keys, Duration::from_secs(30), anonymous, None, None).unwrap()
    }

    #[test]
    fn a_relay_without_keys_lets_everyone_in_as_anonymous_whatever_they_present() {
        let open = authenticator(None, true);
        for mode in [ClientMode::Desktop, ClientMode::Web] {
            let admitted = open
                .admit(&auth(mode, Some("a"), Some("junk")), None)
                .unwrap();
            assert_eq!(admitted.jti, None);
        }
        let web = open
            .admit(&auth(ClientMode::Web, Some("a"), None), Some("cookie"))
            .unwrap();
        assert_eq!(web.access.unwrap().by, "anonymous");
        assert_eq!(
            open.admit(&auth(ClientMode::Fleet, None, None), None),
            Err(TokenError::Missing),
            "anonymous opens one id, never a fleet"
        );
    }

    #[test]
    fn with_keys_every_presented_credential_is_checked() {
        let keys = keys();
        let strict = authenticator(Some(keys.clone()), true);
        assert!(strict
            .admit(&auth(ClientMode::Desktop, Some("a"), Some("junk")), None)
            .is_err());
        let desktop = token::mint(
            &keys,
            &ClientId::new("a").unwrap(),
            ClientMode::Desktop,
            HOUR,
        );
        assert!(strict
            .admit(&auth(ClientMode::Desktop, Some("a"), Some(&desktop)), None)
            .is_ok());
        // A desktop never signs in with the page's cookie.
        let (session, _) = token::mint_session(&keys, "alice", HOUR);
        assert!(strict
            .admit(&auth(ClientMode::Desktop, Some("a"), None), Some(&session))
            .is_ok_and(|a| a.jti.is_none()));
        // A v1 web token keeps its precise refusal for another id.
        let web = token::mint(&keys, &ClientId::new("a").unwrap(), ClientMode::Web, HOUR);
        assert!(matches!(
            strict.admit(&auth(ClientMode::Web, Some("b"), Some(&web)), None),
            Err(TokenError::WrongClient { .. })
        ));
        // A fleet token opens what matches, as web or fleet, and nothing else.
        let fleet = token::mint_fleet(&keys, &Patterns::parse("a*").unwrap(), Role::Viewer, HOUR);
        assert!(strict
            .admit(&auth(ClientMode::Web, Some("ab"), Some(&fleet)), None)
            .is_ok());
        assert!(strict
            .admit(&auth(ClientMode::Fleet, None, Some(&fleet)), None)
            .is_ok());
        assert_eq!(
            strict.admit(&auth(ClientMode::Web, Some("b"), Some(&fleet)), None),
            Err(TokenError::NotPermitted("b".into()))
        );
        // Without a users file a session cookie opens nothing.
        assert!(matches!(
            strict.admit(&auth(ClientMode::Fleet, None, None), Some(&session)),
            Err(TokenError::UnknownUser(_))
        ));
    }
}
