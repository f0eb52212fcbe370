//! THREAD and UID THREAD (RFC 5256 §3): ORDEREDSUBJECT and REFERENCES over the messages a SEARCH
//! matches, from their stored summaries (the header is read only for messages whose summary
//! predates keeping References:). Reference chains are cut at `MAX_DEPTH` so that a hostile
//! mailbox cannot make the tree deeper than the recursion here can walk.

use std::collections::HashMap;

use wharf_mime::{SortKeys, thread_parents};

use crate::output::Output;
use crate::session::{Done, Session};
use crate::syntax::{SearchKey, ThreadAlgorithm};

/// Deepest parent/child chain built.
const MAX_DEPTH: usize = 256;

/// What threading needs of one message.
struct Msg {
    /// What the answer names it by (sequence number or UID).
    num: u32,
    /// Sent date, else arrival, in unix seconds.
    date: i64,
    keys: SortKeys,
    parents: Vec<String>,
}

/// A thread node: a message, or a dummy standing for a message not in the set.
#[derive(Debug, Clone, PartialEq)]
struct Tree {
    msg: Option<usize>,
    children: Vec<Tree>,
}

/// The sort position of a node: its message, or for a dummy its first child's.
fn position(t: &Tree, msgs: &[Msg]) -> Option<(i64, usize)> {
    match t.msg {
        Some(m) => Some((msgs[m].date, m)),
        None => t.children.first().and_then(|c| position(c, msgs)),
    }
}

/// Sorts every set of siblings by sent date (ties by message number), depth first.
fn sort_siblings(trees: &mut [Tree], msgs: &[Msg]) {
    for t in trees.iter_mut() {
        sort_siblings(&mut t.children, msgs);
    }
    trees.sort_by_key(|t| position(t, msgs));
}

/// ORDEREDSUBJECT: one thread per base subject, the earliest message its root and the others
/// its children; threads in the order of their roots.
fn ordered_subject(msgs: &[Msg]) -> Vec<Tree> {
    let mut order: Vec<usize> = (0..msgs.len()).collect();
    order.sort_by(|&a, &b| {
        msgs[a]
            .keys
            .subject
            .cmp(&msgs[b].keys.subject)
            .then(msgs[a].date.cmp(&msgs[b].date))
            .then(a.cmp(&b))
    });
    let mut threads: Vec<Tree> = Vec::new();
    let mut last_subject: Option<&str> = None;
    for m in order {
        let subject = msgs[m].keys.subject.as_str();
        match threads.last_mut() {
            Some(t) if last_subject == Some(subject) => t.children.push(Tree {
                msg: Some(m),
                children: Vec::new(),
            }),
            _ => threads.push(Tree {
                msg: Some(m),
                children: Vec::new(),
            }),
        }
        last_subject = Some(subject);
    }
    threads.sort_by_key(|t| position(t, msgs));
    threads
}

/// One container of the REFERENCES algorithm.
struct Container {
    msg: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
    /// The deepest chain below, never under-estimated (a detach leaves it as it was), so the
    /// depth check costs a walk up, not a walk of the subtree.
    height: usize,
}

struct Containers {
    all: Vec<Container>,
}

impl Containers {
    fn add(&mut self, msg: Option<usize>) -> usize {
        self.all.push(Container {
            msg,
            parent: None,
            children: Vec::new(),
            height: 0,
        });
        self.all.len() - 1
    }

    /// Whether `a` is `b` or one of its ancestors.
    fn is_ancestor(&self, a: usize, b: usize) -> bool {
        let mut at = Some(b);
        while let Some(c) = at {
            if c == a {
                return true;
            }
            at = self.all[c].parent;
        }
        false
    }

    fn depth(&self, c: usize) -> usize {
        let mut n = 0;
        let mut at = self.all[c].parent;
        while let Some(p) = at {
            n += 1;
            at = self.all[p].parent;
        }
        n
    }

    fn detach(&mut self, c: usize) {
        if let Some(p) = self.all[c].parent.take() {
            self.all[p].children.retain(|&k| k != c);
        }
    }

    /// Makes `parent` the parent of `child` unless that would make a loop or a chain deeper
    /// than `MAX_DEPTH`.
    fn link(&mut self, parent: usize, child: usize) -> bool {
        if self.is_ancestor(child, parent)
            || self.depth(parent) + 1 + self.all[child].height > MAX_DEPTH
        {
            return false;
        }
        self.detach(child);
        self.all[child].parent = Some(parent);
        self.all[parent].children.push(child);
        let mut h = self.all[child].height + 1;
        let mut at = Some(parent);
        while let Some(p) = at {
            if self.all[p].height >= h {
                break;
            }
            self.all[p].height = h;
            h += 1;
            at = self.all[p].parent;
        }
        true
    }

