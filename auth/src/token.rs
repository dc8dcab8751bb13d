//! Minting and verifying client tokens: HS256 JWTs whose claims bind a token to one client id and
//! one mode, so a token for `alice` never opens `bob` and a viewer's token never connects a desktop.
//!
//! What [`Verifier::verify`] checks, in order (docs/security.md lists the same): the header says
//! HS256 and names a `kid` this relay has; the signature; `exp` (required) and `nbf` (when present),
//! each with the relay's clock-skew allowance; no `aud` at all; `sub` equals the requested client
//! id and `mode` the requested mode. Revocation (`jti`) is the relay's, checked after this.

use std::time::Duration;

use deskbridge_protocol::{ClientId, ClientMode};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::keys::KeySet;
use crate::patterns::Patterns;
use deskbridge_protocol::Role;

/// What a token is for, beyond the v1 "one client id, one mode" token (which has no `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// A web token for scripts and kiosks: every desktop matching `desktops`, with `role`
    /// (`token --mode web --desktops … --role …`). `sub` is a label, not an id.
    Fleet,
    /// A signed-in person's session (the page's cookie): `sub` is the user name; the role and
    /// desktops are read from the users file each time, so an edit there takes effect at once.
    Session,
    /// A view-only link for one desktop (`sub`), made by an operator from the page.
    Share,
}

/// The claims of a deskbridge token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The client id the token opens (for a `kind` of token: see [`TokenKind`]).
    pub sub: String,
    /// `desktop` or `web`.
    pub mode: ClientMode,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Not valid before, Unix seconds. Tokens minted here carry none; one that does is checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Unique token id, for revocation.
    pub jti: String,
    /// Absent for v1 tokens (one id, one mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<TokenKind>,
    /// For [`TokenKind::Fleet`]: the desktops it opens, as `Patterns` text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desktops: Option<String>,
    /// For [`TokenKind::Fleet`]: what it may do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// For [`TokenKind::Session`]: when the person signed in (Unix seconds; OpenID Connect's name
    /// for it). Renewals keep it, so a sign-in cannot be renewed past a fixed limit from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
}

/// Why a token was refused. Logged by the relay (never with the token itself); the client gets
/// the short reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no token was presented")]
    Missing,
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is not signed with HS256")]
    WrongAlgorithm,
    #[error("the token names no signing key (kid)")]
    NoKeyId,
    #[error("the token's signing key {0:?} is not one of this relay's keys")]
    UnknownKey(String),
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (its nbf is in the future)")]
    NotYetValid,
    #[error("the token names an audience (aud); deskbridge tokens carry none, so it was meant for another service")]
    Audience,
    #[error("the token is for client id {token:?}, not {requested:?}")]
    WrongClient { token: String, requested: String },
    #[error("the token is for a {token} client, not a {requested} client")]
    WrongMode {
        token: ClientMode,
        requested: ClientMode,
    },
    #[error("the token {0:?} has been revoked")]
    Revoked(String),
    #[error("this kind of token does not open this kind of connection")]
    WrongKind,
    #[error("the token's desktops or role are not valid")]
    BadScope,
    #[error("the user {0:?} no longer exists")]
    UnknownUser(String),
    #[error("the token does not open desktop {0:?}")]
    NotPermitted(String),
}

/// Mints a token for `client_id` in `mode`, valid for `ttl`, signed with the set's first key.
pub fn mint(keys: &KeySet, client_id: &ClientId, mode: ClientMode, ttl: Duration) -> String {
    sign(keys, &Claims::new(client_id.as_str(), mode, ttl))
}

/// Mints a web token for every desktop matching `desktops`, with `role`, for scripts and kiosks.
pub fn mint_fleet(keys: &KeySet, desktops: &Patterns, role: Role, ttl: Duration) -> String {
    let mut claims = Claims::new("fleet", ClientMode::Web, ttl);
    claims.kind = Some(TokenKind::Fleet);
    claims.desktops = Some(desktops.to_string());
    claims.role = Some(role);
    sign(keys, &claims)
}

/// Mints a signed-in person's session token (the page's cookie). Returns it with its claims, so
/// the caller knows its `jti` and `exp`.
pub fn mint_session(keys: &KeySet, user: &str, ttl: Duration) -> (String, Claims) {
    let mut claims = Claims::new(user, ClientMode::Web, ttl);
    claims.kind = Some(TokenKind::Session);
    claims.auth_time = Some(claims.iat);
    (sign(keys, &claims), claims)
}

