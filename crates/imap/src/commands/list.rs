//! LIST (with LIST-EXTENDED selection and return options, LIST-STATUS, SPECIAL-USE and
//! CHILDREN attributes) and LSUB.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use wharf_store::{Mailbox, MailboxId, Rights};

use crate::output::Output;
use crate::session::{Done, Session, normalize_inbox};
use crate::syntax::{ListReturn, ListSelect, response};

/// One name in the hierarchy: a real mailbox, a parent that only exists implicitly, or (when
/// subscriptions are listed) a subscribed name whose mailbox does not exist.
#[derive(Default)]
struct Node<'a> {
    mailbox: Option<&'a Mailbox>,
    /// Some mailbox that exists lies below.
    has_children: bool,
    subscribed: bool,
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

    async fn subscription_set(&self) -> Result<BTreeSet<String>, Done> {
        match self
            .backend
            .mailboxes
            .subscriptions(self.account_id())
            .await
        {
            Ok(s) => Ok(s.into_iter().collect()),
            Err(e) => Err(Done::store(e)),
        }
    }

    /// The session's mailboxes and the other accounts' it may look up (RFC 4314 `l`), named as
    /// it sees them; with the ids of those it may not read (`r`), whose STATUS it does not get.
    async fn visible_mailboxes(&self) -> Result<(Vec<Mailbox>, HashSet<MailboxId>), Done> {
        let mut mailboxes = self
            .backend
            .mailboxes
            .list(self.account_id())
            .await
            .map_err(Done::store)?;
        let mut foreign = self.foreign_mailboxes().await?;
        // An own mailbox of the same name wins (`namespace::target` resolves it so too).
        let own: HashSet<&str> = mailboxes.iter().map(|m| m.name.as_str()).collect();
        foreign.retain(|f| !own.contains(f.mailbox.name.as_str()));
        let unreadable = foreign
            .iter()
            .filter(|f| !f.rights.contains(Rights::READ))
            .map(|f| f.mailbox.id)
            .collect();
        mailboxes.extend(foreign.into_iter().map(|f| f.mailbox));
        Ok((mailboxes, unreadable))
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
        let (mailboxes, unreadable) = match self.visible_mailboxes().await {
            Ok(m) => m,
            Err(d) => return d,
        };
        let mut pats = Vec::new();
        for p in patterns {
            if let Some(x) = self.full_pattern(reference, p) {
                pats.push(x);
            }
        }
        let subscribed_only = select.subscribed;
        let return_subscribed = ret.subscribed || select.subscribed;
        let subscriptions = if return_subscribed {
            match self.subscription_set().await {
                Ok(s) => s,
                Err(d) => return d,
            }
        } else {
            BTreeSet::new()
        };
        let tree = build_tree(&mailboxes, &subscriptions, subscribed_only);
        let matches = |name: &str| {
            pats.iter().any(|p| {
                wildcard_match(p.as_bytes(), name.as_bytes())
                    || (p.to_ascii_uppercase().starts_with("INBOX")
                        && wildcard_match(normalize_inbox(p).as_bytes(), name.as_bytes()))
            })
        };
        for (name, node) in &tree {
            if !matches(name) {
                continue;
            }
            let subscribed = node.subscribed;
            let mut childinfo = false;
            if subscribed_only && !subscribed {
                // RFC 5258 §3.5: a parent is listed for its subscribed descendants only when
                // they are not listed themselves, i.e. do not match the pattern.
                if select.recursive_match && descendants(&subscriptions, name).any(|d| !matches(d))
                {
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
                && !unreadable.contains(&m.id)
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
        let (mailboxes, _) = match self.visible_mailboxes().await {
            Ok(m) => m,
            Err(d) => return d,
        };
        let Some(pat) = self.full_pattern(reference, pattern) else {
            return Done::ok("LSUB completed");
        };
        let subscriptions = match self.subscription_set().await {
            Ok(s) => s,
            Err(d) => return d,
        };
        let tree = build_tree(&mailboxes, &subscriptions, true);
        for (name, node) in &tree {
            if !wildcard_match(pat.as_bytes(), name.as_bytes()) {
                continue;
            }
            // A subscribed name whose mailbox is gone, or a parent listed for a subscribed
            // child the pattern's trailing `%` hides (RFC 3501 §6.3.9), cannot be selected.
            let attrs = if node.subscribed && node.mailbox.is_some() {
                ""
            } else if node.subscribed
                || (pat.ends_with('%') && descendants(&subscriptions, name).next().is_some())
            {
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

/// Every name listed: existing mailboxes and their implicit parents, flagged as subscribed or
/// not; with `with_subscriptions`, also subscribed names without a mailbox and their parents.
fn build_tree<'a>(
    mailboxes: &'a [Mailbox],
    subscriptions: &BTreeSet<String>,
    with_subscriptions: bool,
) -> BTreeMap<String, Node<'a>> {
    let mut tree: BTreeMap<String, Node<'a>> = BTreeMap::new();
    for m in mailboxes {
        tree.entry(m.name.clone()).or_default().mailbox = Some(m);
        for parent in parents(&m.name) {
            tree.entry(parent.to_string()).or_default().has_children = true;
        }
    }
    for name in subscriptions {
        if let Some(node) = tree.get_mut(name) {
            node.subscribed = true;
        } else if with_subscriptions {
            tree.entry(name.clone()).or_default().subscribed = true;
            for parent in parents(name) {
                tree.entry(parent.to_string()).or_default();
            }
        }
    }
    tree
}

/// `a/b/c` → `a/b`, `a`.
fn parents(name: &str) -> impl Iterator<Item = &str> {
    let mut rest = name;
    std::iter::from_fn(move || {
        let i = rest.rfind('/')?;
        rest = &rest[..i];
        Some(rest)
    })
}

/// The names in `set` below `name` in the hierarchy.
fn descendants<'s>(set: &'s BTreeSet<String>, name: &str) -> impl Iterator<Item = &'s String> {
    let prefix = format!("{name}/");
    set.range(prefix.clone()..)
        .take_while(move |d| d.starts_with(&prefix))
}
