//! The heuristic rules: their names, default weights, and the tests that fire them. Rules look
//! at the parse-once [`Analysis`] and at facts the caller gathered (authentication verdicts,
//! allow/block lists, whether the recipient wrote to the sender, the sender domain's reputation,
//! the classifier's probability). Every rule is pure; [`run`] returns the hits with weights,
//! where a weight from [`Weights`] (config overrides, else [`RULES`]) replaces the default.

use std::collections::HashMap;

use crate::analysis::{Analysis, domain_of, registered_domain, url_host};

/// A rule's name, default weight, and meaning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleDef {
    pub name: &'static str,
    pub weight: f64,
    pub description: &'static str,
}

macro_rules! rules {
    ($($name:ident = $weight:expr, $desc:expr;)*) => {
        /// Names of the built-in rules.
        pub mod names { $(pub const $name: &str = stringify!($name);)* }
        /// Every built-in rule with its default weight.
        pub const RULES: &[RuleDef] = &[
            $(RuleDef { name: stringify!($name), weight: $weight, description: $desc },)*
        ];
    };
}

rules! {
    MISSING_MID = 1.0, "no Message-ID header";
    MISSING_DATE = 1.0, "no Date header";
    MISSING_FROM = 1.5, "no From header (or no address in it)";
    MISSING_SUBJECT = 0.5, "no or empty Subject";
    HTML_ONLY = 0.7, "HTML body without a plain-text alternative";
    HTML_HIDDEN_TEXT = 2.0, "at least 10% of the HTML text is hidden from the reader";
    URL_DISPLAY_MISMATCH = 2.5, "a link shows one domain and points to another";
    EXE_ATTACHMENT = 4.0, "an executable or script attachment";
    FROM_DISPLAY_ADDR_MISMATCH = 2.0, "From display name holds an address of another domain";
    FORGED_LOCAL_SENDER = 3.0, "From claims a local domain but DMARC did not pass";
    SUBJ_ENCODED_ASCII = 0.5, "Subject is MIME-encoded but plain ASCII";
    SUBJ_ALL_CAPS = 0.5, "Subject is all capitals";
    MIXED_SCRIPT = 1.5, "a word in Subject or From name mixes Latin with Cyrillic or Greek";
    MIME_BAD_ENCODING = 0.5, "a body part's transfer encoding is broken";
    SPF_PASS = -0.1, "SPF pass";
    SPF_FAIL = 1.0, "SPF fail";
    SPF_SOFTFAIL = 0.5, "SPF softfail";
    DKIM_VALID = -0.1, "a DKIM signature verified";
    DKIM_INVALID = 0.5, "DKIM signatures present, none verified";
    DMARC_PASS = -0.2, "DMARC pass";
    DMARC_FAIL_REJECT = 4.0, "DMARC fail, domain policy reject";
    DMARC_FAIL_QUARANTINE = 2.5, "DMARC fail, domain policy quarantine";
    DMARC_FAIL_NONE = 0.5, "DMARC fail, domain policy none";
    ARC_FAIL = 0.5, "ARC chain failed";
    IPREV_FAIL = 1.0, "client IP has no matching reverse DNS";
    ALLOWLIST_USER = -20.0, "authenticated sender on the recipient's allow list";
    BLOCKLIST_USER = 10.0, "sender on the recipient's block list";
    ALLOWLIST_DOMAIN = -20.0, "authenticated sender on the recipient domain's allow list";
    BLOCKLIST_DOMAIN = 10.0, "sender on the recipient domain's block list";
    KNOWN_CORRESPONDENT = -3.0, "authenticated sender the recipient has written to";
    KNOWN_CORRESPONDENT_UNVERIFIED = -1.0, "unauthenticated sender the recipient has written to";
    SENDER_REP_SPAM = 3.0, "sender domain mostly sent spam (weight is the maximum)";
    SENDER_REP_HAM = -3.0, "sender domain mostly sent ham (weight is the maximum)";
    BAYES_00 = -1.5, "classifier: spam probability < 1%";
    BAYES_05 = -0.5, "classifier: spam probability 1–5%";
    BAYES_80 = 3.0, "classifier: spam probability 80–95%";
    BAYES_95 = 6.0, "classifier: spam probability 95–99%";
    BAYES_99 = 6.5, "classifier: spam probability 99–99.9%";
    BAYES_999 = 7.0, "classifier: spam probability ≥ 99.9%";
}

