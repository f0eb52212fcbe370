//! Runs checked scripts against one message. Owns the action list and the implicit keep
//! (RFC 5228 §2.10), the imap4flags internal variable, run limits, the reject compatibility rule
//! (RFC 5429 §2) and the final de-duplication. Recursion follows the script's block nesting,
//! which `compile` bounds, so depth is bounded too.

use crate::address;
use crate::context::{Context, RunLimits};
use crate::ids::short_hash;
use crate::matching::{MatchKind, Matcher};
use crate::message::{self, MessageView, is_field_name};
use crate::outcome::{Action, DuplicateRecord, Outcome};
use crate::script::{BodyTransform, Cmd, DupSource, FlagOp, Script, Tst};
use crate::vacation;
use crate::variables::{Str, Variables};

/// Fields a script may neither add nor delete (RFC 5293 §3 allows protecting fields): trace
/// and loop-prevention information must survive user filtering.
pub(crate) const PROTECTED_FIELDS: &[&str] = &["received", "auto-submitted"];

pub fn run(
    scripts: &[&Script],
    raw_message: &[u8],
    ctx: &Context<'_>,
    limits: &RunLimits,
) -> Outcome {
    let mut st = State {
        msg: MessageView::parse(raw_message),
        ctx,
        limits,
        vars: Variables::new(limits.max_variable_bytes),
        flags: Vec::new(),
        instructions: 0,
        actions: Vec::new(),
        implicit_keep: true,
        discarded: false,
        vacation_seen: false,
        vacation_in_script: false,
        added_fields: 0,
        duplicates: Vec::new(),
    };
    for script in scripts {
        // Variables belong to one script; the flag variable and actions span the run.
        st.vars = Variables::new(limits.max_variable_bytes);
        st.vacation_in_script = false;
        match st.block(&script.commands) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Stop) => break,
            Err(e) => return failure(e),
        }
    }
    st.finish().unwrap_or_else(failure)
}

fn failure(error: String) -> Outcome {
    Outcome {
        actions: vec![Action::Keep { flags: Vec::new() }],
        edited_message: None,
        duplicates_to_record: Vec::new(),
        error: Some(error),
    }
}

enum Flow {
    Continue,
    Stop,
}

type R<T> = Result<T, String>;

struct State<'a> {
    msg: MessageView<'a>,
    ctx: &'a Context<'a>,
    limits: &'a RunLimits,
    vars: Variables,
    flags: Vec<String>,
    instructions: u64,
    actions: Vec<Action>,
    implicit_keep: bool,
    discarded: bool,
    vacation_seen: bool,
    /// The current script already executed `vacation` (RFC 5230 §4.7: at most once).
    vacation_in_script: bool,
    added_fields: usize,
    duplicates: Vec<DuplicateRecord>,
}

/// Flags are whitespace-separated words; duplicates are dropped case-insensitively (RFC 5232 §3).
fn add_flags(list: &mut Vec<String>, words: &[String]) {
    for w in words.iter().flat_map(|s| s.split_whitespace()) {
        if !list.iter().any(|f| f.eq_ignore_ascii_case(w)) {
            list.push(w.to_string());
        }
    }
}

fn parse_flags(words: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    add_flags(&mut out, words);
    out
}

impl<'a> State<'a> {
    fn tick(&mut self) -> R<()> {
        self.instructions += 1;
        if self.instructions > self.limits.max_instructions {
            return Err(format!(
                "instruction limit of {} exceeded",
                self.limits.max_instructions
            ));
        }
        Ok(())
    }

    fn expand(&self, s: &Str) -> String {
        s.expand(&self.vars)
    }

    fn expand_all(&self, list: &[Str]) -> Vec<String> {
        list.iter().map(|s| self.expand(s)).collect()
    }

    fn push(&mut self, action: Action) -> R<()> {
        if self.actions.len() >= self.limits.max_actions {
            return Err(format!(
                "action limit of {} exceeded",
                self.limits.max_actions
            ));
        }
        self.actions.push(action);
        Ok(())
    }

    fn action_flags(&self, flags: &Option<Vec<Str>>) -> Vec<String> {
        match flags {
            Some(list) => parse_flags(&self.expand_all(list)),
            None => self.flags.clone(),
        }
    }

