//! LIST (with LIST-EXTENDED selection and return options, LIST-STATUS, SPECIAL-USE and
//! CHILDREN attributes) and LSUB.

use std::collections::BTreeMap;

use wharf_store::Mailbox;

use crate::output::Output;
use crate::session::{Done, Session, normalize_inbox};
use crate::syntax::{ListReturn, ListSelect, response};

/// One name in the hierarchy: a real mailbox or a parent that only exists implicitly.
struct Node<'a> {
    mailbox: Option<&'a Mailbox>,
    has_children: bool,
    /// Some descendant is subscribed (RECURSIVEMATCH CHILDINFO).
    child_subscribed: bool,
}

/// IMAP wildcard match: `*` matches anything, `%` anything but the delimiter.
pub fn wildcard_match(pattern: &[u8], name: &[u8]) -> bool {
    // Iterative matcher with backtracking over the last star; `%` handled by recursion on
    // bounded input (names and patterns are short).
    fn rec(p: &[u8], n: &[u8], budget: &mut u32) -> bool {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        match p.first() {
            None => n.is_empty(),
            Some(b'*') => (0..=n.len()).any(|i| rec(&p[1..], &n[i..], budget)),
            Some(b'%') => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != b'/')
                .any(|i| rec(&p[1..], &n[i..], budget)),
            Some(&c) => n.first() == Some(&c) && rec(&p[1..], &n[1..], budget),
        }
    }
    let mut budget = 100_000;
    rec(pattern, name, &mut budget)
}

impl Session {
    /// The reference and pattern as one pattern over decoded names; `None` when either is not
    /// valid modified UTF-7, which no mailbox name can match (RFC 9051 §6.3.9: such a LIST is
    /// answered OK with no mailboxes, not refused).
    fn full_pattern(&self, reference: &str, pattern: &str) -> Option<String> {
        let decode = |s: &str| -> Option<String> {
            if self.utf8 {
                Some(s.to_string())
            } else {
                crate::syntax::utf7::decode(s)
            }
        };
        let r = decode(reference)?;
        let p = decode(pattern)?;
        let joined = if r.is_empty() || p.starts_with('/') || r.ends_with('/') {
            format!("{r}{p}")
        } else {
            format!("{r}/{p}")
        };
        Some(normalize_inbox(&joined))
    }

    pub(crate) async fn list(
        &mut self,
        reference: &str,
        patterns: &[String],
        select: &ListSelect,
        ret: &ListReturn,
        extended: bool,
        out: &mut Output,
    ) -> Done {
        if !extended && patterns.len() == 1 && patterns[0].is_empty() {
            out.extend_from_slice(b"* LIST (\\Noselect) \"/\" \"\"\r\n");
            return Done::ok("LIST completed");
        }
        let mailboxes = match self.backend.mailboxes.list(self.account_id()).await {
            Ok(m) => m,
            Err(e) => return Done::store(e),
        };
        let mut pats = Vec::new();
        for p in patterns {
            if let Some(x) = self.full_pattern(reference, p) {
                pats.push(x);
            }
        }
        let tree = build_tree(&mailboxes);
        let subscribed_only = select.subscribed;
        let return_subscribed = ret.subscribed || select.subscribed;
        for (name, node) in &tree {
            let matches = pats.iter().any(|p| {
                wildcard_match(p.as_bytes(), name.as_bytes())
                    || (p.to_ascii_uppercase().starts_with("INBOX")
                        && wildcard_match(normalize_inbox(p).as_bytes(), name.as_bytes()))
            });
            if !matches {
                continue;
            }
            let subscribed = node.mailbox.is_some_and(|m| m.subscribed);
            let mut childinfo = false;
            if subscribed_only && !subscribed {
                if select.recursive_match && node.child_subscribed {
                    childinfo = true;
                } else {
                    continue;
                }
            }
            if select.special_use && node.mailbox.and_then(|m| m.special_use).is_none() {
                continue;
            }
            let mut attrs: Vec<&str> = Vec::new();
            match node.mailbox {
                None => attrs.push(if extended {
                    "\\NonExistent"
                } else {
                    "\\Noselect"
                }),
                Some(m) => {
                    if let Some(su) = m.special_use {
                        attrs.push(su.attribute());
                    }
                }
            }
            if node.mailbox.is_none() && extended {
                // \NonExistent implies \Noselect (RFC 5258).
            }
            attrs.push(if node.has_children {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            });
            if return_subscribed && subscribed {
                attrs.push("\\Subscribed");
            }
            let mut line = format!("* LIST ({}) \"/\" ", attrs.join(" ")).into_bytes();
            response::astring(&mut line, &self.mailbox_out(name));
            if childinfo {
                line.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            line.extend_from_slice(b"\r\n");
            out.extend_from_slice(&line);
            if let (Some(items), Some(m)) = (&ret.status, node.mailbox)
                && !childinfo
            {
                match self.status_line(m, items).await {
                    Ok(l) => out.extend_from_slice(&l),
                    Err(e) => return Done::store(e),
                }
            }
        }
        Done::ok("LIST completed")
    }

    pub(crate) async fn lsub(&mut self, reference: &str, pattern: &str, out: &mut Output) -> Done {
        let mailboxes = match self.backend.mailboxes.list(self.account_id()).await {
            Ok(m) => m,
            Err(e) => return Done::store(e),
        };
        let Some(pat) = self.full_pattern(reference, pattern) else {
            return Done::ok("LSUB completed");
        };
        let tree = build_tree(&mailboxes);
        for (name, node) in &tree {
            if !wildcard_match(pat.as_bytes(), name.as_bytes()) {
                continue;
            }
            let subscribed = node.mailbox.is_some_and(|m| m.subscribed);
            let attrs = if subscribed {
                ""
            } else if node.child_subscribed && pat.ends_with('%') {
                "\\Noselect"
            } else {
                continue;
            };
            let mut line = format!("* LSUB ({attrs}) \"/\" ").into_bytes();
            response::astring(&mut line, &self.mailbox_out(name));
            line.extend_from_slice(b"\r\n");
            out.extend_from_slice(&line);
        }
        Done::ok("LSUB completed")
    }
}

fn build_tree(mailboxes: &[Mailbox]) -> BTreeMap<String, Node<'_>> {
    let mut tree: BTreeMap<String, Node<'_>> = BTreeMap::new();
    for m in mailboxes {
        tree.entry(m.name.clone())
            .and_modify(|n| n.mailbox = Some(m))
            .or_insert(Node {
                mailbox: Some(m),
                has_children: false,
                child_subscribed: false,
            });
        let mut name = m.name.as_str();
        while let Some(i) = name.rfind('/') {
            name = &name[..i];
            let n = tree.entry(name.to_string()).or_insert(Node {
                mailbox: None,
                has_children: false,
                child_subscribed: false,
            });
            n.has_children = true;
            if m.subscribed {
                n.child_subscribed = true;
            }
        }
    }
    tree
}
