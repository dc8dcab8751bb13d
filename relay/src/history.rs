//! The last few cpu samples of one client id, so a viewer that joins sees a chart at once.
//!
//! The desktop's session appends to it on every `cpu` (an uncontended lock: one writer per id);
//! the matchmaker reads it when a viewer joins. Samples are kept as the original frame text and
//! spliced into the `history` message, so nothing is decoded or re-encoded.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytestring::ByteString;
use deskbridge_protocol::ClientId;

/// A bounded ring of raw `cpu` frames.
#[derive(Debug)]
pub struct History {
    capacity: usize,
    samples: Mutex<VecDeque<ByteString>>,
}

impl History {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            samples: Mutex::new(VecDeque::with_capacity(capacity)),
        }
    }

    /// Appends a validated `cpu` frame, forgetting the oldest beyond capacity.
    pub fn push(&self, frame: ByteString) {
        if self.capacity == 0 {
            return;
        }
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() == self.capacity {
            samples.pop_front();
        }
        samples.push_back(frame);
    }

    /// The newest sample's frame, if any (for `/api/desktops`' `cpu`).
    pub fn last(&self) -> Option<ByteString> {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .back()
            .cloned()
    }

    /// The `history` message for `client_id`: the stored frames, oldest first, as a JSON array.
    /// Each frame was validated as a JSON object when it arrived, so splicing keeps JSON valid.
    pub fn to_message(&self, client_id: &ClientId) -> ByteString {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let body: usize = samples.iter().map(|s| s.len() + 1).sum();
        let mut out = String::with_capacity(64 + client_id.as_str().len() + body);
        out.push_str(r#"{"event":"history","client_id":""#);
        out.push_str(client_id.as_str()); // the id alphabet needs no JSON escaping
        out.push_str(r#"","samples":["#);
        for (i, s) in samples.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(s);
        }
        out.push_str("]}");
        ByteString::from(out)
    }
}

#[cfg(test)]
mod tests {
    use deskbridge_protocol::ServerMessage;

    use super::*;

    #[test]
    fn keeps_the_newest_samples_as_valid_json() {
        let history = History::new(3);
        for v in 0..5 {
            history.push(ByteString::from(format!(
                r#"{{"event":"cpu","value":{v}}}"#
            )));
        }
        let id = ClientId::new("box-1").unwrap();
        let parsed: ServerMessage = serde_json::from_str(&history.to_message(&id)).unwrap();
        let ServerMessage::History(h) = parsed else {
            panic!("not a history message")
        };
        assert_eq!(h.client_id, id);
        let values: Vec<f64> = h.samples.iter().map(|s| s.value).collect();
        assert_eq!(values, [2.0, 3.0, 4.0]);
    }

    #[test]
    fn empty_history_is_an_empty_array() {
        let id = ClientId::new("a").unwrap();
        assert_eq!(
            &*History::new(60).to_message(&id),
            r#"{"event":"history","client_id":"a","samples":[]}"#
        );
    }
}