    fn block(&mut self, cmds: &[Cmd]) -> R<Flow> {
        for cmd in cmds {
            self.tick()?;
            if let Flow::Stop = self.command(cmd)? {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }

    fn command(&mut self, cmd: &Cmd) -> R<Flow> {
        match cmd {
            Cmd::If {
                branches,
                otherwise,
            } => {
                for (test, body) in branches {
                    if self.test(test)? {
                        return self.block(body);
                    }
                }
                if let Some(body) = otherwise {
                    return self.block(body);
                }
            }
            Cmd::Stop => return Ok(Flow::Stop),
            Cmd::Keep { flags } => {
                let flags = self.action_flags(flags);
                self.push(Action::Keep { flags })?;
                self.implicit_keep = false;
            }
            Cmd::Discard => {
                self.implicit_keep = false;
                self.discarded = true;
            }
            Cmd::Redirect { address, copy } => {
                let raw = self.expand(address);
                let target = address::redirect_target(&raw)
                    .ok_or_else(|| format!("redirect: invalid address \"{raw}\""))?;
                let mut distinct: Vec<&str> = self
                    .actions
                    .iter()
                    .filter_map(|a| match a {
                        Action::Redirect { address, .. } => Some(address.as_str()),
                        _ => None,
                    })
                    .collect();
                distinct.push(&target);
                distinct.sort_unstable_by_key(|a| a.to_ascii_lowercase());
                distinct.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
                if distinct.len() > self.limits.max_redirects {
                    return Err(format!(
                        "redirect limit of {} exceeded",
                        self.limits.max_redirects
                    ));
                }
                self.push(Action::Redirect {
                    address: target,
                    copy: *copy,
                })?;
                if !copy {
                    self.implicit_keep = false;
                }
            }
            Cmd::FileInto {
                mailbox,
                flags,
                copy,
                create,
            } => {
                let mailbox = self.expand(mailbox);
                let flags = self.action_flags(flags);
                let exists =
                    mailbox.eq_ignore_ascii_case("inbox") || self.ctx.mailboxes.contains(&mailbox);
                // INBOX is what keep means; a missing mailbox without :create also lands there
                // (RFC 5228 §4.1 allows an alternate mailbox) rather than failing the whole run.
                if mailbox.eq_ignore_ascii_case("inbox")
                    || mailbox.is_empty()
                    || (!exists && !create)
                {
                    self.push(Action::Keep { flags })?;
                } else {
                    self.push(Action::FileInto {
                        mailbox,
                        flags,
                        create: *create,
                    })?;
                }
                if !copy {
                    self.implicit_keep = false;
                }
            }
            Cmd::Reject { reason, extended } => {
                let reason = self.expand(reason);
                self.push(Action::Reject {
                    reason,
                    extended: *extended,
                })?;
                self.implicit_keep = false;
            }
            Cmd::Vacation(v) => {
                let req = vacation::Request {
                    period: v.period,
                    subject: v.subject.as_ref().map(|s| self.expand(s)),
                    from: v.from.as_ref().map(|s| self.expand(s)),
                    addresses: self.expand_all(&v.addresses),
                    mime: v.mime,
                    handle: v.handle.as_ref().map(|s| self.expand(s)),
                    reason: self.expand(&v.reason),
                };
                // RFC 5230 §4.7: a script that executes vacation twice fails.
                if self.vacation_in_script {
                    return Err("vacation executed more than once".into());
                }
                self.vacation_in_script = true;
                // One reply per message, however many scripts ask for one.
                if !self.vacation_seen {
                    self.vacation_seen = true;
                    if let Some(reply) = vacation::reply(req, &self.msg, self.ctx, self.limits) {
                        self.push(Action::Vacation(reply))?;
                    }
                }
            }
            Cmd::Set {
                name,
                value,
                modifiers,
            } => {
                let mut v = self.expand(value);
                for m in modifiers {
                    v = m.apply(v);
                }
                self.vars.set(name, v);
            }
            Cmd::Flags {
                op,
                variable,
                flags,
            } => {
                let words = self.expand_all(flags);
                let mut list = match variable {
                    Some(name) => parse_flags(&[self.vars.get(name).to_string()]),
                    None => std::mem::take(&mut self.flags),
                };
                match op {
                    FlagOp::Set => list = parse_flags(&words),
                    FlagOp::Add => add_flags(&mut list, &words),
                    FlagOp::Remove => {
                        let gone = parse_flags(&words);
                        list.retain(|f| !gone.iter().any(|g| g.eq_ignore_ascii_case(f)));
                    }
                }
                match variable {
                    Some(name) => self.vars.set(name, list.join(" ")),
                    None => self.flags = list,
                }
            }
            Cmd::AddHeader { last, name, value } => {
                let name = self.expand(name);
                if !is_field_name(&name) {
                    return Err(format!("addheader: invalid field name \"{name}\""));
                }
                if !is_protected(&name) {
                    // Counted like actions so the header cannot grow without bound.
                    self.added_fields += 1;
                    if self.added_fields > self.limits.max_actions {
                        return Err(format!(
                            "addheader limit of {} exceeded",
                            self.limits.max_actions
                        ));
                    }
                    let mut value = self.expand(value);
                    crate::variables::truncate(&mut value, self.limits.max_variable_bytes);
                    self.msg.add_field(&name, &value, *last);
                }
            }
            Cmd::DeleteHeader {
                index,
                matcher,
                name,
                patterns,
            } => {
                let name = self.expand(name);
                if !is_field_name(&name) {
                    return Err(format!("deleteheader: invalid field name \"{name}\""));
                }
                if !is_protected(&name) {
                    let patterns = patterns.as_ref().map(|p| self.expand_all(p));
                    self.msg.delete_fields(&name, *index, |f| match &patterns {
                        None => true,
                        Some(keys) => matcher.test(&[message::decode(&f.raw)], keys).matched,
                    });
                }
            }
        }
        Ok(Flow::Continue)
    }

    /// Runs a match and publishes `:matches` captures as ${0}…${n} when it succeeds.
    fn matches(&mut self, matcher: &Matcher, values: &[String], keys: &[Str]) -> R<bool> {
        let keys = self.expand_all(keys);
        // Matching a large body against many or long patterns is real work: charge it to the
        // instruction budget (one instruction per ~100k character comparisons, worst case).
        let value_bytes: usize = values.iter().map(String::len).sum();
        let key_bytes: usize = keys.iter().map(|k| k.len().max(1)).sum();
        let work = (value_bytes as u64).saturating_mul(key_bytes as u64) / 100_000;
        self.instructions = self.instructions.saturating_add(work);
        if self.instructions > self.limits.max_instructions {
            return Err(format!(
                "instruction limit of {} exceeded while matching",
                self.limits.max_instructions
            ));
        }
        let r = matcher.test(values, &keys);
        if r.matched
            && let Some(c) = r.captures
        {
            self.vars.set_matches(c);
        }
        Ok(r.matched)
    }

    fn test(&mut self, t: &Tst) -> R<bool> {
        self.tick()?;
        Ok(match t {
            Tst::True => true,
            Tst::False => false,
            Tst::Not(inner) => !self.test(inner)?,
            Tst::AllOf(list) => {
                for x in list {
                    if !self.test(x)? {
                        return Ok(false);
                    }
                }
                true
            }
            Tst::AnyOf(list) => {
                for x in list {
                    if self.test(x)? {
                        return Ok(true);
                    }
                }
                false
            }
            Tst::Exists(names) => self.expand_all(names).iter().all(|n| self.msg.has(n)),
            Tst::Size { over, limit } => {
                let size = self.msg.size() as u64;
                if *over { size > *limit } else { size < *limit }
            }
            Tst::Header {
                matcher,
                names,
                keys,
                index,
            } => {
                let values: Vec<String> = self
                    .expand_all(names)
                    .iter()
                    .flat_map(|n| self.msg.named(n, *index))
                    .map(|f| message::decode(&f.raw))
                    .collect();
                self.matches(matcher, &values, keys)?
            }
            Tst::Address {
                matcher,
                part,
                names,
                keys,
                index,
            } => {
                let values: Vec<String> = self
                    .expand_all(names)
                    .iter()
                    .filter(|n| message::is_address_field(n))
                    .flat_map(|n| self.msg.named(n, *index))
                    .flat_map(|f| message::addresses(&f.raw))
                    .filter_map(|a| address::part(&a, *part))
                    .collect();
                self.matches(matcher, &values, keys)?
            }
            Tst::Envelope {
                matcher,
                part,
                names,
                keys,
            } => {
                let env = self.ctx.envelope;
                let values: Vec<String> = self
                    .expand_all(names)
                    .iter()
                    .filter_map(|n| match n.to_ascii_lowercase().as_str() {
                        "from" => Some(env.from.clone()),
                        "to" => Some(env.to.clone()),
                        "auth" => env.auth.clone(),
                        _ => None,
                    })
                    .filter_map(|a| address::part(&a, *part))
                    .collect();
                self.matches(matcher, &values, keys)?
            }
            Tst::Body {
                matcher,
                transform,
                keys,
            } => {
                let values = self.body_values(transform);
                self.matches(matcher, &values, keys)?
            }
            Tst::String {
                matcher,
                sources,
                keys,
            } => {
                let mut values = self.expand_all(sources);
                // RFC 5229 §5: :count counts only non-empty strings.
                if let MatchKind::Count(_) = matcher.kind {
                    values.retain(|v| !v.is_empty());
                }
                self.matches(matcher, &values, keys)?
            }
            Tst::HasFlag {
                matcher,
                variables,
                keys,
            } => {
                let values = match variables {
                    Some(names) => {
                        let raw: Vec<String> =
                            names.iter().map(|n| self.vars.get(n).to_string()).collect();
                        parse_flags(&raw)
                    }
                    None => self.flags.clone(),
                };
                let keys: Vec<Str> = parse_flags(&self.expand_all(keys))
                    .into_iter()
                    .map(Str::literal)
                    .collect();
                self.matches(matcher, &values, &keys)?
            }
            Tst::Date {
                matcher,
                zone,
                header,
                part,
                keys,
                index,
            } => {
                let name = self.expand(header);
                let local = *self.ctx.now.offset();
                let values: Vec<String> = self
                    .msg
                    .named(&name, *index)
                    .iter()
                    .filter_map(|f| message::date(&f.name, &f.raw))
                    .map(|d| part.extract(&zone.apply(d, local)))
                    .collect();
                self.matches(matcher, &values, keys)?
            }
            Tst::CurrentDate {
                matcher,
                zone,
                part,
                keys,
            } => {
                let now = zone.apply(self.ctx.now, *self.ctx.now.offset());
                self.matches(matcher, &[part.extract(&now)], keys)?
            }
            Tst::MailboxExists(names) => self
                .expand_all(names)
                .iter()
                .all(|n| n.eq_ignore_ascii_case("inbox") || self.ctx.mailboxes.contains(n)),
            Tst::Duplicate {
                handle,
                source,
                seconds,
                last,
            } => self.duplicate(handle, source, *seconds, *last),
            Tst::SpamTest {
                matcher,
                percent,
                key,
            } => {
                // RFC 5235 §3.2: "0" means the message was not tested.
                let value = match self.ctx.spam_score {
                    None => 0,
                    Some(s) if *percent => s.percent.min(100),
                    Some(s) => s.value.clamp(1, 10),
                };
                self.matches(matcher, &[value.to_string()], std::slice::from_ref(key))?
            }
            Tst::VirusTest { matcher, key } => {
                let value = self.ctx.virus_score.map_or(0, |v| v.clamp(1, 5));
                self.matches(matcher, &[value.to_string()], std::slice::from_ref(key))?
            }
        })
    }

    fn body_values(&self, transform: &BodyTransform) -> Vec<String> {
        match transform {
            BodyTransform::Raw => vec![String::from_utf8_lossy(self.msg.body_raw()).into_owned()],
            BodyTransform::Text => self
                .msg
                .body_parts()
                .iter()
                .filter(|p| p.is_text)
                .map(|p| {
                    if p.is_html {
                        mail_parser::decoders::html::html_to_text(&p.text)
                    } else {
                        p.text.clone()
                    }
                })
                .collect(),
            BodyTransform::Content(types) => {
                let types = self.expand_all(types);
                self.msg
                    .body_parts()
                    .iter()
                    .filter(|p| {
                        types.iter().any(|t| match t.split_once('/') {
                            _ if t.is_empty() => true,
                            Some((main, sub)) => {
                                p.main_type.eq_ignore_ascii_case(main)
                                    && p.sub_type.eq_ignore_ascii_case(sub)
                            }
                            None => p.main_type.eq_ignore_ascii_case(t),
                        })
                    })
                    .map(|p| p.text.clone())
                    .collect()
            }
        }
    }

    /// RFC 7352: true when this id was already recorded. The id is recorded (or, with `:last`,
    /// its expiry refreshed) for the caller to store; a message with no value to track is never
    /// a duplicate and records nothing.
    fn duplicate(&mut self, handle: &Str, source: &DupSource, seconds: u64, last: bool) -> bool {
        let value = match source {
            DupSource::MessageId => self.msg.first_value("message-id"),
            DupSource::Header(name) => {
                let name = self.expand(name);
                self.msg.first_value(&name)
            }
            DupSource::UniqueId(v) => Some(self.expand(v)),
        };
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return false;
        };
        let handle = self.expand(handle);
        let id = short_hash(&[&handle, &value]);
        let seen = self.ctx.seen_duplicates.contains(&id);
        if !seen || last {
            self.duplicates.retain(|d| d.id != id);
            self.duplicates.push(DuplicateRecord {
                id,
                expires_in_seconds: seconds,
            });
        }
        seen
    }

    fn finish(self) -> R<Outcome> {
        let rejects = self
            .actions
            .iter()
            .filter(|a| matches!(a, Action::Reject { .. }))
            .count();
        if rejects > 0 {
            let conflicting = self.actions.iter().any(|a| {
                matches!(
                    a,
                    Action::Keep { .. }
                        | Action::FileInto { .. }
                        | Action::Redirect { .. }
                        | Action::Vacation(_)
                )
            });
            if conflicting {
                return Err(
                    "reject cannot be combined with keep, fileinto, redirect or vacation".into(),
                );
            }
            if rejects > 1 {
                return Err("more than one reject".into());
            }
        }
        let mut actions: Vec<Action> = Vec::new();
        let mut all = self.actions;
        if self.implicit_keep {
            all.push(Action::Keep {
                flags: self.flags.clone(),
            });
        }
        for a in all {
            merge(&mut actions, a);
        }
        let delivered = actions
            .iter()
            .any(|a| matches!(a, Action::Keep { .. } | Action::FileInto { .. }));
        if self.discarded && !delivered {
            actions.push(Action::Discard);
        }
        Ok(Outcome {
            actions,
            edited_message: self.msg.rebuilt(),
            duplicates_to_record: self.duplicates,
            error: None,
        })
    }
}

fn is_protected(name: &str) -> bool {
    PROTECTED_FIELDS
        .iter()
        .any(|p| p.eq_ignore_ascii_case(name))
}

/// RFC 5228 §2.10.3: repeated deliveries to one place are one delivery; their flags are united.
fn merge(actions: &mut Vec<Action>, a: Action) {
    for existing in actions.iter_mut() {
        match (existing, &a) {
            (Action::Keep { flags }, Action::Keep { flags: more }) => {
                add_flags(flags, more);
                return;
            }
            (
                Action::FileInto {
                    mailbox,
                    flags,
                    create,
                },
                Action::FileInto {
                    mailbox: m2,
                    flags: more,
                    create: c2,
                },
            ) if mailbox == m2 => {
                add_flags(flags, more);
                *create |= *c2;
                return;
            }
            (
                Action::Redirect { address, copy },
                Action::Redirect {
                    address: a2,
                    copy: c2,
                },
            ) if address.eq_ignore_ascii_case(a2) => {
                *copy &= *c2;
                return;
            }
            (Action::Reject { .. }, Action::Reject { .. })
            | (Action::Vacation(_), Action::Vacation(_)) => return,
            _ => {}
        }
    }
    actions.push(a);
}
