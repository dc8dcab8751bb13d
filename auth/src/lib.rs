//! deskbridge's credentials, apart from any web server: the key file ([`keys`]), minting and
//! verifying tokens ([`token`]), and the people who may sign in ([`users`]) with the desktops
//! they may see ([`patterns`]).
//!
//! A crate of its own so that everything that only needs to mint or check a token (the relay's
//! `token` command, the load generator, tests) does not pull in the relay's actix-web stack.

pub mod access;
pub mod keys;
pub mod patterns;
pub mod token;
pub mod users;

pub use access::{Access, Credential};
pub use keys::{Key, KeyFileError, KeySet};
pub use patterns::{PatternError, Patterns};
pub use token::{Claims, TokenError, TokenKind};
pub use users::{Role, User, Users, UsersError};
