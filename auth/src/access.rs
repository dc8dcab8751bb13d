//! What one verified credential lets its holder see and do: [`Access`], the one answer every part
//! of the relay asks ("may this connection see `office-printer`? may it beep there?").
//!
//! Every kind of web credential comes down to the same three facts — who (for logs and for the
//! `by` of a command), a [`Role`], and the desktops as [`Patterns`] — so the relay's sessions and
//! its HTTP API check one thing, whatever the caller presented:
//!
//! | credential | who (`by`) | role | desktops |
//! | --- | --- | --- | --- |
//! | v1 web token (`token --mode web --id X`) | `token <first 8 of jti>` | operator | `X` |
//! | fleet token (`token --mode web --desktops P --role R`) | `token <first 8 of jti>` | `R` | `P` |
//! | session (the signed-in page's cookie) | the user's name | the user's, read now | the user's, read now |
//! | share link | `share link` | viewer | its one desktop |
//! | none, under `--allow-anonymous` | `anonymous` | operator | the one id asked for |
//!
//! A session's role and desktops come from the users file at the moment of the check, so a
//! lowered role or a narrowed pattern applies on the next check; the relay re-checks live
//! sessions whenever the file changes.

use deskbridge_protocol::{ClientId, ClientMode, Role};

use crate::patterns::Patterns;
use crate::token::{Claims, TokenError, TokenKind, SESSION_MAX_AGE};
use crate::users::Users;

/// Which kind of credential an [`Access`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// A v1 web token for one id.
    Token,
    /// A fleet web token (patterns and a role).
    Fleet,
    /// A signed-in person's session.
    Session,
    /// A view-only link.
    Share,
    /// No credential, under `--allow-anonymous`.
    Anonymous,
}

/// What a web connection or API caller may see and do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// Who, in words: the user name, `share link`, `token 1a2b3c4d` or `anonymous`. Decided here,
    /// never taken from the client.
    pub by: String,
    pub role: Role,
    pub desktops: Patterns,
    pub credential: Credential,
    /// The signed-in user, for sessions: re-checked whenever the users file changes.
    pub user: Option<String>,
    /// The token's id, for revocation.
    pub jti: Option<String>,
    /// The token's expiry, Unix seconds.
    pub expires: Option<u64>,
}

impl Access {
    /// The access of verified `claims` (see [`crate::token::Verifier::verify_signed`]). A session
    /// needs the users file: without one, or for a user no longer in it, it is refused.
    pub fn from_claims(claims: &Claims, users: Option<&Users>) -> Result<Self, TokenError> {
        if claims.mode != ClientMode::Web {
            return Err(TokenError::WrongMode {
                token: claims.mode,
                requested: ClientMode::Web,
            });
        }
        let token_by = || format!("token {}", short_jti(&claims.jti));
        // A token for one desktop names a valid id; anything else was not minted here.
        let one = |sub: &str| {
            ClientId::new(sub)
                .map(|id| Patterns::exactly(&id))
                .map_err(|_| TokenError::BadScope)
        };
        let (by, role, desktops, credential, user) = match claims.kind {
            None => (
                token_by(),
                Role::Operator,
                one(&claims.sub)?,
                Credential::Token,
                None,
            ),
            Some(TokenKind::Fleet) => {
                let desktops = claims.desktops.as_deref().ok_or(TokenError::BadScope)?;
                (
                    token_by(),
                    claims.role.ok_or(TokenError::BadScope)?,
                    Patterns::parse(desktops).map_err(|_| TokenError::BadScope)?,
                    Credential::Fleet,
                    None,
                )
            }
            Some(TokenKind::Session) => {
                let user = users
                    .and_then(|users| users.get(&claims.sub))
                    .ok_or_else(|| TokenError::UnknownUser(claims.sub.clone()))?;
                (
                    user.name.clone(),
                    user.role,
                    user.desktops.clone(),
                    Credential::Session,
                    Some(user.name.clone()),
                )
            }
            Some(TokenKind::Share) => (
                "share link".to_owned(),
                Role::Viewer,
                one(&claims.sub)?,
                Credential::Share,
                None,
            ),
        };
        // A session's cookie is renewed while the page is open, so its connections last until
        // the session can no longer be renewed (or it is signed out), not until this cookie ends.
        let expires = match claims.kind {
            Some(TokenKind::Session) => claims
                .auth_time
                .unwrap_or(claims.iat)
                .saturating_add(SESSION_MAX_AGE.as_secs()),
            _ => claims.exp,
        };
        Ok(Self {
            by,
            role,
            desktops,
            credential,
            user,
            jti: Some(claims.jti.clone()),
            expires: Some(expires),
        })
    }

    /// The access of a client without credentials, allowed under `--allow-anonymous`: today's
    /// behaviour, full control of the one id it asked for.
    pub fn anonymous(client_id: &ClientId) -> Self {
        Self {
            by: "anonymous".to_owned(),
            role: Role::Operator,
            desktops: Patterns::exactly(client_id),
            credential: Credential::Anonymous,
            user: None,
            jti: None,
            expires: None,
        }
    }

    /// The same credential re-read against a changed users file: `None` when it no longer opens
    /// anything (the user was removed). Other credentials do not depend on the file.
    pub fn refreshed(&self, users: Option<&Users>) -> Option<Self> {
        let Some(name) = &self.user else {
            return Some(self.clone());
        };
        let user = users?.get(name)?;
        Some(Self {
            role: user.role,
            desktops: user.desktops.clone(),
            ..self.clone()
        })
    }