    /// Step 4: dummies without children go; a dummy's children take its place, except at the
    /// root where a dummy with several children stays.
    fn prune(&self, c: usize, root: bool) -> Vec<Tree> {
        let children: Vec<Tree> = self.all[c]
            .children
            .iter()
            .flat_map(|&k| self.prune(k, false))
            .collect();
        match self.all[c].msg {
            Some(m) => vec![Tree {
                msg: Some(m),
                children,
            }],
            None if children.is_empty() => Vec::new(),
            None if !root || children.len() == 1 => children,
            None => vec![Tree {
                msg: None,
                children,
            }],
        }
    }
}

/// REFERENCES (RFC 5256 §3, after Jamie Zawinski's algorithm).
fn references(msgs: &[Msg]) -> Vec<Tree> {
    let mut cs = Containers { all: Vec::new() };
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, m) in msgs.iter().enumerate() {
        // (1A) The message's own container; a duplicate Message-ID gets a container of its own.
        let own = match m.keys.message_id.as_deref() {
            Some(id) => match ids.get(id) {
                Some(&c) if cs.all[c].msg.is_none() => {
                    cs.all[c].msg = Some(i);
                    c
                }
                Some(_) => cs.add(Some(i)),
                None => {
                    let c = cs.add(Some(i));
                    ids.insert(id, c);
                    c
                }
            },
            None => cs.add(Some(i)),
        };
        // (1B) Each reference the parent of the next, where none has a parent yet.
        let mut prev: Option<usize> = None;
        for r in &m.parents {
            let c = match ids.get(r.as_str()) {
                Some(&c) => c,
                None => {
                    let c = cs.add(None);
                    ids.insert(r.as_str(), c);
                    c
                }
            };
            if let Some(p) = prev
                && p != c
                && cs.all[c].parent.is_none()
            {
                cs.link(p, c);
            }
            prev = Some(c);
        }
        // (1C) The link to any parent it had is broken (a truncated References: made it), and
        // the last reference becomes its parent unless that makes a loop (or too deep a chain).
        cs.detach(own);
        if let Some(p) = prev
            && p != own
        {
            cs.link(p, own);
        }
    }
    // (2)-(4) The root set, pruned.
    let roots: Vec<usize> = (0..cs.all.len())
        .filter(|&c| cs.all[c].parent.is_none())
        .collect();
    let mut trees: Vec<Tree> = roots.iter().flat_map(|&c| cs.prune(c, true)).collect();
    // (5) Sorted, so that subject merging meets threads in date order.
    sort_siblings(&mut trees, msgs);
    // (6) Threads with the same base subject are merged.
    let subject_of = |t: &Tree| -> Option<usize> {
        t.msg
            .or_else(|| t.children.first().and_then(|c| c.msg))
            .filter(|&m| !msgs[m].keys.subject.is_empty())
    };
    let mut table: HashMap<&str, usize> = HashMap::new();
    for (i, t) in trees.iter().enumerate() {
        let Some(m) = subject_of(t) else { continue };
        let subject = msgs[m].keys.subject.as_str();
        match table.get(subject) {
            None => {
                table.insert(subject, i);
            }
            Some(&j) => {
                let held = &trees[j];
                let held_reply = subject_of(held).is_some_and(|h| msgs[h].keys.is_reply);
                if (t.msg.is_none() && held.msg.is_some()) || (held_reply && !msgs[m].keys.is_reply)
                {
                    table.insert(subject, i);
                }
            }
        }
    }
    let mut slots: Vec<Option<Tree>> = trees.iter().cloned().map(Some).collect();
    for i in 0..trees.len() {
        let Some(m) = subject_of(&trees[i]) else {
            continue;
        };
        let Some(&j) = table.get(msgs[m].keys.subject.as_str()) else {
            continue;
        };
        if i == j {
            continue;
        }
        let (Some(this), Some(held)) = (slots[i].take(), slots[j].take()) else {
            continue;
        };
        let this_reply = msgs[m].keys.is_reply;
        let held_reply = subject_of(&held).is_some_and(|h| msgs[h].keys.is_reply);
        let merged = match (held.msg, this.msg) {
            // Both dummies: one set of children.
            (None, None) => {
                let mut held = held;
                held.children.extend(this.children);
                held
            }
            // One dummy: the message joins the dummy's children.
            (None, Some(_)) => {
                let mut held = held;
                held.children.push(this);
                held
            }
            (Some(_), None) => {
                let mut this = this;
                this.children.push(held);
                this
            }
            // The held one is the original and this a reply or forward: a child of it.
            (Some(_), Some(_)) if !held_reply && this_reply => {
                let mut held = held;
                held.children.push(this);
                held
            }
            // Otherwise both become siblings under a new dummy.
            _ => Tree {
                msg: None,
                children: vec![held, this],
            },
        };
        slots[j] = Some(merged);
    }
    let mut trees: Vec<Tree> = slots.into_iter().flatten().collect();
    // (7) Every set of siblings in date order.
    sort_siblings(&mut trees, msgs);
    trees
}

