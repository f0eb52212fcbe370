//! Whether a `vacation` command may answer this message (RFC 5230 §4.5–4.6, RFC 3834) and what
//! the reply looks like. Rate limiting per (handle, sender) is left to the caller, which knows
//! when it last replied.

use crate::address::local_part;
use crate::context::{Context, RunLimits};
use crate::ids::short_hash;
use crate::message::{MessageView, addresses};
use crate::outcome::VacationReply;
use crate::script::Period;

/// The vacation arguments after variable expansion.
pub(crate) struct Request {
    pub period: Period,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub addresses: Vec<String>,
    pub mime: bool,
    pub handle: Option<String>,
    pub reason: String,
}

const DAY: u64 = 24 * 3600;

pub(crate) fn period_seconds(period: Period, limits: &RunLimits) -> u64 {
    let max_days = u64::from(limits.max_vacation_days.max(1));
    let max = max_days * DAY;
    match period {
        Period::Default => 7u64.min(max_days) * DAY,
        Period::Days(d) => d.max(1).min(max_days) * DAY,
        // RFC 6131: 0 means reply every time; other values are held to the site minimum.
        Period::Seconds(0) => 0,
        Period::Seconds(s) => s.max(limits.min_vacation_seconds).min(max),
    }
}

/// None when the message must not be answered.
pub(crate) fn reply(
    req: Request,
    msg: &MessageView<'_>,
    ctx: &Context<'_>,
    limits: &RunLimits,
) -> Option<VacationReply> {
    let sender = ctx.envelope.from.trim();
    if sender.is_empty() || is_automated_sender(sender) {
        return None;
    }
    if is_automated_message(msg) {
        return None;
    }
    let own: Vec<String> = ctx
        .user_addresses
        .iter()
        .chain(req.addresses.iter())
        .chain(std::iter::once(&ctx.envelope.to))
        .map(|a| normalize(a))
        .filter(|a| !a.is_empty())
        .collect();
    // Never answer ourselves: that is how reply loops between two vacations start.
    if own.contains(&normalize(sender)) {
        return None;
    }
    let addressed_to_us = ["to", "cc", "bcc", "resent-to", "resent-cc"]
        .iter()
        .flat_map(|name| msg.named(name, None))
        .flat_map(|f| addresses(&f.raw))
        .any(|a| own.contains(&normalize(&a)));
    if !addressed_to_us {
        return None;
    }

    let handle = req.handle.clone().unwrap_or_else(|| {
        let joined = req.addresses.join("\n");
        short_hash(&[
            req.subject.as_deref().unwrap_or(""),
            req.from.as_deref().unwrap_or(""),
            &req.reason,
            &joined,
            if req.mime { "mime" } else { "" },
        ])
    });
    let subject =
        req.subject.unwrap_or_else(
            || match msg.first_value("subject").filter(|s| !s.is_empty()) {
                Some(s) => format!("Auto: {s}"),
                None => "Automated reply".to_string(),
            },
        );
    let message_id = msg.first_value("message-id").filter(|s| !s.is_empty());
    let references = message_id.as_ref().map(|id| {
        match msg.first_value("references").filter(|s| !s.is_empty()) {
            Some(r) => format!("{r} {id}"),
            None => id.clone(),
        }
    });
    Some(VacationReply {
        to: sender.to_string(),
        from: req.from,
        subject,
        body: req.reason,
        mime: req.mime,
        handle,
        period_seconds: period_seconds(req.period, limits),
        in_reply_to: message_id,
        references,
    })
}

/// Lower-cased, angle brackets and any "+detail" dropped, so "Ken+x@Example.org" counts as
/// "ken@example.org".
fn normalize(addr: &str) -> String {
    let a = addr.trim().trim_start_matches('<').trim_end_matches('>');
    let a = a.to_ascii_lowercase();
    match a.rfind('@') {
        Some(at) => {
            let (local, domain) = a.split_at(at);
            let user = local.split_once('+').map_or(local, |(u, _)| u);
            format!("{user}{domain}")
        }
        None => a,
    }
}

/// RFC 5230 §4.6: mail daemons and list software.
fn is_automated_sender(sender: &str) -> bool {
    let local = local_part(sender).to_ascii_lowercase();
    matches!(local.as_str(), "mailer-daemon" | "listserv" | "majordomo")
        || local.starts_with("owner-")
        || local.ends_with("-request")
}

/// RFC 3834 §2 and list headers (RFC 2369, RFC 2919).
fn is_automated_message(msg: &MessageView<'_>) -> bool {
    for f in msg.named("auto-submitted", None) {
        let v = crate::message::decode(&f.raw);
        let token = v.split([';', '(']).next().unwrap_or("").trim();
        if !token.eq_ignore_ascii_case("no") {
            return true;
        }
    }
    for f in msg.named("precedence", None) {
        let v = crate::message::decode(&f.raw);
        if ["bulk", "list", "junk"]
            .iter()
            .any(|p| v.eq_ignore_ascii_case(p))
        {
            return true;
        }
    }
    const LIST_FIELDS: &[&str] = &[
        "list-id",
        "list-help",
        "list-unsubscribe",
        "list-subscribe",
        "list-post",
        "list-owner",
        "list-archive",
    ];
    LIST_FIELDS.iter().any(|n| msg.has(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        let l = RunLimits::default();
        assert_eq!(period_seconds(Period::Default, &l), 7 * DAY);
        assert_eq!(period_seconds(Period::Days(0), &l), DAY);
        assert_eq!(period_seconds(Period::Days(365), &l), 30 * DAY);
        assert_eq!(period_seconds(Period::Seconds(0), &l), 0);
        assert_eq!(period_seconds(Period::Seconds(5), &l), 3600);
        assert_eq!(period_seconds(Period::Seconds(u64::MAX), &l), 30 * DAY);
        let tiny = RunLimits {
            max_vacation_days: 0,
            ..RunLimits::default()
        };
        assert_eq!(period_seconds(Period::Default, &tiny), DAY);
    }

    #[test]
    fn automated_senders() {
        for s in [
            "MAILER-DAEMON@x",
            "owner-list@x",
            "list-request@x",
            "LISTSERV@x",
            "majordomo@x",
        ] {
            assert!(is_automated_sender(s), "{s}");
        }
        assert!(!is_automated_sender("joe@x"));
        assert_eq!(normalize("<Ken+x@Example.ORG>"), "ken@example.org");
    }
}
