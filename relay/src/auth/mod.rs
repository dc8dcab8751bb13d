//! Who may connect: token checks at `authentication` (through `deskbridge-auth`, which holds the
//! key file and the token format) and revocation, which watches a file and is relay-side.

pub mod revocation;

use std::time::Duration;

use deskbridge_protocol::Authentication;

use deskbridge_auth::token::Verifier;
use deskbridge_auth::{KeySet, TokenError};
use revocation::Revocations;

/// Decides whether an `authentication` message is let in.
pub struct Authenticator {
    /// The relay's keys and clock-skew allowance; `None` when it has no keys (anonymous only).
    verifier: Option<Verifier>,
    allow_anonymous: bool,
    pub revocations: Revocations,
}

/// An accepted client: the token it used, if it used one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The token's id, for revocation.
    pub jti: Option<String>,
    /// The token's expiry (Unix seconds): the session ends then, plus the clock-skew allowance.
    pub expires: Option<u64>,
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
}

impl Authenticator {
    /// `clock_skew` is how far a token's `exp` and `nbf` may be off (`--clock-skew`).
    pub fn new(
        keys: Option<KeySet>,
        clock_skew: Duration,
        allow_anonymous: bool,
        revoked_file: Option<std::path::PathBuf>,
    ) -> Result<Self, AuthSetupError> {
        if keys.is_none() && !allow_anonymous {
            return Err(AuthSetupError::NoKeys);
        }
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
        })
    }

    /// Checks the credentials of `auth`. A token, when presented to a relay that has keys, is
    /// always verified, even if anonymous clients are allowed: a bad token is an error, not a
    /// reason to fall back to anonymous.
    pub fn admit(&self, auth: &Authentication) -> Result<Admitted, TokenError> {
        match (&auth.token, &self.verifier) {
            (Some(token), Some(verifier)) => {
                let claims = verifier.verify(token, &auth.client_id, auth.client_mode)?;
                if self.revocations.is_revoked(&claims.jti) {
                    return Err(TokenError::Revoked(claims.jti));
                }
                Ok(Admitted {
                    jti: Some(claims.jti),
                    expires: Some(claims.exp),
                })
            }
            (_, _) if self.allow_anonymous => Ok(Admitted {
                jti: None,
                expires: None,
            }),
            (None, _) => Err(TokenError::Missing),
            // Unreachable by construction (no keys implies anonymous), kept total.
            (Some(_), None) => Err(TokenError::UnknownKey(String::new())),
        }
    }

    /// How often the revocation file is checked for edits.
    pub const REVOCATION_POLL: Duration = Duration::from_secs(2);
}
