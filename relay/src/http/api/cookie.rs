//! The signed-in page's session cookie: `deskbridge_session`, HttpOnly (page scripts never see
//! it), SameSite=Strict (other sites' pages never send it), Path=/, and `Secure` whenever the
//! client reached the relay over https, so it never travels in clear text once it has not.

use std::time::Duration;

use actix_web::cookie::{time, Cookie, SameSite};

use crate::auth::SESSION_COOKIE;

/// The cookie carrying a session token, for `max_age`.
pub fn session(token: &str, max_age: Duration, secure: bool) -> Cookie<'static> {
    let seconds = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
    Cookie::build(SESSION_COOKIE, token.to_owned())
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .secure(secure)
        .max_age(time::Duration::seconds(seconds))
        .finish()
}

/// The cookie that replaces the session's when it ends: empty, `Max-Age=0`.
pub fn cleared(secure: bool) -> Cookie<'static> {
    session("", Duration::ZERO, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_every_attribute() {
        let text = session("t.o.k", Duration::from_secs(900), true).to_string();
        for part in [
            "deskbridge_session=t.o.k",
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Path=/",
            "Max-Age=900",
        ] {
            assert!(text.contains(part), "{part} missing in {text}");
        }
        assert!(!session("t", Duration::from_secs(1), false)
            .to_string()
            .contains("Secure"));
        assert!(cleared(false).to_string().contains("Max-Age=0"));
    }
}
