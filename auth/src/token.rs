//! Minting and verifying client tokens: HS256 JWTs whose claims bind a token to one client id and
//! one mode, so a token for `alice` never opens `bob` and a viewer's token never connects a desktop.

use std::time::Duration;

use deskbridge_protocol::{ClientId, ClientMode};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::keys::KeySet;

/// The claims of a deskbridge token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The client id the token opens.
    pub sub: String,
    /// `desktop` or `web`.
    pub mode: ClientMode,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Unique token id, for revocation.
    pub jti: String,
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
    #[error("the token is for client id {token:?}, not {requested:?}")]
    WrongClient { token: String, requested: String },
    #[error("the token is for a {token} client, not a {requested} client")]
    WrongMode {
        token: ClientMode,
        requested: ClientMode,
    },
    #[error("the token {0:?} has been revoked")]
    Revoked(String),
}

/// Mints a token for `client_id` in `mode`, valid for `ttl`, signed with the set's first key.
pub fn mint(keys: &KeySet, client_id: &ClientId, mode: ClientMode, ttl: Duration) -> String {
    let key = keys.signing();
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: client_id.to_string(),
        mode,
        iat: now,
        exp: now + ttl.as_secs(),
        jti: random_jti(),
    };
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&key.secret))
        .expect("HS256 signing with an in-memory key cannot fail")
}

fn random_jti() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a token's signature, expiry and binding to `client_id` and `mode`.
pub fn verify(
    keys: &KeySet,
    token: &str,
    client_id: &ClientId,
    mode: ClientMode,
) -> Result<Claims, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    if header.alg != Algorithm::HS256 {
        return Err(TokenError::WrongAlgorithm);
    }
    let kid = header.kid.ok_or(TokenError::NoKeyId)?;
    let key = keys.get(&kid).ok_or(TokenError::UnknownKey(kid))?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "sub"]);
    validation.leeway = 30;
    let data =
        jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(&key.secret), &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::InvalidAlgorithm => TokenError::WrongAlgorithm,
                _ => TokenError::Malformed,
            })?;
    let claims = data.claims;
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
}
