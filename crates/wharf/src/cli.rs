//! The command line: verbs, their arguments, and the global `--config` option (clap derive).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "wharf",
    version,
    about = "Wharf: an all-in-one mail server (SMTP, submission, IMAP, POP3) in one binary"
)]
pub struct Cli {
    /// Configuration file; `serve` creates it (and a data folder beside it) when missing.
    /// Default: $WHARF_CONFIG, else ./wharf.toml if it exists, else /etc/wharf/wharf.toml if it
    /// exists, else ./wharf.toml.
    #[arg(long, global = true, value_name = "PATH", env = "WHARF_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (creates wharf.toml, data/ and an admin account on first run).
    Serve(ServeArgs),
    /// Manage mail domains.
    #[command(subcommand)]
    Domain(DomainCmd),
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCmd),
    /// Manage aliases (one-to-one, lists, catch-all `@domain`).
    #[command(subcommand)]
    Alias(AliasCmd),
    /// Inspect mailboxes.
    #[command(subcommand)]
    Mailbox(MailboxCmd),
    /// Import a Maildir (with Maildir++ subfolders) or an mbox file into an account.
    Import(ImportArgs),
    /// DKIM signing keys for outbound mail.
    #[command(subcommand)]
    Dkim(DkimCmd),
    /// Inspect and act on the outbound queue.
    #[command(subcommand)]
    Queue(QueueCmd),
    /// API tokens of the admin REST API (`/api/v1`, docs/api.md).
    #[command(subcommand)]
    Token(TokenCmd),
    /// DMARC and TLS-RPT aggregate reports other servers sent about our domains.
    #[command(subcommand)]
    Report(ReportCmd),
    /// The nodes serving this store (`wharf serve` processes).
    #[command(subcommand)]
    Node(NodeCmd),
    /// Copy the embedded store to PostgreSQL (and its blobs to another folder or S3), ids and all,
    /// verified by counts and hashes; resumable. Stop the server first.
    Migrate {
        /// The PostgreSQL database, `postgres://user@host/db`.
        #[arg(long)]
        to: String,
        /// Copy the message bodies too: into this folder (the shared blob folder of the nodes)
        /// or, as `s3://bucket/prefix`, into an S3 bucket (endpoint, region and credentials from
        /// `[store.s3]` of the config, else the AWS_* environment variables).
        #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
        blobs_to: Option<String>,
    },
    /// Users' Sieve scripts: the filters run at delivery (also over ManageSieve, port 4190).
    #[command(subcommand)]
    Sieve(SieveCmd),
    /// Out-of-office replies for a user (written as the user's Sieve script).
    #[command(subcommand)]
    Vacation(VacationCmd),
    /// Forward a user's mail to another address (written as the user's Sieve script).
    #[command(subcommand)]
    Forward(ForwardCmd),
    /// The spam filter: train its classifier from folders of mail, and its allow/block lists.
    #[command(subcommand)]
    Spam(SpamCmd),
    /// Print every DNS record DOMAIN needs, as zone-file lines.
    Dns { domain: String },
    /// Check listeners, certificate and DNS from this server's point of view; exit 1 on any ✘.
    Doctor(DoctorArgs),
    /// The configuration file itself.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Online backup of the store into DIR (new or empty) while the server runs: a consistent
    /// SQLite snapshot, every message body it names, the data folder's dkim/, acme/ and tls/,
    /// and manifest.json (SHA-256s, counts). Not wharf.toml. SQLite stores only.
    Backup { dir: PathBuf },
    /// Restore a backup from DIR into the fresh (empty) data folder the configuration names,
    /// after checking its manifest and every hash; refuses a store that holds data.
    Restore { dir: PathBuf },
    /// Rebuild the search text of ACCOUNT's messages (every account's without one): text folded
    /// again and the text of PDF and office attachments extracted again (docs/store.md).
    Reindex { account: Option<String> },
    /// Internal: read a PDF on standard input and write its text (the server's search helper,
    /// run as a limited child process).
    #[command(hide = true)]
    ExtractPdf {
        #[arg(long, default_value_t = 1024 * 1024)]
        max_text: usize,
        #[arg(long, default_value_t = 2000)]
        budget_ms: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Check the file as `serve` would before binding (keys, listeners, TLS files, [sieve]
    /// scripts, data folder) without starting anything; errors read `file:line:col: message`.
    Check,
}

/// The system-wide configuration file, used when there is no ./wharf.toml.
pub const SYSTEM_CONFIG: &str = "/etc/wharf/wharf.toml";

impl Cli {
    /// `--config` (or `WHARF_CONFIG`), else ./wharf.toml if it exists, else
    /// /etc/wharf/wharf.toml if it exists, else ./wharf.toml (which `serve` creates).
    pub fn config_path(&self) -> PathBuf {
        config_search(self.config.as_deref(), &|p| p.exists())
    }
}

pub fn config_search(given: Option<&Path>, exists: &dyn Fn(&Path) -> bool) -> PathBuf {
    if let Some(p) = given {
        return p.to_path_buf();
    }
    let local = Path::new("wharf.toml");
    if exists(local) {
        return local.to_path_buf();
    }
    let system = Path::new(SYSTEM_CONFIG);
    if exists(system) {
        return system.to_path_buf();
    }
    local.to_path_buf()
}

#[derive(Debug, Subcommand)]
pub enum SieveCmd {
    /// The user's scripts; the active one is marked.
    List { user: String },
    /// Print a script.
    Get { user: String, name: String },
    /// Store a script from FILE (`-` reads standard input) after checking it.
    Put {
        user: String,
        name: String,
        file: PathBuf,
        /// Make it the active script.
        #[arg(long)]
        activate: bool,
    },
    /// Make NAME the user's active script.
    Activate { user: String, name: String },
    /// Run no script for the user.
    Deactivate { user: String },
    /// Delete a script (not the active one).
    Delete { user: String, name: String },
    /// Check a script file; errors name line and column.
    Check { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum VacationCmd {
    /// Turn on the out-of-office reply.
    Set {
        address: String,
        #[arg(long)]
        subject: Option<String>,
        /// The reply text (UTF-8); `-` reads standard input.
        #[arg(long, value_name = "FILE")]
        body_file: PathBuf,
        /// The reply's From (one of the user's addresses).
        #[arg(long)]
        from: Option<String>,
        /// Last day replies are sent, YYYY-MM-DD.
        #[arg(long)]
        until: Option<String>,
        /// Days between two replies to the same sender.
        #[arg(long, default_value_t = 7)]
        days: u32,
    },
    /// Turn it off.
    Clear { address: String },
    /// Show what is set.
    Show { address: String },
}

#[derive(Debug, Subcommand)]
pub enum SpamCmd {
    /// Train the classifier (ACCOUNT's model and the global one) with mail known to be spam or
    /// ham: message files, folders of them (Maildir included) and mbox files, or one of the
    /// account's mailboxes.
    Train {
        /// The account whose model learns.
        #[arg(long)]
        account: String,
        /// The mail is spam.
        #[arg(long, conflicts_with = "ham", required_unless_present = "ham")]
        spam: bool,
        /// The mail is ham (wanted mail).
        #[arg(long)]
        ham: bool,
        /// Train from this mailbox of the account instead of files.
        #[arg(long, conflicts_with = "paths")]
        mailbox: Option<String>,
        /// Message files, folders and mbox files.
        #[arg(required_unless_present = "mailbox")]
        paths: Vec<PathBuf>,
    },
    /// Always accept mail from ENTRY (an address, `@domain` or `domain`) for SCOPE (a domain
    /// for all its users, or one account's address).
    Allow { scope: String, entry: String },
    /// Always file mail from ENTRY into Junk for SCOPE.
    Block { scope: String, entry: String },
    /// Remove ENTRY from SCOPE's allow or block list.
    Unlist { scope: String, entry: String },
    /// Show the allow and block lists (of SCOPE only, when given).
    Lists { scope: Option<String> },
}

#[derive(Debug, Subcommand)]
pub enum ForwardCmd {
    /// Forward all of ADDRESS's mail to TARGET.
    Set {
        address: String,
        target: String,
        /// Keep a copy in the mailbox too.
        #[arg(long)]
        keep: bool,
    },
    /// Stop forwarding.
    Clear { address: String },
}

#[derive(Debug, Subcommand)]
pub enum QueueCmd {
    /// Every queued message: id, size, age, sender, attempts, next attempt, pending recipients.
    List,
    /// One entry with each recipient's state and last reply.
    Show {
        id: String,
        /// Also print the queued message itself.
        #[arg(long)]
        message: bool,
    },
    /// Make an entry (or every entry) due now.
    Retry {
        id: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Delete an entry without sending any DSN.
    Drop { id: String },
}

#[derive(Debug, Subcommand)]
pub enum NodeCmd {
    /// Each node: generated id (its outbound lease owner), host, pid, version, uptime, last
    /// heartbeat, and whether it is still running.
    List,
}

#[derive(Debug, Subcommand)]
pub enum ReportCmd {
    /// Every report found in the mailbox: kind, sender, id, domain, period, counts.
    List {
        /// Whose INBOX to read; default the account postmaster@<primary_domain> reaches (where
        /// the rua= of `wharf dns` sends reports).
        #[arg(long)]
        account: Option<String>,
    },
    /// One report, row by row: source address, count, disposition, DKIM, SPF.
    Show {
        /// The report id `list` prints.
        id: String,
        #[arg(long)]
        account: Option<String>,
    },
    /// Make and queue the DMARC aggregate and TLS-RPT reports of one UTC day now (the server
    /// sends each finished day's on its own once `[reports]` enables them). A report already
    /// sent for that day is not sent again.
    Send {
        /// `YYYY-MM-DD` or `today` (counts so far; the server adds the rest to no report).
        #[arg(long, default_value = "yesterday")]
        day: String,
        /// Also write each report's document (XML, JSON) into this folder.
        #[arg(long)]
        save: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// DNS server to ask (default: outbound.dns_server, else /etc/resolv.conf).
    #[arg(long, value_name = "ADDR:PORT")]
    pub resolver: Option<std::net::SocketAddr>,
    /// Check only this domain (default: every configured domain).
    #[arg(long)]
    pub domain: Option<String>,
    /// The N given to `wharf serve --port-offset`: listeners are reached at their port + N,
    /// while DNS is still expected to advertise the configured ports.
    #[arg(long, value_name = "N")]
    pub port_offset: Option<u16>,
}

#[derive(Debug, Subcommand)]
pub enum DkimCmd {
    /// Create a signing key for DOMAIN (stored in the store, sealed with the node-state key) and
    /// print its DNS TXT record.
    Generate {
        domain: String,
        /// Selector (default: YYYYMM plus `e` for Ed25519 or `r` for RSA, e.g. 202611e).
        #[arg(long)]
        selector: Option<String>,
        #[arg(long, value_enum, default_value = "ed25519")]
        algo: DkimAlgo,
    },
    /// Remove DOMAIN's key SELECTOR from the store; running servers stop signing with it at their
    /// next reload. Remove its DNS record only after that, once mail signed with it has arrived.
    Delete { domain: String, selector: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DkimAlgo {
    Ed25519,
    Rsa,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Host name (greetings, certificate). Written into a new config; overrides an existing one.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Primary mail domain (default: the host name without its first label).
    #[arg(long)]
    pub domain: Option<String>,
    /// Adds N to every listener port (e.g. 10000: 25 → 10025) for this run; ports set to 0 stay 0.
    #[arg(long, value_name = "N")]
    pub port_offset: Option<u16>,
    /// Address every listener binds to (written into a new config; overrides an existing one).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<IpAddr>,
}

#[derive(Debug, Subcommand)]
pub enum DomainCmd {
    /// Add a local mail domain.
    Add { name: String },
    /// Delete a domain (it must have no accounts or aliases left).
    Del { name: String },
    /// List the local domains.
    List,
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Add an account; without --password-stdin a random password is generated and printed.
    Add {
        address: String,
        /// Read the password from standard input (one line).
        #[arg(long)]
        password_stdin: bool,
        /// Storage quota, e.g. 500M, 2G (0 = unlimited).
        #[arg(long, value_name = "SIZE")]
        quota: Option<String>,
    },
    /// Change an account's password; without --password-stdin a random one is generated and printed.
    Passwd {
        address: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete an account with all its mail.
    Del { address: String },
    /// Refuse logins and mail for an account, keeping its mail.
    Disable { address: String },
    /// Undo `disable`.
    Enable { address: String },
    /// List accounts.
    List {
        /// Only accounts of this domain.
        #[arg(long)]
        domain: Option<String>,
    },
    /// Show an account's quota and usage, or set the quota (e.g. 1G, 0 = unlimited).
    Quota {
        address: String,
        #[arg(value_name = "SIZE")]
        size: Option<String>,
    },
    /// Give (--on) or take (--off) the admin role: the account may then use the admin REST API
    /// with its password. Without a flag, shows whether it has it.
    Admin {
        address: String,
        #[arg(long, conflicts_with = "off")]
        on: bool,
        #[arg(long)]
        off: bool,
    },
    /// An account's app passwords: per-device secrets IMAP, POP3 and SMTP AUTH accept in place
    /// of the account password.
    #[command(subcommand)]
    AppPassword(AppPasswordCmd),
}

#[derive(Debug, Subcommand)]
pub enum AppPasswordCmd {
    /// Create one for a device and print its secret (shown only this once).
    Add {
        address: String,
        /// The device or program it is for, e.g. "phone".
        label: String,
    },
    /// List an account's app passwords: id, label, created, last used.
    List { address: String },
    /// Revoke one by its id (from `list`): refused at once.
    Revoke { address: String, id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create a token and print its secret (shown only this once).
    Create {
        name: String,
        /// Comma-separated scopes: `read` (GET requests), `write` (every request).
        #[arg(long, value_name = "SCOPES", default_value = "read")]
        scope: String,
        /// The token stops working after this many days (default: never).
        #[arg(long, value_name = "DAYS")]
        expires_days: Option<u32>,
    },
    /// Every token: id, name, scopes, created, expires, last used (never the secret).
    List,
    /// Delete a token; requests with it are refused at once.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum AliasCmd {
    /// Deliver mail for ADDRESS (`local@domain` or `@domain` for a catch-all) to TARGET.
    Add { address: String, target: String },
    /// Remove one target of an alias, or every target when none is given.
    Del {
        address: String,
        target: Option<String>,
    },
    /// List aliases.
    List,
}

#[derive(Debug, Subcommand)]
pub enum MailboxCmd {
    /// List the mailboxes of an account with their counts.
    List { user: String },
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Account address to import into.
    pub user: String,
    /// A Maildir (folder with cur/ and new/) or an mbox file.
    pub path: PathBuf,
    /// Mailbox receiving the Maildir's top folder or the mbox (default INBOX).
    #[arg(long)]
    pub mailbox: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_search_order() {
        let none = |_: &Path| false;
        let all = |_: &Path| true;
        let only_system = |p: &Path| p == Path::new(SYSTEM_CONFIG);
        let given = Path::new("/srv/w.toml");
        assert_eq!(config_search(Some(given), &all), given);
        assert_eq!(config_search(None, &all), Path::new("wharf.toml"));
        assert_eq!(config_search(None, &only_system), Path::new(SYSTEM_CONFIG));
        assert_eq!(config_search(None, &none), Path::new("wharf.toml"));
    }
}