/// Rule weights: config overrides over the built-in defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Weights {
    pub overrides: HashMap<String, f64>,
}

impl Weights {
    /// The weight of `name`: override, else default, else 0.
    pub fn get(&self, name: &str) -> f64 {
        if let Some(w) = self.overrides.get(name) {
            return *w;
        }
        RULES
            .iter()
            .find(|r| r.name == name)
            .map_or(0.0, |r| r.weight)
    }
}

/// A fired rule and the weight it adds.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub name: String,
    pub weight: f64,
}

/// Result of one authentication method, as the inbound checks report it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthResult {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    /// Not checked, or nothing to check (no record / no signature).
    #[default]
    None,
    TempError,
    PermError,
}

/// The policy a failing DMARC domain published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DmarcPolicy {
    #[default]
    None,
    Quarantine,
    Reject,
}

/// The inbound authentication verdicts of one message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthVerdicts {
    pub spf: AuthResult,
    /// `Pass` if any signature verified, `Fail` if signatures were present and none verified.
    pub dkim: AuthResult,
    /// The `d=` domains of the signatures that verified.
    pub dkim_pass_domains: Vec<String>,
    pub dmarc: AuthResult,
    pub dmarc_policy: DmarcPolicy,
    pub arc: AuthResult,
    pub iprev: AuthResult,
}

/// Allow and block list entries: `user@domain` (one address), or `domain` / `@domain` (that
/// domain and its subdomains). Matched case-insensitively against the From address and the
/// envelope sender.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct SenderLists {
    pub allow: Vec<String>,
    pub block: Vec<String>,
}

/// Past verdicts for the sender's (authenticated) domain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reputation {
    pub ham: u32,
    pub spam: u32,
}

/// Everything the rules look at for one message and one recipient.
#[derive(Debug, Clone, Copy)]
pub struct RuleInput<'a> {
    pub analysis: &'a Analysis,
    pub auth: &'a AuthVerdicts,
    /// The SMTP MAIL FROM address (empty for bounces).
    pub envelope_from: &'a str,
    /// Domains this server hosts.
    pub local_domains: &'a [String],
    /// The recipient domain's lists (set by the admin).
    pub domain_lists: &'a SenderLists,
    /// The recipient's own lists.
    pub user_lists: &'a SenderLists,
    /// The recipient has sent mail to the From address.
    pub known_correspondent: bool,
    pub reputation: Option<Reputation>,
    /// The classifier's spam probability, if it had enough training.
    pub bayes_probability: Option<f64>,
}

