//! Command behaviour, one file per state: AUTHORIZATION (USER, PASS, AUTH, STLS, CAPA, APOP),
//! TRANSACTION (STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP) and UPDATE (QUIT).

mod authorization;
mod transaction;
pub use transaction::unique_id;
mod update;
