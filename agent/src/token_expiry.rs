//! Reads when the agent's desktop token expires, so the agent can say so in its log well before
//! the relay starts refusing it.
//!
//! Desktop tokens are long-lived and the agent runs unattended: without a warning, the first sign
//! of an expired token would be a desktop silently gone offline. The agent cannot verify the token
//! (only the relay has the key) and does not need to: it only reads the `exp` claim of the JWT's
//! payload (base64url JSON). A token that is not a JWT, or has no `exp`, gets no warning; the
//! relay will say what is wrong with it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Warn while fewer than this many days are left.
pub const WARN_BEFORE: Duration = Duration::from_secs(14 * 24 * 60 * 60);
/// How often the warning is repeated while it applies.
pub const CHECK_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// 10000-01-01T00:00:00Z in Unix seconds: RFC 3339 dates stop before it.
const LAST_PRINTABLE: u64 = 253_402_300_800;

/// The `exp` claim of a JWT, read without verifying the signature; `None` if unreadable.
pub fn expires_at(token: &str) -> Option<SystemTime> {
    #[derive(serde::Deserialize)]
    struct Claims {
        exp: u64,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    // Beyond the year 9999 nothing needs a warning, and the date could not be printed.
    if claims.exp >= LAST_PRINTABLE {
        return None;
    }
    UNIX_EPOCH.checked_add(Duration::from_secs(claims.exp))
}

/// What the log should say about a token expiring at `expires` when it is `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Fewer than [`WARN_BEFORE`] left: a `warn!`.
    Soon(String),
    /// Already expired: an `error!`.
    Expired(String),
}

/// The notice for a token with `expires`, or `None` while it has long enough left.
pub fn notice(expires: SystemTime, now: SystemTime, id: &str) -> Option<Notice> {
    let when = humantime::format_rfc3339_seconds(expires);
    let renew = renew_hint(id);
    match expires.duration_since(now) {
        Ok(left) if left >= WARN_BEFORE => None,
        Ok(left) => {
            let days = match left.as_secs() / (24 * 60 * 60) {
                0 => "less than a day".to_owned(),
                1 => "1 day".to_owned(),
                n => format!("{n} days"),
            };
            Some(Notice::Soon(format!(
                "the desktop token expires on {when} (in {days}); {renew}"
            )))
        }
        Err(_) => Some(Notice::Expired(format!(
            "the desktop token expired on {when}: the relay will refuse it; {renew}"
        ))),
    }
}

/// What to run to replace a desktop token for `id`.
pub fn renew_hint(id: &str) -> String {
    format!(
        "mint a new one with `deskbridge-relay token --id {id} --mode desktop` and run \
         `deskbridge-agent install --id {id} --token TOKEN`"
    )
}

/// Logs the notice for `token`, if any: called at start-up and then every [`CHECK_EVERY`].
pub fn log_notice(token: &str, id: &str) {
    let Some(expires) = expires_at(token) else {
        return;
    };
    match notice(expires, SystemTime::now(), id) {
        Some(Notice::Soon(text)) => log::warn!("{text}"),
        Some(Notice::Expired(text)) => log::error!("{text}"),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    fn token_with(payload: &str) -> String {
        format!(
            "{}.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    fn unix(t: SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn a_token_with_three_days_left_gets_a_warning_with_what_to_do() {
        let now = SystemTime::now();
        let exp = unix(now + 3 * DAY + Duration::from_secs(60));
        let token = token_with(&format!(r#"{{"sub":"pc","mode":"desktop","exp":{exp}}}"#));
        let expires = expires_at(&token).expect("exp is read");
        assert_eq!(unix(expires), exp);
        let Some(Notice::Soon(text)) = notice(expires, now, "pc") else {
            panic!("expected a warning");
        };
        assert!(text.contains("the desktop token expires on"), "{text}");
        assert!(text.contains("in 3 days"), "{text}");
        assert!(
            text.contains("deskbridge-relay token --id pc --mode desktop"),
            "{text}"
        );
        assert!(text.contains("deskbridge-agent install"), "{text}");
    }

    #[test]
    fn the_time_left_reads_naturally() {
        let now = SystemTime::now();
        let soon = |left| match notice(now + left, now, "pc") {
            Some(Notice::Soon(text)) => text,
            other => panic!("expected a warning, got {other:?}"),
        };
        assert!(soon(Duration::from_secs(60)).contains("(in less than a day)"));
        assert!(soon(DAY + Duration::from_secs(1)).contains("(in 1 day)"));
        assert!(soon(13 * DAY).contains("(in 13 days)"));
    }

    #[test]
    fn a_token_with_long_enough_left_gets_no_notice() {
        let now = SystemTime::now();
        assert_eq!(notice(now + 30 * DAY, now, "pc"), None);
        assert_eq!(notice(now + WARN_BEFORE, now, "pc"), None);
    }

    #[test]
    fn an_expired_token_gets_an_error() {
        let now = SystemTime::now();
        let token = token_with(&format!(r#"{{"exp":{}}}"#, unix(now) - 10));
        let expires = expires_at(&token).expect("exp is read");
        assert!(matches!(
            notice(expires, now, "pc"),
            Some(Notice::Expired(text)) if text.contains("expired on")
        ));
    }

    #[test]
    fn garbage_tokens_are_not_read_and_do_not_panic() {
        for token in [
            "",
            "not a jwt",
            "a.b.c",
            "..",
            "a.!!!.c",
            &token_with("not json"),
            &token_with(r#"{"sub":"pc"}"#),
            &token_with(r#"{"exp":-5}"#),
            &token_with(r#"{"exp":"tomorrow"}"#),
            &token_with(r#"{"exp":18446744073709551615}"#),
            &token_with(r#"{"exp":253402300800}"#),
        ] {
            assert_eq!(expires_at(token), None, "{token:?}");
            log_notice(token, "pc");
        }
    }

    #[test]
    fn padded_payloads_are_read_too() {
        let token = format!(
            "h.{}.s",
            base64::engine::general_purpose::URL_SAFE.encode(r#"{"exp":1}"#)
        );
        assert_eq!(
            expires_at(&token),
            Some(UNIX_EPOCH + Duration::from_secs(1))
        );
    }
}
