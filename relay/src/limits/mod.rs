//! Limits against abuse: connections in total and per client address, the origin of browser
//! connections, message rates, and sign-in attempts. Each refusal is counted in `/metrics`
//! (`deskbridge_limited_total{limit=…}`).

pub mod client_ip;
pub mod connections;
pub mod frame_guard;
pub mod origin;
pub mod rate;
pub mod signin;
