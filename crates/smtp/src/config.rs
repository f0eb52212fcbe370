//! The `[smtp]` table of wharf.toml: every limit and policy of the SMTP service, each with its default.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// What to do with a bare LF or bare CR inside DATA/BDAT content (SMTP smuggling defence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BareLfPolicy {
    /// Reject the whole message with `550 5.6.0`.
    #[default]
    Reject,
    /// Store the message with every bare LF / bare CR turned into CRLF. A normalised line break
    /// never ends DATA: only a real `<CRLF>.<CRLF>` does.
    Normalize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// Largest message accepted, in octets (advertised as `SIZE`). Larger ones get `552 5.3.4`.
    pub max_message_size: usize,
    /// Recipients per transaction; RCPT beyond gets `452 4.5.3`. RFC 5321 requires at least 100.
    pub max_recipients: usize,
    /// Longest command line, CRLF included (RFC 5321 §4.5.3.1.4: 512).
    pub max_command_line: usize,
    /// Longest text line of a message, CRLF included (RFC 5322 §2.1.1: 1000). 0 disables the check.
    pub max_text_line: usize,
    /// Errors (syntax, sequence, refused commands) tolerated before `421 4.7.0` and close.
    pub max_errors: u32,
    /// Bare LF / bare CR in message content: "reject" (550 5.6.0) or "normalize".
    pub bare_lf_policy: BareLfPolicy,
    /// Port 25 only: wait this long before the greeting; a client that talks first gets 554 and is
    /// dropped (early talker). 0 disables it.
    pub greeting_delay_ms: u64,
    /// Idle time allowed while waiting for a command or message data, in seconds (`421 4.4.2`).
    pub idle_timeout_secs: u64,
    /// Allow AUTH without TLS on the submission StartTls listener when the client is on loopback.
    pub allow_plaintext_auth_on_loopback: bool,
    /// Answer VRFY truthfully (250/550). Off: every VRFY gets `252 2.5.0`.
    pub enable_vrfy: bool,
    /// Concurrent sessions from one IP address (0 = unlimited; the listener has its own cap too).
    pub max_connections_per_ip: usize,
    /// New sessions from one IP address per minute (0 = unlimited).
    pub max_connection_rate_per_ip: u32,
    /// Messages accepted in one session before `421 4.7.0` asks the client to reconnect (0 = unlimited).
    pub max_messages_per_session: u32,
    /// Where message content beyond `spool_threshold` waits until delivery (unnamed 0600 files).
    /// The binary sets `<data_dir>/spool`; unset, a `wharf-smtp-spool` directory in the system
    /// temporary directory.
    pub spool_dir: Option<PathBuf>,
    /// Octets of one message kept in memory before the rest goes to the spool.
    pub spool_threshold: usize,
    /// In-memory message content across all sessions sharing `spool_dir`; once used up, new messages
    /// spool from their first octet.
    pub memory_budget: usize,
    /// Spooled (large) messages read back into memory for delivery at once.
    pub max_large_deliveries: usize,
    /// `Received:` fields a message may carry, ours included (RFC 5321 §6.3 loop detection);
    /// past it the message is refused with `554 5.4.6` (0 = no check).
    pub max_received_headers: usize,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            max_message_size: 50 * 1024 * 1024,
            max_recipients: 100,
            max_command_line: 512,
            max_text_line: 1000,
            max_errors: 10,
            bare_lf_policy: BareLfPolicy::Reject,
            greeting_delay_ms: 0,
            idle_timeout_secs: 300,
            allow_plaintext_auth_on_loopback: false,
            enable_vrfy: false,
            max_connections_per_ip: 50,
            max_connection_rate_per_ip: 600,
            max_messages_per_session: 1000,
            spool_dir: None,
            spool_threshold: 256 * 1024,
            memory_budget: 64 * 1024 * 1024,
            max_large_deliveries: 4,
            max_received_headers: 100,
        }
    }
}

impl SmtpConfig {
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }
    pub fn greeting_delay(&self) -> Duration {
        Duration::from_millis(self.greeting_delay_ms)
    }
    pub fn spool_dir(&self) -> PathBuf {
        self.spool_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("wharf-smtp-spool"))
    }
}
