//! NOTIFY (RFC 5465 §8): `NOTIFY NONE` and `NOTIFY SET [STATUS] (filter events) …`. The
//! composition rules of §5 and §6.1 are checked here (they are BAD); unsupported event names are
//! collected, not refused, because they get `NO [BADEVENT]` (§3.1).

use super::{PResult, Parser};
use crate::syntax::command::*;

/// Event groups in one NOTIFY command.
const MAX_GROUPS: usize = 64;

/// Events named in one group (there are eight defined; the rest is room for unknown ones).
const MAX_EVENTS: usize = 32;

impl Parser<'_> {
    pub(super) fn notify(&mut self) -> PResult<CommandKind> {
        self.sp()?;
        if self.keyword("NONE") {
            return Ok(CommandKind::Notify(None));
        }
        if !self.keyword("SET") {
            return Err("NOTIFY takes SET or NONE".into());
        }
        self.sp()?;
        let status = self.keyword("STATUS");
        if status {
            self.sp()?;
        }
        let mut groups = Vec::new();
        let mut names = 0usize;
        loop {
            if groups.len() >= MAX_GROUPS {
                return Err("too many NOTIFY event groups".into());
            }
            self.expect(b'(')?;
            let filter = self.notify_filter(&mut names)?;
            self.sp()?;
            let events = self.notify_events()?;
            self.expect(b')')?;
            check_group(&filter, &events)?;
            groups.push((filter, events));
            if !self.eat(b' ') {
                break;
            }
        }
        let selected = groups
            .iter()
            .filter(|(f, _)| matches!(f, NotifyFilter::Selected { .. }))
            .count();
        if selected > 1 {
            return Err("selected and selected-delayed may be given once between them".into());
        }
        Ok(CommandKind::Notify(Some(NotifySet { status, groups })))
    }

    /// `filter-mailboxes` (RFC 5465 §6).
    fn notify_filter(&mut self, names: &mut usize) -> PResult<NotifyFilter> {
        let f = self.atom()?.to_ascii_lowercase();
        Ok(match f.as_str() {
            "selected" => NotifyFilter::Selected { delayed: false },
            "selected-delayed" => NotifyFilter::Selected { delayed: true },
            "inboxes" => NotifyFilter::Other(SourceFilter::Inboxes),
            "personal" => NotifyFilter::Other(SourceFilter::Personal),
            "subscribed" => NotifyFilter::Other(SourceFilter::Subscribed),
            "subtree" => {
                self.sp()?;
                NotifyFilter::Other(SourceFilter::Subtree(self.one_or_more_mailbox(names)?))
            }
            "mailboxes" => {
                self.sp()?;
                NotifyFilter::Other(SourceFilter::Mailboxes(self.one_or_more_mailbox(names)?))
            }
            _ => return Err(format!("unknown NOTIFY mailbox filter {f}")),
        })
    }

    /// `events`: `NONE` or a parenthesised list of event names.
    fn notify_events(&mut self) -> PResult<NotifyEvents> {
        let mut ev = NotifyEvents::default();
        if self.keyword("NONE") {
            return Ok(ev);
        }
        self.expect(b'(')?;
        let mut count = 0usize;
        self.items_until_close(false, |p| {
            count += 1;
            if count > MAX_EVENTS {
                return Err("too many NOTIFY events".to_string());
            }
            let name = p.atom()?;
            match name.to_ascii_lowercase().as_str() {
                "messagenew" => {
                    ev.message_new = true;
                    if p.rest().starts_with(b" (") {
                        p.sp()?;
                        p.expect(b'(')?;
                        let mut items = Vec::new();
                        p.items_until_close(false, |p| p.fetch_att(&mut items))?;
                        ev.fetch = items;
                    }
                }
                "messageexpunge" => ev.message_expunge = true,
                "flagchange" => ev.flag_change = true,
                "mailboxname" => ev.mailbox_name = true,
                "subscriptionchange" => ev.subscription_change = true,
                "mailboxmetadatachange" => ev.mailbox_metadata_change = true,
                "servermetadatachange" => ev.server_metadata_change = true,
                _ => ev.unsupported.push(name),
            }
            Ok(())
        })?;
        Ok(ev)
    }
}

/// RFC 5465 §5: MessageNew and MessageExpunge come together, and FlagChange needs both; §6.1:
/// the selected mailbox's groups take message events only.
fn check_group(filter: &NotifyFilter, ev: &NotifyEvents) -> PResult<()> {
    if ev.message_new != ev.message_expunge {
        return Err("MessageNew and MessageExpunge must be given together".into());
    }
    if ev.flag_change && !ev.message_new {
        return Err("FlagChange needs MessageNew and MessageExpunge".into());
    }
    if matches!(filter, NotifyFilter::Selected { .. }) && ev.mailbox_events() {
        return Err("only message events may be given for the selected mailbox".into());
    }
    Ok(())
}
