//! `[pop3]` table of wharf.toml: every limit and policy of the POP3 service, with defaults.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pop3Config {
    /// Allow USER/PASS/AUTH without TLS when the client connects from a loopback address.
    pub allow_plaintext_auth_on_loopback: bool,
    /// Longest command line in octets, CRLF included (RFC 2449 says 255).
    pub max_command_line: usize,
    /// Longest SASL client response line in octets (base64 text, CRLF included).
    pub max_sasl_line: usize,
    /// Protocol errors (unknown commands, bad syntax, over-long lines) tolerated before the
    /// connection is closed.
    pub max_errors: u32,
    /// Largest message RETR/TOP serve (streamed in bounded chunks); larger ones get
    /// `-ERR [SYS/PERM]`.
    pub max_message_size: u64,
    /// Minimum seconds between two logins of one account (RFC 2449 LOGIN-DELAY); 0 = none.
    pub login_delay_secs: u64,
    /// Lifetime of the maildrop lock; the session refreshes it every third of that.
    pub lock_ttl_secs: u64,
    /// Inactivity autologout in seconds (RFC 1939 asks for at least 600).
    pub idle_timeout_secs: u64,
    /// Add `\Seen` at QUIT to messages RETR sent during the session.
    pub mark_retrieved_seen: bool,
}

impl Default for Pop3Config {
    fn default() -> Self {
        Pop3Config {
            allow_plaintext_auth_on_loopback: false,
            max_command_line: 255,
            max_sasl_line: 8192,
            max_errors: 10,
            max_message_size: 256 * 1024 * 1024,
            login_delay_secs: 0,
            lock_ttl_secs: 120,
            idle_timeout_secs: 600,
            mark_retrieved_seen: true,
        }
    }
}
