//! Behaviour per command family, as `impl Session` blocks: `hello` (EHLO/HELO and the capability
//! list), `auth` (AUTH and its SASL exchange), `mail` (MAIL, RCPT), `data` (DATA, BDAT, the body
//! receiver with its spool, and delivery), `misc` (RSET, NOOP, QUIT, HELP, VRFY, EXPN, STARTTLS).

pub(crate) mod auth;
pub(crate) mod data;
pub(crate) mod hello;
pub(crate) mod mail;
pub(crate) mod misc;