/// Runs every rule, returning the hits in a stable order.
pub fn run(input: &RuleInput<'_>, weights: &Weights) -> Vec<Hit> {
    use names::*;
    let mut hits: Vec<Hit> = Vec::new();
    let mut fire = |name: &str| {
        hits.push(Hit {
            name: name.to_string(),
            weight: weights.get(name),
        });
    };
    let a = input.analysis;
    // Headers.
    if !a.has_message_id {
        fire(MISSING_MID);
    }
    if !a.has_date {
        fire(MISSING_DATE);
    }
    if a.from_address.is_none() {
        fire(MISSING_FROM);
    }
    if a.subject.as_deref().is_none_or(|s| s.trim().is_empty()) {
        fire(MISSING_SUBJECT);
    }
    if subject_encoded_ascii(a) {
        fire(SUBJ_ENCODED_ASCII);
    }
    if a.subject.as_deref().is_some_and(all_caps) {
        fire(SUBJ_ALL_CAPS);
    }
    if [a.subject.as_deref(), a.from_name.as_deref()]
        .into_iter()
        .flatten()
        .any(has_mixed_script_word)
    {
        fire(MIXED_SCRIPT);
    }
    if from_display_mismatch(a) {
        fire(FROM_DISPLAY_ADDR_MISMATCH);
    }
    let from_domain = a.from_domain();
    if let Some(d) = from_domain
        && input.auth.dmarc != AuthResult::Pass
        && input
            .local_domains
            .iter()
            .any(|l| l.eq_ignore_ascii_case(d))
    {
        fire(FORGED_LOCAL_SENDER);
    }
    // Body.
    if a.has_html_part && !a.has_text_part {
        fire(HTML_ONLY);
    }
    if hidden_text(a) {
        fire(HTML_HIDDEN_TEXT);
    }
    if a.urls.iter().any(url_display_mismatch) {
        fire(URL_DISPLAY_MISMATCH);
    }
    if a.attachments.iter().any(is_executable) {
        fire(EXE_ATTACHMENT);
    }
    if a.encoding_problem {
        fire(MIME_BAD_ENCODING);
    }
    // Authentication.
    match input.auth.spf {
        AuthResult::Pass => fire(SPF_PASS),
        AuthResult::Fail => fire(SPF_FAIL),
        AuthResult::SoftFail => fire(SPF_SOFTFAIL),
        _ => {}
    }
    match input.auth.dkim {
        AuthResult::Pass => fire(DKIM_VALID),
        AuthResult::Fail | AuthResult::PermError => fire(DKIM_INVALID),
        _ => {}
    }
    match (input.auth.dmarc, input.auth.dmarc_policy) {
        (AuthResult::Pass, _) => fire(DMARC_PASS),
        (AuthResult::Fail, DmarcPolicy::Reject) => fire(DMARC_FAIL_REJECT),
        (AuthResult::Fail, DmarcPolicy::Quarantine) => fire(DMARC_FAIL_QUARANTINE),
        (AuthResult::Fail, DmarcPolicy::None) => fire(DMARC_FAIL_NONE),
        _ => {}
    }
    if input.auth.arc == AuthResult::Fail {
        fire(ARC_FAIL);
    }
    if matches!(input.auth.iprev, AuthResult::Fail | AuthResult::PermError) {
        fire(IPREV_FAIL);
    }
    // Lists: the user's own lists take precedence over the domain's.
    let authenticated = sender_authenticated(input);
    let senders: Vec<&str> = a
        .from_address
        .as_deref()
        .into_iter()
        .chain(Some(input.envelope_from).filter(|s| !s.is_empty()))
        .collect();
    let on = |list: &[String]| {
        senders
            .iter()
            .any(|s| list.iter().any(|e| list_entry_matches(e, s)))
    };
    let mut user_listed = false;
    if on(&input.user_lists.block) {
        fire(BLOCKLIST_USER);
        user_listed = true;
    } else if authenticated && on(&input.user_lists.allow) {
        fire(ALLOWLIST_USER);
        user_listed = true;
    }
    if !user_listed {
        if on(&input.domain_lists.block) {
            fire(BLOCKLIST_DOMAIN);
        } else if authenticated && on(&input.domain_lists.allow) {
            fire(ALLOWLIST_DOMAIN);
        }
    }
    if input.known_correspondent {
        fire(if authenticated {
            KNOWN_CORRESPONDENT
        } else {
            KNOWN_CORRESPONDENT_UNVERIFIED
        });
    }
    // Reputation: weight scales with how one-sided and how long the history is.
    if let Some(rep) = input.reputation {
        let n = f64::from(rep.ham) + f64::from(rep.spam);
        if n >= 5.0 {
            let r = (f64::from(rep.spam) - f64::from(rep.ham)) / (n + 5.0);
            if r > 0.2 {
                let max = weights.get(SENDER_REP_SPAM).abs();
                hits.push(Hit {
                    name: SENDER_REP_SPAM.to_string(),
                    weight: round1(r * max),
                });
            } else if r < -0.2 {
                let max = weights.get(SENDER_REP_HAM).abs();
                hits.push(Hit {
                    name: SENDER_REP_HAM.to_string(),
                    weight: round1(r * max),
                });
            }
        }
    }
    if let Some(p) = input.bayes_probability
        && let Some(name) = bayes_rule(p)
    {
        hits.push(Hit {
            name: name.to_string(),
            weight: weights.get(name),
        });
    }
    hits
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The BAYES_xx rule for a probability (none between 5% and 80%).
pub fn bayes_rule(p: f64) -> Option<&'static str> {
    use names::*;
    Some(match p {
        p if p < 0.01 => BAYES_00,
        p if p < 0.05 => BAYES_05,
        p if p < 0.80 => return None,
        p if p < 0.95 => BAYES_80,
        p if p < 0.99 => BAYES_95,
        p if p < 0.999 => BAYES_99,
        _ => BAYES_999,
    })
}

/// Whether the From domain is vouched for: see [`authenticated_sender_domain`].
pub fn sender_authenticated(input: &RuleInput<'_>) -> bool {
    authenticated_sender_domain(input.analysis, input.auth, input.envelope_from).is_some()
}

