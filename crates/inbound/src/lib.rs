//! wharf-inbound: trust of mail arriving on port 25. Verifies SPF (RFC 7208, HELO and MAIL
//! FROM identities) with its own evaluator (`spf`), and DKIM (RFC 6376, RSA and Ed25519), ARC
//! (RFC 8617), DMARC (RFC 7489, with the organisational domain found by mail-auth's DNS tree
//! walk) and iprev (RFC 8601 §3) through mail-auth; renders one Authentication-Results header
//! with our authserv-id and finds forged ones to remove; and turns the verdicts into an action
//! under `[inbound]` (deliver, Junk, reject, temporary failure). It knows nothing of SMTP sessions: the binary
//! binds it to the SMTP crate's `ArrivalCheck` port. `reports` reads the DMARC and TLS-RPT
//! aggregate reports other servers send about our domains; `aggregate` makes the ones we send.

pub mod aggregate;
mod check;
pub mod config;
pub mod header;
pub mod report_dns;
pub mod reports;
pub mod spf;
pub mod tlsrpt;

pub use check::{Action, Arrival, MethodResults, Verdict, Verifier};
pub use config::{Disposition, DomainPolicy, InboundConfig};
pub use mail_auth::SpfResult;
