//! deskbridge's client tokens, apart from any web server: the key file ([`keys`]) and minting and
//! verifying tokens ([`token`]).
//!
//! A crate of its own so that everything that only needs to mint or check a token (the relay's
//! `token` command, the load generator, tests) does not pull in the relay's actix-web stack.

pub mod keys;
pub mod token;

pub use keys::{Key, KeyFileError, KeySet};
pub use token::{Claims, TokenError};
