//! Command behaviour: AUTHENTICATE and its SASL exchange (`auth`), and the commands of the
//! authenticated state on the account's scripts (`scripts`).

mod auth;
mod scripts;
