//! `notify`: a desktop notification with a short text, through the freedesktop notification
//! service (`org.freedesktop.Notifications` on the session bus — GNOME Shell, KDE Plasma, dunst,
//! mako and every other notification daemon implement it).
//!
//! We call its one method with the workspace's zbus, which the agent already links for logind,
//! rather than through notify-rust: its current release needs a newer Rust than the workspace's
//! 1.88, and its zbus backend brings its own async runtime unless told otherwise, for what is one
//! D-Bus call here (see docs/architecture.md). The session bus is found the standard way
//! (`DBUS_SESSION_BUS_ADDRESS`, else `$XDG_RUNTIME_DIR/bus`). Without a bus or a notification
//! service the answer is a failure that says so, within [`TIMEOUT`].

use std::time::Duration;

/// How long showing one notification may take before it counts as failed.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// What the notification is titled; the text is its body. (Shown on Linux only, so far.)
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub const SUMMARY: &str = "deskbridge";

/// Shows `text`; `Err` says why not, in words for the viewer.
pub async fn show(text: &str) -> Result<(), String> {
    let text = plain(text);
    match tokio::time::timeout(TIMEOUT, imp::show(&text)).await {
        Ok(shown) => shown,
        Err(_) => Err(format!(
            "the desktop's notification service did not answer within {} s",
            TIMEOUT.as_secs()
        )),
    }
}

/// The body of a notification may be markup for servers that support it (the specification's
/// `body-markup`); escaping the three markup characters makes every server show the text as it
/// was sent.
fn plain(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_is_shown_as_text() {
        assert_eq!(super::plain("<b>R&D</b>"), "&lt;b&gt;R&amp;D&lt;/b&gt;");
        assert_eq!(super::plain("Dinner ✓"), "Dinner ✓");
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::collections::HashMap;

    use zbus::zvariant::Value;

    #[zbus::proxy(
        interface = "org.freedesktop.Notifications",
        default_service = "org.freedesktop.Notifications",
        default_path = "/org/freedesktop/Notifications"
    )]
    trait Notifications {
        #[allow(clippy::too_many_arguments)]
        fn notify(
            &self,
            app_name: &str,
            replaces_id: u32,
            app_icon: &str,
            summary: &str,
            body: &str,
            actions: &[&str],
            hints: HashMap<&str, Value<'_>>,
            expire_timeout: i32,
        ) -> zbus::Result<u32>;
    }

    pub async fn show(text: &str) -> Result<(), String> {
        let bus = zbus::Connection::session().await.map_err(|e| {
            format!("no desktop notification service: the session bus is not reachable ({e})")
        })?;
        let service = NotificationsProxy::new(&bus)
            .await
            .map_err(|e| format!("no desktop notification service: {e}"))?;
        // -1: the server's default display time.
        let shown = service
            .notify(
                "deskbridge-agent",
                0,
                "",
                super::SUMMARY,
                text,
                &[],
                HashMap::new(),
                -1,
            )
            .await;
        match shown {
            Ok(id) => {
                log::debug!("notification {id} shown");
                Ok(())
            }
            Err(zbus::Error::MethodError(name, _, _))
                if name.as_str() == "org.freedesktop.DBus.Error.ServiceUnknown" =>
            {
                Err("no desktop notification service is running on this desktop".to_owned())
            }
            Err(e) => Err(format!("the desktop notification service failed: {e}")),
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub async fn show(_: &str) -> Result<(), String> {
        Err("desktop notifications are not supported on this platform yet".to_owned())
    }
}