/// The From address's registered domain when it is vouched for — DMARC pass, an aligned SPF
/// pass (envelope sender in the same registered domain), or a verified DKIM signature of the
/// same registered domain — else `None`. Key per-sender-domain reputation on this, so forged
/// mail cannot spend or spoil a domain's reputation.
pub fn authenticated_sender_domain(
    analysis: &Analysis,
    auth: &AuthVerdicts,
    envelope_from: &str,
) -> Option<String> {
    let from = registered_domain(analysis.from_domain()?).to_string();
    let aligned = |d: &str| registered_domain(&d.to_ascii_lowercase()) == from;
    let vouched = auth.dmarc == AuthResult::Pass
        || (auth.spf == AuthResult::Pass && domain_of(envelope_from).is_some_and(aligned))
        || (auth.dkim == AuthResult::Pass && auth.dkim_pass_domains.iter().any(|d| aligned(d)));
    vouched.then_some(from)
}

/// Whether a list entry (`user@domain`, `@domain` or `domain`) matches an address.
pub fn list_entry_matches(entry: &str, address: &str) -> bool {
    let entry = entry.trim().trim_start_matches('@');
    if entry.is_empty() {
        return false;
    }
    if entry.contains('@') {
        return entry.eq_ignore_ascii_case(address);
    }
    let Some(domain) = domain_of(address) else {
        return false;
    };
    let domain = domain.to_ascii_lowercase();
    let entry = entry.to_ascii_lowercase();
    domain == entry
        || domain
            .strip_suffix(&entry)
            .is_some_and(|head| head.ends_with('.'))
}

fn subject_encoded_ascii(a: &Analysis) -> bool {
    let (Some(raw), Some(subject)) = (&a.subject_raw, &a.subject) else {
        return false;
    };
    raw.contains("=?") && raw.contains("?=") && !subject.is_empty() && subject.is_ascii()
}

fn all_caps(subject: &str) -> bool {
    let letters = subject.chars().filter(|c| c.is_alphabetic()).count();
    letters >= 10 && !subject.chars().any(char::is_lowercase)
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Script {
    Latin,
    CyrillicOrGreek,
    Other,
}

fn script(c: char) -> Script {
    match c as u32 {
        0x41..=0x5a | 0x61..=0x7a | 0xc0..=0x24f => Script::Latin,
        0x370..=0x52f => Script::CyrillicOrGreek, // Greek, Cyrillic
        _ => Script::Other,
    }
}

fn has_mixed_script_word(text: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric()).any(|w| {
        let mut latin = false;
        let mut other = false;
        for c in w.chars() {
            match script(c) {
                Script::Latin => latin = true,
                Script::CyrillicOrGreek => other = true,
                Script::Other => {}
            }
        }
        latin && other
    })
}

fn from_display_mismatch(a: &Analysis) -> bool {
    let (Some(name), Some(from)) = (&a.from_name, a.from_domain()) else {
        return false;
    };
    let from = registered_domain(from);
    name.split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '(' | ')' | ','))
        .filter_map(|w| {
            let (local, domain) = w.rsplit_once('@')?;
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            (!local.is_empty() && domain.contains('.')).then_some(domain)
        })
        .any(|d| registered_domain(&d) != from)
}

fn hidden_text(a: &Analysis) -> bool {
    let total = a.html_hidden_chars + a.html_visible_chars;
    a.html_hidden_chars >= 20 && a.html_hidden_chars * 10 >= total
}

/// A link whose shown text is itself a URL or domain that differs from the target's.
fn url_display_mismatch(url: &crate::analysis::UrlRef) -> bool {
    let Some(display) = url.display.as_deref() else {
        return false;
    };
    let display = display.trim();
    let shown = url_host(display).or_else(|| {
        // A bare domain as the link text: "paypal.com".
        let d = display.trim_end_matches('/').to_ascii_lowercase();
        let looks_like_domain = d.contains('.')
            && !d.contains(' ')
            && !d.contains('@')
            && d.rsplit('.')
                .next()
                .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
            && d.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        looks_like_domain.then_some(d)
    });
    shown.is_some_and(|s| registered_domain(&s) != registered_domain(&url.host))
}

