//! Keys and tokens for tests: the relay's own minting, and hand-signed claims for tokens the relay
//! would never mint (expired, not yet valid, with an audience).

use std::time::Duration;

use deskbridge_auth::{token, Key, KeySet};
use deskbridge_protocol::{ClientId, ClientMode};
use deskbridge_relay::Config;
use serde_json::Value;

/// A key set of one key `kid` whose secret is 32 × `byte`.
pub fn keys(kid: &str, byte: u8) -> KeySet {
    KeySet::from_keys(vec![Key {
        kid: kid.into(),
        secret: vec![byte; 32],
    }])
    .expect("one key")
}

/// `config` with tokens required and checked against `keys`.
pub fn secured(config: Config, keys: &KeySet) -> Config {
    Config {
        allow_anonymous: false,
        keys: Some(keys.clone()),
        ..config
    }
}

/// A token for `id` in `mode`, valid for an hour, minted as `deskbridge-relay token` would.
pub fn mint(keys: &KeySet, id: &str, mode: ClientMode) -> String {
    mint_for(keys, id, mode, Duration::from_secs(3600))
}

/// Like [`mint`], valid for `ttl` (tokens that expire during a test).
pub fn mint_for(keys: &KeySet, id: &str, mode: ClientMode, ttl: Duration) -> String {
    token::mint(
        keys,
        &ClientId::new(id).expect("a valid client id"),
        mode,
        ttl,
    )
}

/// Valid claims for `id` in `mode` (`"web"`/`"desktop"`), an hour long, with `extra` claims added
/// or replaced.
pub fn claims(id: &str, mode: &str, extra: Value) -> Value {
    let now = jsonwebtoken::get_current_timestamp();
    let mut claims = serde_json::json!({
        "sub": id, "mode": mode, "iat": now, "exp": now + 3600, "jti": "test-jti"
    });
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            claims[k] = v;
        }
    }
    claims
}

/// Signs `claims` exactly as given (HS256, header `kid`) with `key`.
pub fn sign(key: &Key, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(&key.secret),
    )
    .expect("HS256 signing in memory")
}
