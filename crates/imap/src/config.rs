//! `[imap]` table of wharf.toml: every limit and policy of the IMAP service, with defaults.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImapConfig {
    /// Allow LOGIN/AUTHENTICATE without TLS when the client connects from a loopback address.
    pub allow_plaintext_auth_on_loopback: bool,
    /// Longest command line in octets (literals not counted), CRLF included.
    pub max_line: usize,
    /// Largest literal accepted in a command other than APPEND (strings, SASL data).
    pub max_literal: u64,
    /// Largest message APPEND accepts, in octets.
    pub max_append: u64,
    /// APPEND messages larger than this wait in a temp file, not in memory, until stored.
    pub literal_spool_threshold: u64,
    /// Octets of APPEND messages all sessions together may hold in memory; beyond it they spool.
    pub literal_memory_budget: u64,
    /// Octets of APPEND messages all sessions together may hold while storing them: spooled
    /// literals read back from their files, and what CATENATE's URLs gather (reserved as
    /// `max_append` each, their size being unknown until read). Never less than `max_append`.
    pub store_memory_budget: u64,
    /// How long an APPEND waits for room in `store_memory_budget` before it answers
    /// `NO [LIMIT]`, in milliseconds.
    pub store_memory_wait_ms: u64,
    /// Directory of the APPEND spool files (default: `wharf-imap-spool` in the system temp dir).
    pub spool_dir: Option<PathBuf>,
    /// Protocol errors in a row (BAD replies) tolerated before the connection is closed with BYE.
    pub max_bad_commands: u32,
    /// Inactivity autologout in seconds before login (RFC 9051 asks for at least 30 minutes after).
    pub idle_timeout_unauth_secs: u64,
    /// Inactivity autologout in seconds once authenticated (IDLE included).
    pub idle_timeout_secs: u64,
    /// Sessions that may use COMPRESS=DEFLATE at once (each holds some 300 KiB of compressor
    /// state); past it COMPRESS answers NO [LIMIT] and the session goes on uncompressed.
    pub max_compressed_sessions: usize,
    /// METADATA (RFC 5464): octets of one entry's value (capped by `max_literal` too).
    pub metadata_max_value: u64,
    /// METADATA entries of one mailbox (or of the server) of one account.
    pub metadata_max_entries_per_mailbox: u64,
    /// METADATA entries of one account, every mailbox and the server together.
    pub metadata_max_entries: u64,
    /// Octets of one account's METADATA entries (names and values) together.
    pub metadata_max_bytes: u64,
    /// The server entry `/shared/admin` (RFC 5464 §3.2.1), read-only: a URI for reaching the
    /// administrator, such as `mailto:postmaster@example.org`. Unset: no such entry.
    pub metadata_admin: Option<String>,
    /// The account (`user@domain`) whose mailboxes form the "Shared/" namespace (RFC 2342 public
    /// folders); each is visible to the accounts its ACL grants rights to. Unset: no such
    /// namespace.
    pub shared_account: Option<String>,
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            allow_plaintext_auth_on_loopback: false,
            max_line: 64 * 1024,
            max_literal: 64 * 1024,
            max_append: 64 * 1024 * 1024,
            literal_spool_threshold: 256 * 1024,
            literal_memory_budget: 32 * 1024 * 1024,
            store_memory_budget: 256 * 1024 * 1024,
            store_memory_wait_ms: 30_000,
            spool_dir: None,
            max_bad_commands: 10,
            idle_timeout_unauth_secs: 60,
            idle_timeout_secs: 30 * 60,
            max_compressed_sessions: 1000,
            metadata_max_value: 64 * 1024,
            metadata_max_entries_per_mailbox: 100,
            metadata_max_entries: 1000,
            metadata_max_bytes: 1024 * 1024,
            metadata_admin: None,
            shared_account: None,
        }
    }
}

impl ImapConfig {
    /// Where APPEND messages are spooled.
    pub fn spool_dir(&self) -> PathBuf {
        self.spool_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("wharf-imap-spool"))
    }

    /// The METADATA bounds the store enforces. A value also has to fit in one literal.
    pub fn metadata_limits(&self) -> wharf_store::MetadataLimits {
        wharf_store::MetadataLimits {
            max_value: self.metadata_max_value.min(self.max_literal),
            max_entries_per_mailbox: self.metadata_max_entries_per_mailbox,
            max_entries: self.metadata_max_entries,
            max_bytes: self.metadata_max_bytes,
        }
    }
}