const EXECUTABLE_EXTENSIONS: &[&str] = &[
    "exe", "scr", "pif", "com", "bat", "cmd", "vbs", "vbe", "js", "jse", "wsf", "wsh", "hta",
    "msi", "msp", "cpl", "jar", "lnk", "ps1", "reg", "dll", "app", "apk", "gadget", "iso", "img",
    "vhd",
];

fn is_executable(att: &crate::analysis::Attachment) -> bool {
    let by_type = matches!(
        att.content_type.as_str(),
        "application/x-msdownload"
            | "application/x-msdos-program"
            | "application/x-dosexec"
            | "application/x-ms-installer"
            | "application/hta"
            | "application/x-executable"
    );
    let by_name = att.file_name.as_deref().is_some_and(|n| {
        let n = n.trim().trim_end_matches('.').to_ascii_lowercase();
        n.rsplit_once('.')
            .is_some_and(|(_, ext)| EXECUTABLE_EXTENSIONS.contains(&ext))
    });
    by_type || by_name
}

#[cfg(test)]
mod tests {
    use super::names::*;
    use super::*;

    const GOOD: &str = "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: Lunch tomorrow\r\nMessage-ID: <1@example.com>\r\nDate: Mon, 7 Dec 2026 01:00:00 +0000\r\n\r\nSee you at noon.\r\n";

    struct Case {
        raw: String,
        auth: AuthVerdicts,
        envelope_from: String,
        local: Vec<String>,
        domain_lists: SenderLists,
        user_lists: SenderLists,
        known: bool,
        reputation: Option<Reputation>,
        bayes: Option<f64>,
    }

    impl Case {
        fn new(raw: &str) -> Case {
            Case {
                raw: raw.to_string(),
                auth: AuthVerdicts::default(),
                envelope_from: "alice@example.com".into(),
                local: vec!["example.org".into()],
                domain_lists: SenderLists::default(),
                user_lists: SenderLists::default(),
                known: false,
                reputation: None,
                bayes: None,
            }
        }
        fn hits(&self) -> Vec<String> {
            let a = Analysis::parse(self.raw.as_bytes());
            let input = RuleInput {
                analysis: &a,
                auth: &self.auth,
                envelope_from: &self.envelope_from,
                local_domains: &self.local,
                domain_lists: &self.domain_lists,
                user_lists: &self.user_lists,
                known_correspondent: self.known,
                reputation: self.reputation,
                bayes_probability: self.bayes,
            };
            run(&input, &Weights::default())
                .into_iter()
                .map(|h| h.name)
                .collect()
        }
    }

    fn fires(raw: &str, rule: &str) -> bool {
        Case::new(raw).hits().iter().any(|h| h == rule)
    }

    fn replace(from: &str, to: &str) -> String {
        GOOD.replacen(from, to, 1)
    }

    #[test]
    fn good_message_fires_nothing() {
        assert!(
            Case::new(GOOD).hits().is_empty(),
            "{:?}",
            Case::new(GOOD).hits()
        );
    }

    #[test]
    fn every_rule_has_a_unique_name() {
        let mut names: Vec<&str> = RULES.iter().map(|r| r.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RULES.len());
    }

    #[test]
    fn missing_headers() {
        assert!(fires(
            &replace("Message-ID: <1@example.com>\r\n", ""),
            MISSING_MID
        ));
        assert!(fires(
            &replace("Date: Mon, 7 Dec 2026 01:00:00 +0000\r\n", ""),
            MISSING_DATE
        ));
        assert!(fires(
            &replace("From: Alice <alice@example.com>\r\n", ""),
            MISSING_FROM
        ));
        assert!(fires(
            &replace("Subject: Lunch tomorrow\r\n", ""),
            MISSING_SUBJECT
        ));
        assert!(fires(
            &replace("Subject: Lunch tomorrow", "Subject:  "),
            MISSING_SUBJECT
        ));
        for rule in [MISSING_MID, MISSING_DATE, MISSING_FROM, MISSING_SUBJECT] {
            assert!(!fires(GOOD, rule));
        }
    }

