//! `[managesieve]` table of wharf.toml: every limit and policy of the ManageSieve service, with
//! defaults.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ManageSieveConfig {
    /// Allow AUTHENTICATE without TLS when the client connects from a loopback address.
    pub allow_plaintext_auth_on_loopback: bool,
    /// Longest line of a command in octets, CRLF included (literals not counted: they are
    /// bounded by `max_script_size` and `max_sasl_size`).
    pub max_line: usize,
    /// Largest script in octets: PUTSCRIPT/CHECKSCRIPT literals past it are refused with
    /// `NO (QUOTA/MAXSIZE)` (read and dropped, never buffered), HAVESPACE answers by it.
    pub max_script_size: u64,
    /// Scripts per account (`NO (QUOTA/MAXSCRIPTS)` past it).
    pub max_scripts: u32,
    /// Largest SASL message a client may send as a literal (AUTHENTICATE).
    pub max_sasl_size: usize,
    /// Protocol errors (unknown commands, bad syntax, over-long lines, failed logins) tolerated
    /// before the connection is closed with BYE.
    pub max_errors: u32,
    /// Inactivity logout before authentication, in seconds.
    pub idle_timeout_unauth_secs: u64,
    /// Inactivity logout once authenticated, in seconds.
    pub idle_timeout_secs: u64,
    /// Announced as MAXREDIRECTS: redirect actions one script may run.
    pub max_redirects: u32,
    /// SASL mechanisms of the directory not offered here; asking for one answers
    /// `NO (AUTH-TOO-WEAK)`.
    pub disabled_mechanisms: Vec<String>,
}

impl Default for ManageSieveConfig {
    fn default() -> Self {
        ManageSieveConfig {
            allow_plaintext_auth_on_loopback: false,
            max_line: 8192,
            max_script_size: 64 * 1024,
            max_scripts: 32,
            max_sasl_size: 16 * 1024,
            max_errors: 10,
            idle_timeout_unauth_secs: 60,
            idle_timeout_secs: 30 * 60,
            max_redirects: 4,
            disabled_mechanisms: Vec::new(),
        }
    }
}
