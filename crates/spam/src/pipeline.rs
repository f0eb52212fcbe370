//! The scoring pipeline's last step: configuration, the sum of fired rules into a score, the
//! action the thresholds pick, and the header and log texts that show it.
//!
//! Flow for one inbound message (the DNS and store work is the caller's, done once per message
//! or per recipient as marked):
//! 1. `let scan = Scan::new(raw)` — parse once, tokens (per message);
//! 2. `dnsbl::check(&dns, &cfg.dnsbl, client_ip, &scan.analysis.url_domains())` (per message);
//! 3. optionally `rspamd::check` (per message);
//! 4. per recipient: `bayes::load_model(store, Some(account), scan.tokens.hashes())`, then
//!    `bayes::classify`, then [`evaluate`] → [`Verdict`];
//! 5. act on [`Verdict::action`]: `Reject` → 550 5.7.1; `Greylist` → consult
//!    [`crate::greylist::decide`], and when it passes use [`Verdict::action_after_greylist`];
//!    `Junk` → file in Junk; prepend [`Verdict::headers`]; log [`Verdict::log_line`].

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Deserialize;

use crate::analysis::Analysis;
use crate::bayes::{BayesConfig, Classification};
use crate::dnsbl::DnsblConfig;
use crate::greylist::GreylistConfig;
use crate::rspamd::{RspamdConfig, RspamdResult};
use crate::rules::{self, AuthVerdicts, Hit, Reputation, RuleInput, SenderLists, Weights};
use crate::tokens::TokenSet;

/// The `[spam]` section of `wharf.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub enabled: bool,
    /// At or above: file in Junk.
    pub junk_threshold: f64,
    /// At or above: refuse with 550 5.7.1.
    pub reject_threshold: f64,
    /// At or above (and below reject): greylist. Off when absent.
    pub greylist_threshold: Option<f64>,
    /// Rule weight overrides by rule name.
    pub weights: HashMap<String, f64>,
    pub bayes: BayesConfig,
    pub dnsbl: DnsblConfig,
    pub greylist: GreylistConfig,
    pub rspamd: RspamdConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            junk_threshold: 6.0,
            reject_threshold: 15.0,
            greylist_threshold: None,
            weights: HashMap::new(),
            bayes: BayesConfig::default(),
            dnsbl: DnsblConfig::default(),
            greylist: GreylistConfig::default(),
            rspamd: RspamdConfig::default(),
        }
    }
}

/// A parsed message with its classifier tokens: the per-message part of scoring.
#[derive(Debug, Clone)]
pub struct Scan {
    pub analysis: Analysis,
    pub tokens: TokenSet,
}

impl Scan {
    pub fn new(raw: &[u8]) -> Scan {
        let analysis = Analysis::parse(raw);
        let tokens = TokenSet::from_analysis(&analysis);
        Scan { analysis, tokens }
    }
}

/// What is known about one message for one recipient, besides its content.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub auth: &'a AuthVerdicts,
    pub envelope_from: &'a str,
    pub local_domains: &'a [String],
    pub domain_lists: &'a SenderLists,
    pub user_lists: &'a SenderLists,
    pub known_correspondent: bool,
    pub reputation: Option<Reputation>,
    pub classification: Option<&'a Classification>,
    /// Hits from [`crate::dnsbl::check`].
    pub dnsbl_hits: &'a [Hit],
    pub rspamd: Option<&'a RspamdResult>,
}

/// What to do with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Deliver,
    Junk,
    /// 550 5.7.1.
    Reject,
    /// Consult the greylist; see [`Verdict::action_after_greylist`].
    Greylist,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deliver => "deliver",
            Action::Junk => "junk",
            Action::Reject => "reject",
            Action::Greylist => "greylist",
        }
    }
}

/// The result of scoring one message for one recipient.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Sum of the hits' weights, rounded to one decimal.
    pub score: f64,
    /// The junk threshold.
    pub required: f64,
    /// Fired rules, sorted by name.
    pub hits: Vec<Hit>,
    pub action: Action,
    pub bayes_probability: Option<f64>,
}

/// Largest magnitude one external rspamd score may add.
const MAX_RSPAMD_CONTRIBUTION: f64 = 30.0;

