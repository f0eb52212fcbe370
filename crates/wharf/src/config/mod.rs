//! `wharf.toml`: loading, with errors that name the file, line, column and key, and the loaded
//! configuration with its paths resolved. Relative paths in the file are resolved against the
//! file's folder. The schema and its defaults are in `schema`, the semantic checks in `validate`,
//! error positions in `location`, host-name rules in `hostname`.

mod check;
mod hostname;
mod location;
pub mod running;
mod schema;
mod validate;

use std::path::{Path, PathBuf};

pub use check::check;
pub use hostname::{domain_of_host, system_hostname, valid_hostname};
pub use location::ConfigError;
pub use schema::*;

use location::{has_key, key_at, located};

/// A loaded configuration plus where it came from, with paths resolved.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub config: Config,
    pub data_dir: PathBuf,
}

impl Loaded {
    pub fn primary_domain(&self) -> String {
        self.config
            .server
            .primary_domain
            .clone()
            .unwrap_or_else(|| domain_of_host(&self.config.server.hostname))
    }

    pub fn store_url(&self) -> String {
        match &self.config.store.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("wharf.db").display()),
        }
    }

    pub fn blob_dir(&self) -> PathBuf {
        match &self.config.store.blob_dir {
            Some(p) => self.resolve(p),
            None => self.data_dir.join("blobs"),
        }
    }

    /// `[store.s3]`, when the message bodies live in an S3 bucket rather than `blob_dir`.
    pub fn blob_s3(&self) -> Option<wharf_store::blob_s3::S3Config> {
        self.config.store.s3.as_ref().map(S3Section::to_config)
    }

    /// Where the message bodies live, for messages: the folder or `s3://bucket/prefix`.
    pub fn blob_location(&self) -> String {
        match self.blob_s3() {
            Some(s3) => s3.url(),
            None => self.blob_dir().display().to_string(),
        }
    }

    /// Certificate and key paths, and whether they are the generated defaults.
    pub fn tls_paths(&self) -> (PathBuf, PathBuf, bool) {
        let tls = &self.config.tls;
        match (&tls.cert, &tls.key) {
            (None, None) => (
                self.data_dir.join("tls").join("cert.pem"),
                self.data_dir.join("tls").join("key.pem"),
                true,
            ),
            (cert, key) => (
                cert.as_ref()
                    .map(|p| self.resolve(p))
                    .unwrap_or_else(|| self.data_dir.join("tls").join("cert.pem")),
                key.as_ref()
                    .map(|p| self.resolve(p))
                    .unwrap_or_else(|| self.data_dir.join("tls").join("key.pem")),
                false,
            ),
        }
    }

    pub fn listeners(&self) -> Vec<Listener> {
        match &self.config.listeners {
            Some(list) => list.iter().map(ListenerConfig::resolve).collect(),
            None => standard_listeners(default_address()),
        }
    }

    /// A path from the file, resolved against the file's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        resolve_against(&self.path, p)
    }
}

fn resolve_against(config_path: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        config_dir(config_path).join(p)
    }
}

/// The folder holding the config file, absolute when it can be made so.
pub fn config_dir(config_path: &Path) -> PathBuf {
    let parent = config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::path::absolute(&parent).unwrap_or(parent)
}

/// Reads and checks `path`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: None,
        column: None,
        key: None,
        message: format!("cannot read: {e}"),
    })?;
    parse(path, &text)
}