    #[test]
    fn subject_rules() {
        assert!(fires(
            &replace(
                "Subject: Lunch tomorrow",
                "Subject: =?utf-8?B?THVuY2ggdG9tb3Jyb3c=?="
            ),
            SUBJ_ENCODED_ASCII
        ));
        assert!(!fires(
            &replace(
                "Subject: Lunch tomorrow",
                "Subject: =?utf-8?Q?D=C3=A9jeuner?="
            ),
            SUBJ_ENCODED_ASCII
        ));
        assert!(!fires(GOOD, SUBJ_ENCODED_ASCII));
        assert!(fires(
            &replace("Lunch tomorrow", "FREE MONEY NOW!!!"),
            SUBJ_ALL_CAPS
        ));
        assert!(!fires(&replace("Lunch tomorrow", "FYI: OK"), SUBJ_ALL_CAPS));
        // "Pаypal" with a Cyrillic 'а'.
        assert!(fires(
            &replace(
                "Subject: Lunch tomorrow",
                "Subject: =?utf-8?Q?P=D0=B0ypal_alert?="
            ),
            MIXED_SCRIPT
        ));
        assert!(!fires(
            &replace(
                "Subject: Lunch tomorrow",
                "Subject: =?utf-8?Q?=D0=9F=D1=80=D0=B8=D0=B2=D0=B5=D1=82_Bob?="
            ),
            MIXED_SCRIPT
        ));
    }

    #[test]
    fn from_display_mismatch_rule() {
        assert!(fires(
            &replace(
                "Alice <alice@example.com>",
                "\"support@paypal.com\" <x@evil.example>"
            ),
            FROM_DISPLAY_ADDR_MISMATCH
        ));
        assert!(!fires(
            &replace(
                "Alice <alice@example.com>",
                "\"alice@example.com\" <alice@mail.example.com>"
            ),
            FROM_DISPLAY_ADDR_MISMATCH
        ));
        assert!(!fires(GOOD, FROM_DISPLAY_ADDR_MISMATCH));
    }

    #[test]
    fn forged_local_sender() {
        let raw = replace("alice@example.com>", "ceo@example.org>");
        let mut c = Case::new(&raw);
        assert!(c.hits().iter().any(|h| h == FORGED_LOCAL_SENDER));
        c.auth.dmarc = AuthResult::Pass;
        assert!(!c.hits().iter().any(|h| h == FORGED_LOCAL_SENDER));
        assert!(!fires(GOOD, FORGED_LOCAL_SENDER));
    }

    fn html(body: &str, alternative: bool) -> String {
        let head = "From: a@example.com\r\nSubject: s\r\nMessage-ID: <1@x>\r\nDate: Mon, 7 Dec 2026 01:00:00 +0000\r\n";
        if alternative {
            format!(
                "{head}Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n--b\r\nContent-Type: text/html\r\n\r\n{body}\r\n--b--\r\n"
            )
        } else {
            format!("{head}Content-Type: text/html\r\n\r\n{body}\r\n")
        }
    }

    #[test]
    fn html_rules() {
        assert!(fires(&html("<p>hi there</p>", false), HTML_ONLY));
        assert!(!fires(&html("<p>hi there</p>", true), HTML_ONLY));
        assert!(!fires(GOOD, HTML_ONLY));
        let hidden = "<p>Click below</p><div style='display:none'>lorem ipsum dolor sit amet consectetur</div>";
        assert!(fires(&html(hidden, true), HTML_HIDDEN_TEXT));
        assert!(!fires(
            &html(
                "<p>Click below</p><div>lorem ipsum dolor sit amet</div>",
                true
            ),
            HTML_HIDDEN_TEXT
        ));
        let mismatch = "<a href=\"http://evil.example.net/login\">https://www.paypal.com/</a>";
        assert!(fires(&html(mismatch, true), URL_DISPLAY_MISMATCH));
        let bare = "<a href=\"http://evil.example.net/login\">paypal.com</a>";
        assert!(fires(&html(bare, true), URL_DISPLAY_MISMATCH));
        let same = "<a href=\"https://www.paypal.com/x\">paypal.com</a> <a href=\"http://t.example/x\">click here</a>";
        assert!(!fires(&html(same, true), URL_DISPLAY_MISMATCH));
    }

    fn attachment(name: &str, ctype: &str) -> String {
        format!(
            "From: a@example.com\r\nSubject: s\r\nMessage-ID: <1@x>\r\nDate: Mon, 7 Dec 2026 01:00:00 +0000\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: {ctype}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--b--\r\n"
        )
    }