    /// Whether this access may watch `id`.
    pub fn may_see(&self, id: &str) -> bool {
        self.desktops.matches(id)
    }

    /// Whether this access may send commands to `id` (and share it, and add desktops like it).
    pub fn may_act(&self, id: &str) -> bool {
        self.role == Role::Operator && self.may_see(id)
    }
}

/// The first 8 characters of a token id: enough to tell tokens apart in a log or a command's
/// `by`, too little to matter if seen.
pub fn short_jti(jti: &str) -> &str {
    match jti.char_indices().nth(8) {
        Some((end, _)) => &jti[..end],
        None => jti,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::keys::{Key, KeySet};
    use crate::token::{self, Verifier, DEFAULT_CLOCK_SKEW};

    fn keys() -> KeySet {
        KeySet::from_keys(vec![Key {
            kid: "k1".into(),
            secret: vec![7; 32],
        }])
        .unwrap()
    }

    fn verified(token: &str) -> Claims {
        Verifier::new(keys(), DEFAULT_CLOCK_SKEW)
            .verify_signed(token)
            .unwrap()
    }

    fn users() -> Users {
        let mut users = Users::default();
        users
            .add(
                "alice",
                Role::Viewer,
                Patterns::parse("alice-*").unwrap(),
                "pw",
            )
            .unwrap();
        users
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_v1_web_token_operates_its_one_id() {
        let id = ClientId::new("alice-1").unwrap();
        let claims = verified(&token::mint(&keys(), &id, ClientMode::Web, HOUR));
        let access = Access::from_claims(&claims, None).unwrap();
        assert_eq!(access.credential, Credential::Token);
        assert!(access.may_act("alice-1"));
        assert!(!access.may_see("alice-2"));
        assert!(access.by.starts_with("token ") && access.by.len() == "token ".len() + 8);
    }

    #[test]
    fn a_desktop_token_opens_no_web_access() {
        let id = ClientId::new("alice-1").unwrap();
        let claims = verified(&token::mint(&keys(), &id, ClientMode::Desktop, HOUR));
        assert!(matches!(
            Access::from_claims(&claims, None),
            Err(TokenError::WrongMode { .. })
        ));
    }

    #[test]
    fn a_fleet_token_sees_its_patterns_with_its_role() {
        let patterns = Patterns::parse("office-*,kiosk").unwrap();
        let claims = verified(&token::mint_fleet(&keys(), &patterns, Role::Viewer, HOUR));
        let access = Access::from_claims(&claims, None).unwrap();
        assert!(access.may_see("office-3") && access.may_see("kiosk"));
        assert!(!access.may_see("home-1"));
        assert!(!access.may_act("office-3"), "a viewer never acts");
    }

    #[test]
    fn a_session_reads_the_users_file_now() {
        let (token, _) = token::mint_session(&keys(), "alice", HOUR);
        let claims = verified(&token);
        let users = users();
        let access = Access::from_claims(&claims, Some(&users)).unwrap();
        assert_eq!(access.by, "alice");
        assert_eq!(access.user.as_deref(), Some("alice"));
        assert_eq!(
            access.expires,
            Some(claims.iat + SESSION_MAX_AGE.as_secs()),
            "its connections outlive one cookie, not the sign-in"
        );
        assert!(access.may_see("alice-9") && !access.may_act("alice-9"));
        assert!(matches!(
            Access::from_claims(&claims, None),
            Err(TokenError::UnknownUser(_))
        ));

        let mut promoted = users.clone();
        promoted
            .set(
                "alice",
                Some(Role::Operator),
                Some(Patterns::parse("*").unwrap()),
            )
            .unwrap();
        let now = access.refreshed(Some(&promoted)).unwrap();
        assert!(now.may_act("anything"));
        promoted.remove("alice").unwrap();
        assert_eq!(access.refreshed(Some(&promoted)), None);
    }

    #[test]
    fn a_share_link_only_watches_its_desktop() {
        let id = ClientId::new("office-printer").unwrap();
        let (token, claims) = token::mint_share(&keys(), &id, HOUR);
        assert_eq!(verified(&token), claims);
        let access = Access::from_claims(&claims, None).unwrap();
        assert_eq!(access.by, "share link");
        assert!(access.may_see("office-printer") && !access.may_act("office-printer"));
        assert!(!access.may_see("office-printe?"));
    }

    #[test]
    fn kinds_of_token_never_pass_for_v1_tokens() {
        // A user called like a desktop must not open that desktop as if it were a v1 token.
        let (session, _) = token::mint_session(&keys(), "alice-1", HOUR);
        let id = ClientId::new("alice-1").unwrap();
        let verifier = Verifier::new(keys(), DEFAULT_CLOCK_SKEW);
        assert_eq!(
            verifier.verify(&session, &id, ClientMode::Web),
            Err(TokenError::WrongKind)
        );
        let (share, _) = token::mint_share(&keys(), &id, HOUR);
        assert_eq!(
            verifier.verify(&share, &id, ClientMode::Web),
            Err(TokenError::WrongKind)
        );
    }

    #[test]
    fn anonymous_operates_the_id_it_asked_for() {
        let access = Access::anonymous(&ClientId::new("box").unwrap());
        assert!(access.may_act("box") && !access.may_see("box2"));
    }
}