/// `(…)` for one thread.
fn write_thread(t: &Tree, msgs: &[Msg], out: &mut String) {
    out.push('(');
    write_members(t, msgs, out);
    out.push(')');
}

fn write_members(t: &Tree, msgs: &[Msg], out: &mut String) {
    match t.msg {
        Some(m) => {
            out.push_str(&msgs[m].num.to_string());
            match t.children.as_slice() {
                [] => {}
                [only] => {
                    out.push(' ');
                    write_members(only, msgs, out);
                }
                many => {
                    out.push(' ');
                    for c in many {
                        write_thread(c, msgs, out);
                    }
                }
            }
        }
        None => match t.children.as_slice() {
            [only] => write_members(only, msgs, out),
            many => {
                for c in many {
                    write_thread(c, msgs, out);
                }
            }
        },
    }
}

impl Session {
    pub(crate) async fn thread(
        &mut self,
        uid: bool,
        algorithm: ThreadAlgorithm,
        charset: &str,
        key: SearchKey,
        out: &mut Output,
    ) -> Done {
        let hits = match self.search_hits(Some(charset), &key, out).await {
            Ok(h) => h,
            Err(d) => return d,
        };
        let keys = match self.sort_keys_of(&hits).await {
            Ok(k) => k,
            Err(e) => return Done::store(e),
        };
        let Some(sel) = self.selected.as_ref() else {
            return Done::bad("No mailbox selected");
        };
        let mut msgs: Vec<Msg> = Vec::with_capacity(hits.len());
        for (&i, keys) in hits.iter().zip(keys) {
            let entry = &sel.msgs[i];
            let parents = match &keys.parents {
                Some(p) => p.clone(),
                // A summary from before References: was kept: read the header.
                None if algorithm == ThreadAlgorithm::References => {
                    match self.backend.messages.raw(entry.message_id).await {
                        Ok(raw) => header_parents(&raw),
                        Err(_) => Vec::new(),
                    }
                }
                None => Vec::new(),
            };
            msgs.push(Msg {
                num: if uid {
                    entry.uid
                } else {
                    u32::try_from(i + 1).unwrap_or(u32::MAX)
                },
                date: keys.sent_date.unwrap_or(entry.internal_date),
                keys,
                parents,
            });
        }
        let trees = match algorithm {
            ThreadAlgorithm::OrderedSubject => ordered_subject(&msgs),
            ThreadAlgorithm::References => references(&msgs),
        };
        let mut line = String::from("* THREAD ");
        for t in &trees {
            write_thread(t, &msgs, &mut line);
        }
        let line = line.trim_end();
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
        Done::ok(if uid {
            "UID THREAD completed"
        } else {
            "THREAD completed"
        })
    }
}

/// References:/In-Reply-To: parents read from a raw header (older summaries).
fn header_parents(raw: &[u8]) -> Vec<String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let text = String::from_utf8_lossy(&raw[..end]);
    let field = |name: &str| -> String {
        let mut value = String::new();
        let mut inside = false;
        for line in text.split('\n') {
            let line = line.trim_end_matches('\r');
            if line.starts_with([' ', '\t']) {
                if inside {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            inside = line
                .get(..name.len() + 1)
                .is_some_and(|p| p.eq_ignore_ascii_case(&format!("{name}:")));
            if inside {
                value.push_str(&line[name.len() + 1..]);
            }
        }
        value
    };
    let references = field("references");
    let in_reply_to = field("in-reply-to");
    thread_parents(&references, &in_reply_to)
}
