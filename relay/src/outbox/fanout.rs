//! Sending one frame to every viewer of a desktop: the one copy of it, used by the desktop's
//! session, by the cluster link delivering another node's frames, and by the routing benchmark,
//! so what the benchmark measures is what the relay runs.

use bytestring::ByteString;
use deskbridge_protocol::{forward_frame, EventKind, Route};

use super::{Outbound, Outbox, SendError};
use crate::metrics::Metrics;

/// Queues `text` (a validated message of `kind`, from a desktop) into every viewer's outbox and
/// counts the outcome; returns how many viewers it reached. A fleet connection's outbox gets the
/// frame wrapped in `forward` (made once per call, shared by every fleet connection of the id).
///
/// Telemetry is superseded by the next sample, so a viewer whose queue is past the telemetry
/// limit just misses this one (counted as `queue_full`). Anything else (a reply) must not vanish
/// quietly: it is refused only by a completely full queue, and that is logged as a stuck viewer.
pub fn fan_out(viewers: &[Outbox], kind: EventKind, text: &ByteString, metrics: &Metrics) -> u64 {
    let telemetry = kind.route() == Route::Telemetry;
    let mut delivered = 0;
    let mut wrapped: Option<ByteString> = None;
    for viewer in viewers {
        let frame = match viewer.forward_prefix() {
            None => text.clone(),
            Some(prefix) => wrapped
                .get_or_insert_with(|| forward_frame(prefix, text).into())
                .clone(),
        };
        let sent = if telemetry {
            viewer.send_telemetry(frame)
        } else {
            viewer.send(Outbound::Text(frame))
        };
        match sent {
            Ok(()) => delivered += 1,
            Err(SendError::Full(reason)) => {
                metrics.messages_dropped(reason).inc();
                if !telemetry {
                    log::warn!(
                        "viewer session {} is stuck; {} to it dropped",
                        viewer.session(),
                        kind.name()
                    );
                }
            }
            Err(SendError::Closed) => {}
        }
    }
    metrics.messages_relayed(kind).inc_by(delivered);
    delivered
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::DropReason;

    const CPU: &str = r#"{"event":"cpu","value":1.0}"#;

    #[test]
    fn telemetry_skips_a_full_viewer_and_reaches_the_others() {
        let metrics = Metrics::new();
        let (slow, _slow_rx) = Outbox::new(1, 4, 4);
        let (fast, mut fast_rx) = Outbox::new(2, 4, 4);
        let (gone, gone_rx) = Outbox::new(3, 4, 4);
        drop(gone_rx);
        let frame = ByteString::from_static(CPU);
        // 4 slots, a quarter kept for control frames: the slow viewer takes 3 samples.
        for _ in 0..3 {
            fan_out(
                std::slice::from_ref(&slow),
                EventKind::Cpu,
                &frame,
                &metrics,
            );
        }
        let viewers = [slow, fast, gone];
        assert_eq!(fan_out(&viewers, EventKind::Cpu, &frame, &metrics), 1);
        assert!(fast_rx.try_recv().is_ok());
        assert_eq!(metrics.messages_dropped(DropReason::QueueFull).get(), 1);
    }

    #[test]
    fn a_fleet_connection_gets_the_frame_wrapped_with_its_id() {
        let metrics = Metrics::new();
        let (viewer, mut viewer_rx) = Outbox::new(1, 4, 4);
        let (fleet, mut fleet_rx) = Outbox::new(2, 4, 4);
        let id = deskbridge_protocol::ClientId::new("box-1").unwrap();
        let prefix: std::sync::Arc<str> = deskbridge_protocol::forward_prefix(&id).into();
        let viewers = [viewer, fleet.forwarding(prefix)];
        let frame = ByteString::from_static(CPU);
        assert_eq!(fan_out(&viewers, EventKind::Cpu, &frame, &metrics), 2);
        let Some(Outbound::Text(plain)) = viewer_rx.try_recv().ok() else {
            panic!("the viewer got nothing")
        };
        assert_eq!(plain, frame);
        let Some(Outbound::Text(wrapped)) = fleet_rx.try_recv().ok() else {
            panic!("the fleet connection got nothing")
        };
        assert_eq!(
            &*wrapped,
            format!(r#"{{"event":"forward","client_id":"box-1","message":{CPU}}}"#)
        );
    }

    #[test]
    fn a_reply_still_fits_where_telemetry_does_not() {
        let metrics = Metrics::new();
        let (viewer, _rx) = Outbox::new(1, 4, 4);
        let cpu = ByteString::from_static(CPU);
        while viewer.send_telemetry(cpu.clone()).is_ok() {}
        let reply = ByteString::from_static(r#"{"event":"beep_result"}"#);
        let kind = EventKind::BeepResult;
        assert_eq!(kind.route(), Route::Reply);
        assert_eq!(fan_out(&[viewer], kind, &reply, &metrics), 1);
        assert_eq!(metrics.messages_dropped(DropReason::QueueFull).get(), 0);
    }
}
