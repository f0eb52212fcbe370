//! The simple forms for people who will never write Sieve: an out-of-office reply and a
//! forward, kept as one generated script. The script's first comment line carries the rules as
//! JSON, so the CLI, the admin API and the web pages can read them back and change one rule
//! without losing the other.

use serde::{Deserialize, Serialize};

/// The name the generated script is stored under.
pub const SCRIPT_NAME: &str = "wharf-rules";

const MARKER: &str = "# wharf-rules ";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimpleRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vacation: Option<SimpleVacation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<SimpleForward>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimpleVacation {
    pub subject: Option<String>,
    pub body: String,
    /// The reply's From (one of the user's addresses); default the account address.
    pub from: Option<String>,
    /// Last day (YYYY-MM-DD, inclusive, in the server's zone) replies are sent.
    pub until: Option<String>,
    /// Days between two replies to one sender.
    pub days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimpleForward {
    pub target: String,
    /// Keep a copy in the mailbox too.
    pub keep: bool,
}

/// Why a rule cannot be turned into a script.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("until must be a date as YYYY-MM-DD, not {0:?}")]
    Until(String),
    #[error("forward target {0:?} is not an address")]
    Target(String),
    #[error("the vacation body is empty")]
    EmptyBody,
}

impl SimpleRules {
    pub fn is_empty(&self) -> bool {
        self.vacation.is_none() && self.forward.is_none()
    }

    /// The rules a generated script carries; `None` for any other script.
    pub fn from_script(text: &str) -> Option<SimpleRules> {
        let line = text.lines().find(|l| l.starts_with(MARKER))?;
        serde_json::from_str(&line[MARKER.len()..]).ok()
    }

    /// The Sieve script doing what the rules say.
    pub fn to_script(&self) -> Result<String, RuleError> {
        let mut require = Vec::new();
        let mut body = String::new();
        if let Some(v) = &self.vacation {
            if v.body.trim().is_empty() {
                return Err(RuleError::EmptyBody);
            }
            require.push("vacation");
            let mut cmd = format!("vacation :days {}", v.days.max(1));
            if let Some(s) = &v.subject {
                cmd.push_str(&format!(" :subject {}", quote(s)));
            }
            if let Some(f) = &v.from {
                cmd.push_str(&format!(" :from {}", quote(f)));
            }
            cmd.push_str(&format!(" {};\n", quote(&v.body)));
            match &v.until {
                Some(until) => {
                    if !is_date(until) {
                        return Err(RuleError::Until(until.clone()));
                    }
                    require.extend(["date", "relational"]);
                    body.push_str(&format!(
                        "if currentdate :value \"le\" \"date\" {} {{\n    {cmd}}}\n",
                        quote(until)
                    ));
                }
                None => body.push_str(&cmd),
            }
        }
        if let Some(f) = &self.forward {
            let t = f.target.trim();
            let ok = t.split_once('@').is_some_and(|(l, d)| {
                !l.is_empty()
                    && d.contains('.')
                    && !t.chars().any(|c| c.is_whitespace() || c.is_control())
            });
            if !ok {
                return Err(RuleError::Target(f.target.clone()));
            }
            if f.keep {
                require.push("copy");
                body.push_str(&format!("redirect :copy {};\n", quote(t)));
            } else {
                body.push_str(&format!("redirect {};\n", quote(t)));
            }
        }
        let json = serde_json::to_string(self).unwrap_or_default();
        let mut out =
            format!("{MARKER}{json}\n# Made by Wharf from the simple forms; edit them there.\n");
        if !require.is_empty() {
            let list: Vec<String> = require.iter().map(|r| quote(r)).collect();
            out.push_str(&format!("require [{}];\n", list.join(", ")));
        }
        out.push_str(&body);
        Ok(out)
    }
}

fn is_date(s: &str) -> bool {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() && s.len() == 10
}

/// A Sieve quoted string (RFC 5228 §2.4.2): backslash and double quote escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CompileLimits, compile};

    #[test]
    fn both_rules_compile_and_read_back() {
        let rules = SimpleRules {
            vacation: Some(SimpleVacation {
                subject: Some("Away \"now\"".into()),
                body: "Back on Monday.\nC:\\path".into(),
                from: Some("alice@example.com".into()),
                until: Some("2026-12-31".into()),
                days: 3,
            }),
            forward: Some(SimpleForward {
                target: "alice@elsewhere.example".into(),
                keep: true,
            }),
        };
        let text = rules.to_script().unwrap();
        compile(&text, &CompileLimits::default()).unwrap();
        assert_eq!(SimpleRules::from_script(&text), Some(rules));
        assert_eq!(SimpleRules::from_script("keep;"), None);
    }

    #[test]
    fn bad_rules_are_refused() {
        let mut r = SimpleRules {
            forward: Some(SimpleForward {
                target: "not an address".into(),
                keep: false,
            }),
            ..Default::default()
        };
        assert!(matches!(r.to_script(), Err(RuleError::Target(_))));
        r.forward = None;
        r.vacation = Some(SimpleVacation {
            subject: None,
            body: "x".into(),
            from: None,
            until: Some("31/12/2026".into()),
            days: 7,
        });
        assert!(matches!(r.to_script(), Err(RuleError::Until(_))));
    }
}