/// How long after signing in a session can still be renewed: then the person signs in again, and
/// the connections opened with it end.
pub const SESSION_MAX_AGE: Duration = Duration::from_secs(30 * 86_400);

/// Renews a session: the same person, `jti` and sign-in time, issued now and valid for `ttl`,
/// but never past `auth_time + max_age` (a session without `auth_time` counts from its `iat`).
/// Keeping the `jti` means revoking it (signing out) ends every connection opened with any
/// renewal. `None` when the limit leaves nothing to renew: the person signs in again.
pub fn renew_session(
    keys: &KeySet,
    session: &Claims,
    ttl: Duration,
    max_age: Duration,
) -> Option<(String, Claims)> {
    let now = jsonwebtoken::get_current_timestamp();
    let signed_in = session.auth_time.unwrap_or(session.iat);
    let exp = (now + ttl.as_secs()).min(signed_in.saturating_add(max_age.as_secs()));
    if exp <= session.exp {
        return None;
    }
    let claims = Claims {
        iat: now,
        exp,
        nbf: None,
        auth_time: Some(signed_in),
        ..session.clone()
    };
    Some((sign(keys, &claims), claims))
}

/// Mints a view-only link's token for one desktop. Returns it with its claims.
pub fn mint_share(keys: &KeySet, client_id: &ClientId, ttl: Duration) -> (String, Claims) {
    let mut claims = Claims::new(client_id.as_str(), ClientMode::Web, ttl);
    claims.kind = Some(TokenKind::Share);
    (sign(keys, &claims), claims)
}

impl Claims {
    /// Fresh claims: issued now, a new `jti`, no `kind`.
    fn new(sub: &str, mode: ClientMode, ttl: Duration) -> Self {
        let now = jsonwebtoken::get_current_timestamp();
        Claims {
            sub: sub.to_owned(),
            mode,
            iat: now,
            exp: now + ttl.as_secs(),
            nbf: None,
            jti: random_jti(),
            kind: None,
            desktops: None,
            role: None,
            auth_time: None,
        }
    }
}

/// Signs `claims` with the set's first key.
fn sign(keys: &KeySet, claims: &Claims) -> String {
    let key = keys.signing();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(&key.secret))
        .expect("HS256 signing with an in-memory key cannot fail")
}

fn random_jti() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The relay's default allowance for clocks that disagree (`--clock-skew`).
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(30);

/// Checks tokens against a key set, allowing for clocks that disagree by up to `clock_skew`.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: KeySet,
    clock_skew: Duration,
}

impl Verifier {
    pub fn new(keys: KeySet, clock_skew: Duration) -> Self {
        Self { keys, clock_skew }
    }

    /// The keys tokens are checked against.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Checks a token's header, signature, time window, audience and binding to `client_id` and
    /// `mode` (the list at the top of this module).
    pub fn verify(
        &self,
        token: &str,
        client_id: &ClientId,
        mode: ClientMode,
    ) -> Result<Claims, TokenError> {
        let claims = self.verify_signed(token)?;
        if claims.kind.is_some() {
            // A session's `sub` is a user name and a share link's is checked by its own rules:
            // neither may pass for a v1 token of a desktop that happens to have that name.
            return Err(TokenError::WrongKind);
        }
        if claims.sub != client_id.as_str() {
            return Err(TokenError::WrongClient {
                token: claims.sub,
                requested: client_id.to_string(),
            });
        }
        if claims.mode != mode {
            return Err(TokenError::WrongMode {
                token: claims.mode,
                requested: mode,
            });
        }
        Ok(claims)
    }