    #[test]
    fn executable_attachments() {
        assert!(fires(
            &attachment("invoice.pdf.exe", "application/octet-stream"),
            EXE_ATTACHMENT
        ));
        assert!(fires(
            &attachment("x.bin", "application/x-msdownload"),
            EXE_ATTACHMENT
        ));
        assert!(!fires(
            &attachment("invoice.pdf", "application/pdf"),
            EXE_ATTACHMENT
        ));
        assert!(!fires(GOOD, EXE_ATTACHMENT));
    }

    #[test]
    fn bad_encoding() {
        let raw = "From: a@example.com\r\nSubject: s\r\nMessage-ID: <1@x>\r\nDate: Mon, 7 Dec 2026 01:00:00 +0000\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!! not base64 ****\r\n";
        let got = Case::new(raw).hits();
        // mail-parser flags undecodable parts; if it decoded leniently, nothing fires.
        let a = Analysis::parse(raw.as_bytes());
        assert_eq!(
            got.iter().any(|h| h == MIME_BAD_ENCODING),
            a.encoding_problem
        );
        assert!(!fires(GOOD, MIME_BAD_ENCODING));
    }

    #[test]
    fn auth_rules() {
        let table = [
            (AuthResult::Pass, SPF_PASS, DKIM_VALID),
            (AuthResult::Fail, SPF_FAIL, DKIM_INVALID),
        ];
        for (result, spf_rule, dkim_rule) in table {
            let mut c = Case::new(GOOD);
            c.auth.spf = result;
            c.auth.dkim = result;
            let h = c.hits();
            assert!(
                h.iter().any(|x| x == spf_rule) && h.iter().any(|x| x == dkim_rule),
                "{h:?}"
            );
        }
        let mut c = Case::new(GOOD);
        c.auth.spf = AuthResult::SoftFail;
        assert_eq!(c.hits(), vec![SPF_SOFTFAIL]);
        c.auth.spf = AuthResult::TempError;
        assert!(c.hits().is_empty());
        for (policy, rule) in [
            (DmarcPolicy::Reject, DMARC_FAIL_REJECT),
            (DmarcPolicy::Quarantine, DMARC_FAIL_QUARANTINE),
            (DmarcPolicy::None, DMARC_FAIL_NONE),
        ] {
            let mut c = Case::new(GOOD);
            c.auth.dmarc = AuthResult::Fail;
            c.auth.dmarc_policy = policy;
            assert_eq!(c.hits(), vec![rule]);
        }
        let mut c = Case::new(GOOD);
        c.auth.dmarc = AuthResult::Pass;
        assert_eq!(c.hits(), vec![DMARC_PASS]);
        let mut c = Case::new(GOOD);
        c.auth.arc = AuthResult::Fail;
        c.auth.iprev = AuthResult::Fail;
        assert_eq!(c.hits(), vec![ARC_FAIL, IPREV_FAIL]);
        c.auth.arc = AuthResult::Pass;
        c.auth.iprev = AuthResult::Pass;
        assert!(c.hits().is_empty());
    }

    #[test]
    fn list_matching() {
        assert!(list_entry_matches("alice@example.com", "Alice@Example.com"));
        assert!(list_entry_matches("example.com", "x@mail.example.com"));
        assert!(list_entry_matches("@example.com", "x@example.com"));
        assert!(!list_entry_matches("example.com", "x@badexample.com"));
        assert!(!list_entry_matches("bob@example.com", "alice@example.com"));
        assert!(!list_entry_matches("", "alice@example.com"));
    }

    #[test]
    fn allow_and_block_lists() {
        let mut c = Case::new(GOOD);
        c.user_lists.allow = vec!["example.com".into()];
        // Not authenticated: the allow list does not apply.
        assert!(c.hits().is_empty());
        c.auth.spf = AuthResult::Pass; // aligned: envelope alice@example.com
        assert_eq!(c.hits(), vec![SPF_PASS, ALLOWLIST_USER]);
        c.domain_lists.block = vec!["example.com".into()];
        // The user's list wins over the domain's.
        assert_eq!(c.hits(), vec![SPF_PASS, ALLOWLIST_USER]);
        c.user_lists.allow.clear();
        assert_eq!(c.hits(), vec![SPF_PASS, BLOCKLIST_DOMAIN]);
        c.domain_lists.block.clear();
        c.domain_lists.allow = vec!["alice@example.com".into()];
        assert_eq!(c.hits(), vec![SPF_PASS, ALLOWLIST_DOMAIN]);
        c.user_lists.block = vec!["@example.com".into()];
        assert_eq!(c.hits(), vec![SPF_PASS, BLOCKLIST_USER]);
    }

