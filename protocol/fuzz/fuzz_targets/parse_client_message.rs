//! Fuzzes the one function that reads untrusted client input. Whatever the bytes, parsing must
//! return a message or a rejection — never panic, hang or blow the stack — and an accepted
//! message must serialize and parse back to the same message.

#![no_main]

use deskbridge_protocol::parse_client_message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // the relay rejects non-UTF-8 frames before parsing (close 1007)
    };
    if let Ok(message) = parse_client_message(text) {
        let again = parse_client_message(&message.to_json()).expect("re-encoded message parses");
        assert_eq!(again, message);
    }
});