/// Scores a message: runs the rules, adds DNSBL and rspamd hits, picks the action.
pub fn evaluate(cfg: &Config, analysis: &Analysis, facts: &Facts<'_>) -> Verdict {
    if !cfg.enabled {
        return Verdict {
            score: 0.0,
            required: cfg.junk_threshold,
            hits: Vec::new(),
            action: Action::Deliver,
            bayes_probability: None,
        };
    }
    let weights = Weights {
        overrides: cfg.weights.clone(),
    };
    let bayes_probability = facts.classification.map(|c| c.probability);
    let input = RuleInput {
        analysis,
        auth: facts.auth,
        envelope_from: facts.envelope_from,
        local_domains: facts.local_domains,
        domain_lists: facts.domain_lists,
        user_lists: facts.user_lists,
        known_correspondent: facts.known_correspondent,
        reputation: facts.reputation,
        bayes_probability,
    };
    let mut hits = rules::run(&input, &weights);
    for hit in facts.dnsbl_hits {
        hits.push(Hit {
            name: hit.name.clone(),
            weight: cfg.weights.get(&hit.name).copied().unwrap_or(hit.weight),
        });
    }
    if let Some(r) = facts.rspamd
        && r.score.is_finite()
    {
        hits.push(Hit {
            name: "RSPAMD".to_string(),
            weight: (r.score * cfg.rspamd.weight)
                .clamp(-MAX_RSPAMD_CONTRIBUTION, MAX_RSPAMD_CONTRIBUTION),
        });
    }
    hits.retain(|h| h.weight != 0.0 && h.weight.is_finite());
    hits.sort_by(|a, b| a.name.cmp(&b.name));
    let raw: f64 = hits.iter().map(|h| h.weight).sum();
    let score = (raw * 10.0).round() / 10.0 + 0.0; // + 0.0 turns -0.0 into 0.0
    let action = if score >= cfg.reject_threshold {
        Action::Reject
    } else if cfg.greylist_threshold.is_some_and(|g| score >= g) {
        Action::Greylist
    } else if score >= cfg.junk_threshold {
        Action::Junk
    } else {
        Action::Deliver
    };
    Verdict {
        score,
        required: cfg.junk_threshold,
        hits,
        action,
        bayes_probability,
    }
}

impl Verdict {
    /// Whether the score reaches the junk threshold.
    pub fn is_spam(&self) -> bool {
        self.score >= self.required
    }

    /// The action once the greylist let the message through: `Junk` or `Deliver` by score.
    pub fn action_after_greylist(&self) -> Action {
        match self.action {
            Action::Greylist if self.is_spam() => Action::Junk,
            Action::Greylist => Action::Deliver,
            other => other,
        }
    }

    /// `X-Spam-Score`'s value: a plain decimal (Sieve's spamtest reads it).
    pub fn score_text(&self) -> String {
        fmt_score(self.score)
    }

    /// `X-Spam-Status` and `X-Spam-Score`, each folded to at most 78 characters a line and
    /// ended by CRLF, ready to prepend to the message.
    pub fn headers(&self) -> String {
        let mut pieces: Vec<String> = vec![
            format!("{},", if self.is_spam() { "Yes" } else { "No" }),
            format!("score={}", fmt_score(self.score)),
            format!("required={}", fmt_score(self.required)),
        ];
        let n = self.hits.len();
        for (i, hit) in self.hits.iter().enumerate() {
            let mut piece = String::new();
            if i == 0 {
                piece.push_str("tests=");
            }
            let _ = write!(piece, "{}={}", hit.name, format_weight(hit.weight));
            if i + 1 < n {
                piece.push(',');
            }
            pieces.push(piece);
        }
        if n == 0 {
            pieces.push("tests=none".to_string());
        }
        let mut out = String::from("X-Spam-Status:");
        let mut line_len = out.len();
        let mut in_tests = false;
        for piece in pieces {
            // Within the tests list, pieces join without a space unless a fold is needed.
            let joiner = usize::from(!in_tests);
            if line_len + joiner + piece.len() > 78 {
                out.push_str("\r\n\t");
                line_len = 1;
            } else if joiner == 1 {
                out.push(' ');
                line_len += 1;
            }
            in_tests |= piece.starts_with("tests=");
            line_len += piece.len();
            out.push_str(&piece);
        }
        out.push_str("\r\nX-Spam-Score: ");
        out.push_str(&self.score_text());
        out.push_str("\r\n");
        out
    }

    /// One line for the log: score, action, Bayes probability and the rules fired.
    pub fn log_line(&self) -> String {
        let mut line = format!(
            "spam score={} required={} action={}",
            fmt_score(self.score),
            fmt_score(self.required),
            self.action.as_str()
        );
        if let Some(p) = self.bayes_probability {
            let _ = write!(line, " bayes={p:.4}");
        }
        line.push_str(" tests=");
        for (i, h) in self.hits.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            let _ = write!(line, "{}={}", h.name, format_weight(h.weight));
        }
        line
    }
}

/// A score with one decimal, never `-0.0`.
fn fmt_score(x: f64) -> String {
    let r = (x * 10.0).round() / 10.0 + 0.0;
    format!("{r:.1}")
}