    #[test]
    fn dkim_alignment_authenticates() {
        let mut c = Case::new(GOOD);
        c.envelope_from = "bounce@other.example".into();
        c.user_lists.allow = vec!["example.com".into()];
        c.auth.dkim = AuthResult::Pass;
        c.auth.dkim_pass_domains = vec!["other.example".into()];
        assert!(!c.hits().iter().any(|h| h == ALLOWLIST_USER));
        c.auth.dkim_pass_domains = vec!["mail.EXAMPLE.com".into()];
        assert!(c.hits().iter().any(|h| h == ALLOWLIST_USER));
    }

    #[test]
    fn authenticated_domain() {
        let a = Analysis::parse(GOOD.as_bytes());
        let mut auth = AuthVerdicts::default();
        assert_eq!(
            authenticated_sender_domain(&a, &auth, "alice@example.com"),
            None
        );
        auth.spf = AuthResult::Pass;
        assert_eq!(
            authenticated_sender_domain(&a, &auth, "x@other.example"),
            None
        );
        assert_eq!(
            authenticated_sender_domain(&a, &auth, "b@bounce.example.com").as_deref(),
            Some("example.com")
        );
        let auth = AuthVerdicts {
            dmarc: AuthResult::Pass,
            ..AuthVerdicts::default()
        };
        assert_eq!(
            authenticated_sender_domain(&a, &auth, "").as_deref(),
            Some("example.com")
        );
    }

    #[test]
    fn known_correspondent() {
        let mut c = Case::new(GOOD);
        c.known = true;
        assert_eq!(c.hits(), vec![KNOWN_CORRESPONDENT_UNVERIFIED]);
        c.auth.dmarc = AuthResult::Pass;
        assert_eq!(c.hits(), vec![DMARC_PASS, KNOWN_CORRESPONDENT]);
        c.known = false;
        assert_eq!(c.hits(), vec![DMARC_PASS]);
    }

    #[test]
    fn reputation_rules() {
        let a = Analysis::parse(GOOD.as_bytes());
        let auth = AuthVerdicts::default();
        let lists = SenderLists::default();
        let run_rep = |rep: Reputation| {
            let input = RuleInput {
                analysis: &a,
                auth: &auth,
                envelope_from: "",
                local_domains: &[],
                domain_lists: &lists,
                user_lists: &lists,
                known_correspondent: false,
                reputation: Some(rep),
                bayes_probability: None,
            };
            run(&input, &Weights::default())
        };
        let h = run_rep(Reputation { ham: 0, spam: 100 });
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].name, SENDER_REP_SPAM);
        assert!(h[0].weight > 2.5 && h[0].weight <= 3.0);
        let h = run_rep(Reputation { ham: 100, spam: 1 });
        assert_eq!(h[0].name, SENDER_REP_HAM);
        assert!(h[0].weight < -2.5 && h[0].weight >= -3.0);
        assert!(run_rep(Reputation { ham: 1, spam: 3 }).is_empty()); // too little history
        assert!(run_rep(Reputation { ham: 50, spam: 50 }).is_empty()); // mixed
    }

    #[test]
    fn bayes_rules() {
        assert_eq!(bayes_rule(0.0), Some(BAYES_00));
        assert_eq!(bayes_rule(0.02), Some(BAYES_05));
        assert_eq!(bayes_rule(0.5), None);
        assert_eq!(bayes_rule(0.9), Some(BAYES_80));
        assert_eq!(bayes_rule(0.97), Some(BAYES_95));
        assert_eq!(bayes_rule(0.995), Some(BAYES_99));
        assert_eq!(bayes_rule(1.0), Some(BAYES_999));
        let mut c = Case::new(GOOD);
        c.bayes = Some(0.9995);
        assert_eq!(c.hits(), vec![BAYES_999]);
        c.bayes = Some(0.5);
        assert!(c.hits().is_empty());
    }

    #[test]
    fn weight_overrides() {
        let mut w = Weights::default();
        assert_eq!(w.get(MISSING_MID), 1.0);
        w.overrides.insert(MISSING_MID.into(), 0.25);
        assert_eq!(w.get(MISSING_MID), 0.25);
        assert_eq!(w.get("NO_SUCH_RULE"), 0.0);
    }
}