pub fn parse(path: &Path, text: &str) -> Result<Loaded, ConfigError> {
    let config: Config = toml::from_str(text).map_err(|e| {
        let span = e.span();
        let key = span.as_ref().and_then(|s| key_at(text, s.start));
        located(path, text, span, key, e.message().to_string())
    })?;
    let mut config = config;
    // `[limits] max_message_size` is the one knob operators look for; `[smtp]` may still override it.
    if !has_key(text, &["smtp", "max_message_size"]) {
        config.smtp.max_message_size =
            usize::try_from(config.limits.max_message_size).unwrap_or(usize::MAX);
    }
    let data_dir = resolve_against(path, &config.server.data_dir);
    let loaded = Loaded {
        path: path.to_path_buf(),
        config,
        data_dir,
    };
    validate::validate(&loaded, text)?;
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match parse(Path::new("/etc/wharf.toml"), text) {
            Ok(_) => panic!("expected an error for {text:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_give_ten_standard_listeners() {
        let l = parse(Path::new("/x/wharf.toml"), "").expect("empty config is valid");
        let ports: Vec<u16> = l.listeners().iter().map(|l| l.port).collect();
        assert_eq!(ports, vec![25, 587, 465, 143, 993, 110, 995, 80, 443, 4190]);
        let names: Vec<String> = l.listeners().into_iter().map(|l| l.name).collect();
        assert_eq!(names[7..], ["http", "https", "managesieve"]);
        assert_eq!(l.data_dir, PathBuf::from("/x/data"));
        assert_eq!(l.store_url(), "sqlite:///x/data/wharf.db");
        assert_eq!(l.blob_dir(), PathBuf::from("/x/data/blobs"));
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let e = err("[server]\nhostname = \"mail.example.com\"\n\n[limits]\nmax_conections = 5\n");
        assert!(
            e.starts_with("/etc/wharf.toml:5:1: key `limits.max_conections`"),
            "{e}"
        );
        assert!(e.contains("unknown field"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn bad_value_names_line_and_key() {
        let e = err("[limits]\nmax_per_ip = \"many\"\n");
        assert!(
            e.starts_with("/etc/wharf.toml:2:14: key `limits.max_per_ip`"),
            "{e}"
        );
    }

    #[test]
    fn bad_listener_value_names_index() {
        let e = err(
            "[[listener]]\nprotocol = \"imap\"\n[[listener]]\nprotocol = \"gopher\"\nport = 70\n",
        );
        assert!(
            e.starts_with("/etc/wharf.toml:4:12: key `listener[1].protocol`"),
            "{e}"
        );
        let e = err("[[listener]]\nprotocol = \"imap\"\nport = 70000\n");
        assert!(e.contains(":3:8: key `listener[0].port`"), "{e}");
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let e = err("[limits]\nmax_connections = 0\n");
        assert!(
            e.starts_with("/etc/wharf.toml:2:1: key `limits.max_connections`"),
            "{e}"
        );
        let e = err(
            "[[listener]]\nprotocol = \"imap\"\n[[listener]]\nname = \"imap\"\nprotocol = \"pop3\"\n",
        );
        assert!(e.contains(":4:1: key `listener[1].name`"), "{e}");
        let e = err("[server]\nhostname = \"bad host\"\n");
        assert!(e.contains(":2:1: key `server.hostname`"), "{e}");
    }

    #[test]
    fn message_size_limit_reaches_smtp_unless_smtp_sets_it() {
        let l = parse(Path::new("/w.toml"), "[limits]\nmax_message_size = 1000\n").unwrap();
        assert_eq!(l.config.smtp.max_message_size, 1000);
        let l = parse(
            Path::new("/w.toml"),
            "[limits]\nmax_message_size = 1000\n[smtp]\nmax_message_size = 2000\n",
        )
        .unwrap();
        assert_eq!(l.config.smtp.max_message_size, 2000);
        let e = err("[smtp]\nmax_recipeints = 5\n");
        assert!(e.contains(":2:1: key `smtp.max_recipeints`"), "{e}");
        let e = err("[imap]\nbogus = 1\n");
        assert!(e.contains(":2:1: key `imap.bogus`"), "{e}");
        let e = err("[pop3]\nmax_errors = -1\n");
        assert!(e.contains(":2:14: key `pop3.max_errors`"), "{e}");
    }

    #[test]
    fn directory_defaults_match_the_documented_ones() {
        let d = DirectorySection::default();
        assert_eq!(
            (
                d.auth_fail_delay_base,
                d.auth_fail_max_delay,
                d.auth_lockout,
                d.credential_cache_ttl
            ),
            (1, 30, 900, 300)
        );
        assert_eq!(
            (
                d.auth_ip_lockout_after,
                d.auth_account_lockout_after,
                d.min_password_len
            ),
            (10, 20, 10)
        );
    }

    #[test]
    fn outbound_errors_name_the_key() {
        let e = err("[outbound]\nretry_schedule = []\n");
        assert!(e.contains(":2:1: key `outbound.retry_schedule`"), "{e}");
        let e = err("[outbound]\nretry_shedule = [1]\n");
        assert!(e.contains(":2:1: key `outbound.retry_shedule`"), "{e}");
        let e = err("[outbound]\ntls = \"sometimes\"\n");
        assert!(e.contains(":2:7: key `outbound.tls`"), "{e}");
        let e = err("[outbound]\ndane = true\n");
        assert!(e.contains("key `outbound.dane`"), "{e}");
        let e = err("[outbound]\ndns_server = \"localhost\"\n");
        assert!(e.contains("key `outbound.dns_server`"), "{e}");
        let e = err("[outbound.relayhost]\nhost = \"relay.test\"\nusername = \"u\"\n");
        assert!(e.contains("key `outbound.relayhost.password`"), "{e}");
        let e = err("[outbound.relayhost]\nhots = \"relay.test\"\n");
        assert!(e.contains(":2:1: key `outbound.relayhost.hots`"), "{e}");
        let e = err("[outbound]\nmax_connections = 2\nmax_connections_per_domain = 3\n");
        assert!(
            e.contains(":3:1: key `outbound.max_connections_per_domain`"),
            "{e}"
        );
        let l = parse(
            Path::new("/w.toml"),
            "[outbound]\ndns_server = [\"127.0.0.1:53\", \"[::1]:5353\"]\n",
        )
        .unwrap();
        assert_eq!(l.config.outbound.dns_server.0.len(), 2);
    }

    #[test]
    fn http_listeners_and_sections() {
        let l = parse(
            Path::new("/w.toml"),
            "[[listener]]\nprotocol = \"http\"\n[[listener]]\nprotocol = \"http\"\ntls = \"implicit\"\n\
             [http]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\nmetrics = false\n\
             [http.mta_sts]\nmode = \"enforce\"\nmax_age = 86400\nmx = [\"*.example.org\"]\n",
        )
        .unwrap();
        let ls = l.listeners();
        assert_eq!(
            (ls[0].name.as_str(), ls[0].port, ls[0].tls),
            ("http", 80, ListenerTls::None)
        );
        assert_eq!((ls[1].name.as_str(), ls[1].port), ("https", 443));
        assert!(!l.config.http.metrics);
        assert_eq!(l.config.http.mta_sts.mode, wharf_http::MtaStsMode::Enforce);
        assert!(!l.config.acme.enabled);

        let e = err("[[listener]]\nprotocol = \"http\"\ntls = \"starttls\"\n");
        assert!(
            e.contains("key `listener[0].tls`") && e.contains("no STARTTLS"),
            "{e}"
        );
        let e = err("[http]\ntrusted_proxies = [\"10.0.0.0/40\"]\n");
        assert!(e.contains(":2:1: key `http.trusted_proxies`"), "{e}");
        let e = err("[http]\nmetrics_allow = [\"localhost\"]\n");
        assert!(e.contains("key `http.metrics_allow`"), "{e}");
        let e = err("[http]\nmetrcs = true\n");
        assert!(e.contains(":2:1: key `http.metrcs`"), "{e}");
        let e = err("[http.mta_sts]\nmode = \"strict\"\n");
        assert!(e.contains("key `http.mta_sts.mode`"), "{e}");
        let e = err("[http.advertise]\nimapz = 993\n");
        assert!(e.contains(":2:1: key `http.advertise.imapz`"), "{e}");
        let l = parse(
            Path::new("/w.toml"),
            "[http.advertise]\nimaps = 993\npop3 = 0\n",
        )
        .unwrap();
        assert_eq!(l.config.http.advertise.imaps, Some(993));
        assert_eq!(l.config.http.advertise.pop3, Some(0));
        assert_eq!(l.config.http.advertise.imap, None);
        let e = err("[http.mta_sts]\nmax_age = 40000000\n");
        assert!(e.contains("key `http.mta_sts.max_age`"), "{e}");
    }

    #[test]
    fn acme_section() {
        let l = parse(
            Path::new("/w.toml"),
            "[acme]\nenabled = true\ndirectory_url = \"https://127.0.0.1:14000/dir\"\ncontact = \"postmaster@example.org\"\n\
             challenge = \"tls-alpn-01\"\nextra_names = [\"webmail.example.org\"]\nca_file = \"ca.pem\"\nrenew_before = 86400\n",
        )
        .unwrap();
        let a = &l.config.acme;
        assert_eq!(a.challenge, AcmeChallenge::TlsAlpn01);
        assert_eq!(a.renew_before, Some(86400));
        assert_eq!(a.directory_url, "https://127.0.0.1:14000/dir");
        // Off by default, and then nothing about it is checked.
        let l = parse(Path::new("/w.toml"), "[acme]\ndirectory_url = \"x\"\n").unwrap();
        assert!(!l.config.acme.enabled);
        assert_eq!(AcmeSection::default().directory_url, LETS_ENCRYPT);

        let e = err("[acme]\nenabled = true\nchallenge = \"dns-01\"\n");
        assert!(e.contains(":3:13: key `acme.challenge`"), "{e}");
        let e = err("[acme]\nenabled = true\ndirectory_url = \"http://ca.test/dir\"\n");
        assert!(e.contains(":3:1: key `acme.directory_url`"), "{e}");
        let e = err("[acme]\nenabled = true\ncontact = \"nobody\"\n");
        assert!(e.contains("key `acme.contact`"), "{e}");
        let e = err("[acme]\nenabled = true\nrenw_before = 3\n");
        assert!(e.contains(":3:1: key `acme.renw_before`"), "{e}");
        let e = err("[acme]\nenabled = true\n[[listener]]\nprotocol = \"imap\"\n");
        assert!(
            e.contains("key `acme.challenge`") && e.contains("protocol = \"http\""),
            "{e}"
        );
        let e = err("[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n[acme]\nenabled = true\n");
        assert!(e.contains("key `acme.enabled`"), "{e}");
    }

    #[test]
    fn log_level_must_name_a_level() {
        let e = err("[server]\nhostname = \"mail.example.com\"\n[log]\nlevel = \"verbose\"\n");
        assert!(e.starts_with("/etc/wharf.toml:4:1: key `log.level`"), "{e}");
        assert!(e.contains("`verbose` is not a log level"), "{e}");
        let e = err("[log]\nlevel = \"wharf_smtp=loud,info\"\n");
        assert!(e.contains("`loud` is not a log level"), "{e}");
        let e = err("[log]\nlevel = \"\"\n");
        assert!(e.contains("key `log.level`"), "{e}");
        for ok in [
            "info",
            "WARN",
            "wharf_smtp=debug,info",
            "off",
            "wharf::serve=trace",
        ] {
            let text = format!("[log]\nlevel = \"{ok}\"\n");
            assert!(parse(Path::new("/w.toml"), &text).is_ok(), "{ok}");
        }
    }

    #[test]
    fn domain_defaults_from_hostname() {
        assert_eq!(domain_of_host("mail.example.com"), "example.com");
        assert_eq!(domain_of_host("localhost"), "localhost");
        assert_eq!(domain_of_host("host.lan"), "lan");
    }
}