/// A weight with one decimal, or up to three when needed (`-0.05`), never `-0`.
fn format_weight(w: f64) -> String {
    let one = format!("{w:.1}");
    if (w * 10.0).fract().abs() < 1e-9 {
        return if one == "-0.0" { "0.0".into() } else { one };
    }
    let three = format!("{w:.3}");
    three.trim_end_matches('0').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::names::*;

    fn facts<'a>(auth: &'a AuthVerdicts, lists: &'a SenderLists, dns: &'a [Hit]) -> Facts<'a> {
        Facts {
            auth,
            envelope_from: "",
            local_domains: &[],
            domain_lists: lists,
            user_lists: lists,
            known_correspondent: false,
            reputation: None,
            classification: None,
            dnsbl_hits: dns,
            rspamd: None,
        }
    }

    const BARE: &[u8] = b"From: a@example.com\r\n\r\nhi\r\n"; // MISSING_MID + MISSING_DATE + MISSING_SUBJECT

    #[test]
    fn thresholds_pick_actions() {
        let auth = AuthVerdicts::default();
        let lists = SenderLists::default();
        let a = Analysis::parse(BARE);
        let cfg = Config::default();
        let v = evaluate(&cfg, &a, &facts(&auth, &lists, &[]));
        assert_eq!(v.score, 2.5);
        assert_eq!(v.action, Action::Deliver);
        let dns = [Hit {
            name: "RCVD_IN_TEST".into(),
            weight: 4.0,
        }];
        let v = evaluate(&cfg, &a, &facts(&auth, &lists, &dns));
        assert_eq!(v.score, 6.5);
        assert_eq!(v.action, Action::Junk);
        let cfg2 = Config {
            greylist_threshold: Some(2.0),
            ..Config::default()
        };
        let v = evaluate(&cfg2, &a, &facts(&auth, &lists, &dns));
        assert_eq!(v.action, Action::Greylist);
        assert_eq!(v.action_after_greylist(), Action::Junk);
        let mut cfg3 = Config::default();
        cfg3.weights.insert("RCVD_IN_TEST".into(), 20.0);
        let v = evaluate(&cfg3, &a, &facts(&auth, &lists, &dns));
        assert_eq!(v.action, Action::Reject);
        let off = Config {
            enabled: false,
            ..Config::default()
        };
        let v = evaluate(&off, &a, &facts(&auth, &lists, &dns));
        assert_eq!((v.score, v.action), (0.0, Action::Deliver));
    }

    #[test]
    fn rspamd_contribution() {
        let auth = AuthVerdicts::default();
        let lists = SenderLists::default();
        let a = Analysis::parse(BARE);
        let r = RspamdResult {
            score: 100.0,
            required_score: 15.0,
            action: "reject".into(),
            symbols: vec![],
        };
        let mut f = facts(&auth, &lists, &[]);
        f.rspamd = Some(&r);
        let v = evaluate(&Config::default(), &a, &f);
        assert!(
            v.hits
                .iter()
                .any(|h| h.name == "RSPAMD" && h.weight == 30.0)
        );
    }

    #[test]
    fn headers_are_folded_and_plain() {
        let hits: Vec<Hit> = [
            BAYES_999,
            URL_DISPLAY_MISMATCH,
            HTML_HIDDEN_TEXT,
            FROM_DISPLAY_ADDR_MISMATCH,
            MISSING_MID,
            MISSING_DATE,
            SUBJ_ENCODED_ASCII,
            DKIM_VALID,
        ]
        .iter()
        .map(|n| Hit {
            name: n.to_string(),
            weight: Weights::default().get(n),
        })
        .collect();
        let v = Verdict {
            score: 15.4,
            required: 6.0,
            hits,
            action: Action::Reject,
            bayes_probability: Some(1.0),
        };
        let h = v.headers();
        assert!(h.starts_with("X-Spam-Status: Yes, score=15.4 required=6.0 tests="));
        assert!(h.ends_with("\r\nX-Spam-Score: 15.4\r\n"));
        for line in h.split("\r\n") {
            assert!(line.len() <= 78, "{line:?}");
        }
        assert!(h.contains("DKIM_VALID=-0.1"));
        // Unfolded, the tests list is intact apart from the folding whitespace.
        let unfolded = h.replace("\r\n\t", "");
        assert!(unfolded.contains("BAYES_999=7.0,"));
        let v = Verdict {
            score: -0.04,
            required: 6.0,
            hits: vec![],
            action: Action::Deliver,
            bayes_probability: None,
        };
        assert_eq!(
            v.headers(),
            "X-Spam-Status: No, score=0.0 required=6.0 tests=none\r\nX-Spam-Score: 0.0\r\n"
        );
        assert!(v.log_line().starts_with("spam score="));
    }

    #[test]
    fn weight_format() {
        assert_eq!(format_weight(2.0), "2.0");
        assert_eq!(format_weight(-0.05), "-0.05");
        assert_eq!(format_weight(0.123456), "0.123");
    }

    #[test]
    fn config_from_toml_like_json() {
        let cfg: Config = serde_json::from_str(
            r#"{"junk_threshold": 5.0, "weights": {"MISSING_MID": 0.1},
                "dnsbl": {"ip_zones": [{"zone": "zen.example", "rule": "RCVD_IN_ZEN", "weight": 3.5}]}}"#,
        )
        .unwrap();
        assert_eq!(cfg.junk_threshold, 5.0);
        assert_eq!(cfg.reject_threshold, 15.0);
        assert!(cfg.enabled && !cfg.rspamd.enabled && cfg.greylist_threshold.is_none());
        assert_eq!(cfg.dnsbl.ip_zones[0].rule, "RCVD_IN_ZEN");
        assert!(Config::default().dnsbl.ip_zones.is_empty());
    }
}