    /// Checks a token's header, signature, time window and audience, but not what it opens: the
    /// caller reads `kind`, `sub` and `mode` (see [`crate::access::Access::from_claims`]).
    pub fn verify_signed(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::WrongAlgorithm);
        }
        let kid = header.kid.ok_or(TokenError::NoKeyId)?;
        let key = self.keys.get(&kid).ok_or(TokenError::UnknownKey(kid))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = self.clock_skew.as_secs();
        // jsonwebtoken ignores `nbf` unless asked to.
        validation.validate_nbf = true;
        // The audience rule is ours (below): jsonwebtoken's lets an `aud` it cannot parse through.
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &DecodingKey::from_secret(&key.secret),
            &validation,
        )
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::InvalidAlgorithm => TokenError::WrongAlgorithm,
            _ => TokenError::Malformed,
        })?;
        // The relay mints no `aud`, so one that names any audience (even `null` or `[]`) was made
        // for some other service sharing the key, and must not open a session here.
        if data.claims.contains_key("aud") {
            return Err(TokenError::Audience);
        }
        serde_json::from_value(serde_json::Value::Object(data.claims))
            .map_err(|_| TokenError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    use super::*;
    use crate::keys::Key;

    fn keys(kid: &str, byte: u8) -> KeySet {
        KeySet::from_keys(vec![Key {
            kid: kid.into(),
            secret: vec![byte; 32],
        }])
        .unwrap()
    }

    fn id(s: &str) -> ClientId {
        ClientId::new(s).unwrap()
    }

    const HOUR: Duration = Duration::from_secs(3600);

    fn verify(
        keys: &KeySet,
        token: &str,
        client_id: &ClientId,
        mode: ClientMode,
    ) -> Result<Claims, TokenError> {
        Verifier::new(keys.clone(), DEFAULT_CLOCK_SKEW).verify(token, client_id, mode)
    }

    /// Signs `claims` as they are, with key `k1` = [1; 32]: tokens `mint` would never make.
    fn sign(claims: serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&[1; 32])).unwrap()
    }

    /// Valid claims for web client `a`, with `extra` claims added or replaced.
    fn claims_with(extra: serde_json::Value) -> serde_json::Value {
        let now = jsonwebtoken::get_current_timestamp();
        let mut claims = serde_json::json!({
            "sub": "a", "mode": "web", "iat": now, "exp": now + 3600, "jti": "x"
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    }

    fn verify_with_skew(token: &str, skew: Duration) -> Result<Claims, TokenError> {
        Verifier::new(keys("k1", 1), skew).verify(token, &id("a"), ClientMode::Web)
    }

    #[test]
    fn nbf_is_checked_with_the_clock_skew() {
        let now = jsonwebtoken::get_current_timestamp();
        let skew = Duration::from_secs(30);
        let past = sign(claims_with(serde_json::json!({ "nbf": now - 600 })));
        assert_eq!(verify_with_skew(&past, skew).unwrap().nbf, Some(now - 600));
        let soon = sign(claims_with(serde_json::json!({ "nbf": now + 10 })));
        assert!(verify_with_skew(&soon, skew).is_ok(), "within the skew");
        assert_eq!(
            verify_with_skew(&soon, Duration::ZERO),
            Err(TokenError::NotYetValid)
        );
        let later = sign(claims_with(serde_json::json!({ "nbf": now + 3000 })));
        assert_eq!(verify_with_skew(&later, skew), Err(TokenError::NotYetValid));
    }

    #[test]
    fn exp_is_checked_with_the_clock_skew() {
        let now = jsonwebtoken::get_current_timestamp();
        let just_expired = sign(claims_with(serde_json::json!({ "exp": now - 10 })));
        assert!(verify_with_skew(&just_expired, Duration::from_secs(30)).is_ok());
        assert_eq!(
            verify_with_skew(&just_expired, Duration::ZERO),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify_with_skew(&just_expired, Duration::from_secs(5)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_token_naming_any_audience_is_refused() {
        use serde_json::json;
        for aud in [
            json!("deskbridge"),
            json!(["other-service"]),
            json!([]),
            json!(5),
            json!({ "x": 1 }),
            json!(null),
        ] {
            let token = sign(claims_with(json!({ "aud": aud })));
            assert_eq!(
                verify_with_skew(&token, DEFAULT_CLOCK_SKEW),
                Err(TokenError::Audience),
                "aud {aud}"
            );
        }
    }

    #[test]
    fn a_token_opens_exactly_its_id_and_mode() {
        let k = keys("k1", 1);
        let token = mint(&k, &id("alice"), ClientMode::Web, HOUR);
        let claims = verify(&k, &token, &id("alice"), ClientMode::Web).unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.jti.len(), 24);
        assert!(claims.exp >= claims.iat + 3599);
        assert!(matches!(
            verify(&k, &token, &id("bob"), ClientMode::Web),
            Err(TokenError::WrongClient { .. })
        ));
        assert!(matches!(
            verify(&k, &token, &id("alice"), ClientMode::Desktop),
            Err(TokenError::WrongMode { .. })
        ));
    }

    #[test]
    fn rotation_verifies_old_tokens_and_signs_with_the_new_key() {
        let old = keys("old", 1);
        let token = mint(&old, &id("a"), ClientMode::Desktop, HOUR);
        let rotated = KeySet::from_keys(vec![
            Key {
                kid: "new".into(),
                secret: vec![2; 32],
            },
            Key {
                kid: "old".into(),
                secret: vec![1; 32],
            },
        ])
        .unwrap();
        assert!(verify(&rotated, &token, &id("a"), ClientMode::Desktop).is_ok());
        let fresh = mint(&rotated, &id("a"), ClientMode::Desktop, HOUR);
        assert_eq!(
            jsonwebtoken::decode_header(&fresh).unwrap().kid.as_deref(),
            Some("new")
        );
        assert_eq!(
            verify(&old, &fresh, &id("a"), ClientMode::Desktop),
            Err(TokenError::UnknownKey("new".into()))
        );
    }

    #[test]
    fn forged_expired_and_garbage_tokens_are_refused() {
        let k = keys("k1", 1);
        let other = keys("k1", 9);
        let forged = mint(&other, &id("a"), ClientMode::Web, HOUR);
        assert_eq!(
            verify(&k, &forged, &id("a"), ClientMode::Web),
            Err(TokenError::BadSignature)
        );

        let expired = mint(&k, &id("a"), ClientMode::Web, Duration::ZERO);
        // exp == now, within the 30 s leeway: build one well past it instead.
        let mut claims: Claims = jsonwebtoken::dangerous::insecure_decode(&expired)
            .unwrap()
            .claims;
        claims.exp -= 3600;
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let expired =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&[1; 32])).unwrap();
        assert_eq!(
            verify(&k, &expired, &id("a"), ClientMode::Web),
            Err(TokenError::Expired)
        );

        for garbage in ["", "abc", "a.b.c", "....", &"x".repeat(5000)] {
            assert_eq!(
                verify(&k, garbage, &id("a"), ClientMode::Web),
                Err(TokenError::Malformed),
                "{garbage}"
            );
        }
    }

    #[test]
    fn alg_none_is_refused() {
        let k = keys("k1", 1);
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
        let now = jsonwebtoken::get_current_timestamp();
        let body = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"sub":"a","mode":"web","exp":{},"iat":{now},"jti":"x"}}"#,
            now + 3600
        ));
        for token in [format!("{header}.{body}."), format!("{header}.{body}")] {
            let err = verify(&k, &token, &id("a"), ClientMode::Web).unwrap_err();
            assert!(
                matches!(err, TokenError::Malformed | TokenError::WrongAlgorithm),
                "{err:?}"
            );
        }
    }

    #[test]
    fn a_renewed_session_keeps_its_id_and_sign_in_time_up_to_the_limit() {
        let k = keys("k1", 1);
        let verifier = Verifier::new(k.clone(), DEFAULT_CLOCK_SKEW);
        let (_, mut session) = mint_session(&k, "alice", HOUR);
        assert_eq!(session.auth_time, Some(session.iat));
        // Nothing to gain while the limit is not past the current expiry.
        assert!(renew_session(&k, &session, HOUR, HOUR).is_none());
        session.exp -= 1800;
        let (token, renewed) = renew_session(&k, &session, HOUR, 10 * HOUR).unwrap();
        assert_eq!(verifier.verify_signed(&token).unwrap(), renewed);
        assert_eq!(renewed.jti, session.jti);
        assert_eq!(renewed.auth_time, session.auth_time);
        assert_eq!(renewed.kind, Some(TokenKind::Session));
        assert!(renewed.exp > session.exp);
        // Signed in long ago: capped at the limit, and nothing at all once it has passed.
        let now = jsonwebtoken::get_current_timestamp();
        session.auth_time = Some(now - 10 * 3600 + 60);
        session.exp = now + 10;
        let (_, capped) = renew_session(&k, &session, HOUR, 10 * HOUR).unwrap();
        assert_eq!(capped.exp, now + 60);
        session.auth_time = Some(now - 11 * 3600);
        assert!(renew_session(&k, &session, HOUR, 10 * HOUR).is_none());
    }
}
