//! FETCH and UID FETCH: flags, dates and sizes from the index, ENVELOPE/BODYSTRUCTURE from the
//! stored summary (never the blob), BODY[section]<partial>/BINARY from the blob; a non-PEEK body
//! fetch sets \Seen and reports the new FLAGS. The whole body of a large message (BODY[],
//! BODY[]<partial>, RFC822) is not loaded: the output carries a reader the loop streams.

use tracing::warn;
use wharf_mime::{Section, SectionSpec, Summary};
use wharf_store::{FlagOp, Flags, MessageContent, MessageEntry, StoreError};

use crate::backend::BodyReader;
use crate::output::{BodyPiece, Output};
use crate::session::{Done, Session};
use crate::syntax::{FetchItem, SeqSet, response};

/// Output size after which a FETCH yields to the connection loop, so a FETCH of many large
/// messages is written out piece by piece instead of built whole in memory.
const FETCH_CHUNK: usize = 256 * 1024;
/// Most messages whose stored data one store call reads (the chunk size bounds it in bytes).
const FETCH_BATCH: usize = 256;
/// Messages above this size have their whole-body items streamed from a reader rather than
/// read with the batch (small ones keep the batched read: one blob round trip for many).
pub(crate) const STREAM_MIN: u64 = 64 * 1024;

/// A FETCH in progress (it resumes with `Session::resume`).
pub(crate) struct FetchJob {
    pub tag: String,
    uid: bool,
    items: Vec<FetchItem>,
    idxs: Vec<usize>,
    pos: usize,
    seen_now: std::collections::HashSet<u32>,
    failure: Option<Done>,
    needs_summary: bool,
    needs_raw: bool,
    /// Whole-body items of large messages are streamed (no other item needs the raw message).
    stream_large: bool,
}

/// One FETCH data item as written: its text, then (for a streamed body) the body itself.
struct Part {
    text: Vec<u8>,
    body: Option<BodyPiece>,
}

/// BODY[] or RFC822: the message exactly as stored.
fn whole_body(item: &FetchItem) -> bool {
    match item {
        FetchItem::Rfc822 => true,
        FetchItem::BodySection { section, .. } => {
            section.part.is_empty() && section.spec == SectionSpec::Full
        }
        _ => false,
    }
}

/// The literal for `body` cut to `partial`, streamed.
fn streamed_literal(
    text: &mut Vec<u8>,
    body: BodyReader,
    partial: Option<(u32, u32)>,
) -> BodyPiece {
    let (skip, len) = match partial {
        None => (0, body.len),
        Some((start, len)) => {
            let s = u64::from(start).min(body.len);
            (s, u64::from(len).min(body.len - s))
        }
    };
    text.extend_from_slice(format!("{{{len}}}\r\n").as_bytes());
    BodyPiece {
        reader: body.reader,
        skip,
        len,
    }
}

impl FetchJob {
    pub fn is_uid(&self) -> bool {
        self.uid
    }
}

fn section_label(s: &Section) -> String {
    let mut parts: Vec<String> = s.part.iter().map(|p| p.to_string()).collect();
    match &s.spec {
        SectionSpec::Full => {}
        SectionSpec::Header => parts.push("HEADER".into()),
        SectionSpec::Text => parts.push("TEXT".into()),
        SectionSpec::Mime => parts.push("MIME".into()),
        SectionSpec::HeaderFields { names, not } => {
            let mut l = Vec::new();
            for n in names {
                response::astring(&mut l, n);
                l.push(b' ');
            }
            l.pop();
            parts.push(format!(
                "HEADER.FIELDS{} ({})",
                if *not { ".NOT" } else { "" },
                String::from_utf8_lossy(&l)
            ));
        }
    }
    parts.join(".")
}

/// A message this session still shows whose row is gone was expunged by another session that
/// this one has not yet announced: RFC 9051 §7.1 `EXPUNGEISSUED`, not `NONEXISTENT` (the client
/// asked for a message that, as far as it may know, exists).
fn lost_message(e: StoreError) -> Done {
    match e {
        StoreError::NotFound(_) => Done::no(Some("EXPUNGEISSUED"), "Some messages were expunged"),
        other => Done::store(other),
    }
}

fn partial_slice(data: &[u8], partial: Option<(u32, u32)>) -> &[u8] {
    match partial {
        None => data,
        Some((start, len)) => {
            let s = (start as usize).min(data.len());
            let e = s.saturating_add(len as usize).min(data.len());
            &data[s..e]
        }
    }
}

fn partial_label(partial: Option<(u32, u32)>) -> String {
    partial.map(|(s, _)| format!("<{s}>")).unwrap_or_default()
}

fn sets_seen(item: &FetchItem) -> bool {
    matches!(
        item,
        FetchItem::Rfc822
            | FetchItem::Rfc822Text
            | FetchItem::BodySection { peek: false, .. }
            | FetchItem::Binary { peek: false, .. }
    )
}

impl Session {
    pub(crate) async fn fetch(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        items: &[FetchItem],
        changed_since: Option<u64>,
        out: &mut Output,
    ) -> Done {
        let mut items = items.to_vec();
        if changed_since.is_some() || items.contains(&FetchItem::ModSeq) {
            self.enable_condstore(out);
            // CHANGEDSINCE implies MODSEQ (RFC 7162 §3.1.4.1).
            if !items.contains(&FetchItem::ModSeq) {
                items.push(FetchItem::ModSeq);
            }
        }
        let items = &items[..];
        let Some(sel) = self.selected.as_ref() else {
            return Done::bad("No mailbox selected");
        };
        let mut idxs = match sel.resolve(set, uid, &self.saved) {
            Ok(i) => i,
            Err(m) => return Done::bad(m),
        };
        if let Some(since) = changed_since {
            idxs.retain(|&i| sel.msgs[i].modseq > since);
        }
        let mb_id = sel.mailbox.id;
        // The implicit \Seen needs `s` (RFC 4314 §4); without it the fetch goes on unseen.
        let may_set_seen = sel.flag_rights().contains(wharf_store::Rights::SEEN);
        // BODY[] / BODY.PEEK[] of the whole message is the raw blob as stored: no summary needed.
        let needs_summary = items.iter().any(|i| match i {
            FetchItem::BodySection { section, .. } => {
                !(section.part.is_empty() && section.spec == SectionSpec::Full)
            }
            other => matches!(
                other,
                FetchItem::Envelope
                    | FetchItem::Body
                    | FetchItem::BodyStructure
                    | FetchItem::Binary { .. }
                    | FetchItem::BinarySize { .. }
                    | FetchItem::Rfc822Header
                    | FetchItem::Rfc822Text
                    | FetchItem::Preview
                    | FetchItem::EmailId
            ),
        });
        let raw_item = |i: &FetchItem| {
            matches!(
                i,
                FetchItem::BodySection { .. }
                    | FetchItem::Binary { .. }
                    | FetchItem::BinarySize { .. }
                    | FetchItem::Rfc822
                    | FetchItem::Rfc822Header
                    | FetchItem::Rfc822Text
            )
        };
        let needs_raw = items.iter().any(raw_item);
        let stream_large =
            items.iter().any(whole_body) && !items.iter().any(|i| raw_item(i) && !whole_body(i));
        // \Seen first, so that the FLAGS we report are the ones stored.
        let mut seen_now = std::collections::HashSet::new();
        if may_set_seen && items.iter().any(sets_seen) {
            let uids: Vec<u32> = idxs
                .iter()
                .map(|&i| &sel.msgs[i])
                .filter(|m| !m.flags.contains(Flags::SEEN))
                .map(|m| m.uid)
                .collect();
            if !uids.is_empty() {
                match self
                    .backend
                    .messages
                    .store_flags(mb_id, &uids, FlagOp::Add, Flags::SEEN, &[], None)
                    .await
                {
                    Ok((updates, _)) => {
                        if let Some(sel) = self.selected.as_mut() {
                            for u in updates {
                                if let Some(i) = sel.index_of(u.uid) {
                                    let m = &mut sel.msgs[i];
                                    m.flags = u.flags;
                                    m.keywords = u.keywords;
                                    m.modseq = u.modseq;
                                    seen_now.insert(u.uid);
                                }
                            }
                        }
                    }
                    Err(e) => return Done::store(e),
                }
            }
        }
        let job = FetchJob {
            tag: tag.to_string(),
            uid,
            items: items.to_vec(),
            idxs,
            pos: 0,
            seen_now,
            failure: None,
            needs_summary,
            needs_raw,
            stream_large,
        };
        self.fetch_run(job, out).await
    }

    /// Writes FETCH responses until done or until the output chunk is full.
    pub(crate) async fn fetch_run(&mut self, mut job: FetchJob, out: &mut Output) -> Done {
        let Some(sel) = self.selected.as_ref() else {
            return Done::bad("No mailbox selected");
        };
        let (uid, needs_summary, needs_raw) = (job.uid, job.needs_summary, job.needs_raw);
        let start_len = out.buffered();
        let stream_large = job.stream_large;
        let streamed = |m: &MessageEntry| stream_large && m.size > STREAM_MIN;
        // Messages whose stored data was read but not yet written out (front = next to write).
        let mut batch: std::collections::VecDeque<Option<wharf_store::Result<MessageContent>>> =
            std::collections::VecDeque::new();
        'messages: while job.pos < job.idxs.len() {
            if batch.is_empty() {
                // A streamed body ends the step: one open body reader per session at a time.
                if out.buffered() - start_len > FETCH_CHUNK || out.has_body() {
                    self.fetch_job = Some(job);
                    return Done::pending(crate::session::Next::More);
                }
                if needs_raw || needs_summary {
                    // One metadata query and one batch of blob reads per output chunk, not two
                    // round trips and a file open per message.
                    let mut end = job.pos;
                    let mut bytes = 0u64;
                    while end < job.idxs.len()
                        && end - job.pos < FETCH_BATCH
                        && (end == job.pos || bytes < FETCH_CHUNK as u64)
                    {
                        let m = &sel.msgs[job.idxs[end]];
                        end += 1;
                        if streamed(m) {
                            break;
                        }
                        bytes += m.size;
                    }
                    let live = |want_streamed: bool| -> Vec<i64> {
                        job.idxs[job.pos..end]
                            .iter()
                            .map(|&i| &sel.msgs[i])
                            .filter(|m| streamed(m) == want_streamed)
                            .map(|m| m.message_id)
                            .collect()
                    };
                    let (loaded, for_stream) = (live(false), live(true));
                    let mut got = Vec::new().into_iter();
                    if !loaded.is_empty() {
                        got = match self
                            .backend
                            .messages
                            .contents(&loaded, needs_summary, needs_raw)
                            .await
                        {
                            Ok(v) => v.into_iter(),
                            Err(e) => return Done::store(e),
                        };
                    }
                    let mut got_streamed = Vec::new().into_iter();
                    if !for_stream.is_empty() && needs_summary {
                        got_streamed = match self
                            .backend
                            .messages
                            .contents(&for_stream, true, false)
                            .await
                        {
                            Ok(v) => v.into_iter(),
                            Err(e) => return Done::store(e),
                        };
                    }
                    for &i in &job.idxs[job.pos..end] {
                        let m = &sel.msgs[i];
                        batch.push_back(if !streamed(m) {
                            got.next()
                        } else if needs_summary {
                            got_streamed.next()
                        } else {
                            Some(Ok(MessageContent::default()))
                        });
                    }
                } else {
                    batch.push_back(None);
                }
            }
            let content = batch.pop_front().flatten();
            let i = job.idxs[job.pos];
            job.pos += 1;
            let items = &job.items;
            let m: MessageEntry = sel.msgs[i].clone();
            let recent = !self.rev2 && sel.recent.contains(&m.uid);
            // A message expunged elsewhere and not yet announced is still read while its body
            // stays (the store's grace period); only once it is gone does the FETCH end
            // NO [EXPUNGEISSUED] (`lost_message`).
            let content = match content {
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    job.failure = Some(lost_message(e));
                    continue;
                }
                None if needs_raw || needs_summary => {
                    job.failure = Some(Done::no(Some("SERVERBUG"), "Message data missing"));
                    continue;
                }
                None => MessageContent::default(),
            };
            let summary = match content.summary.as_deref().map(Summary::decode) {
                None => None,
                Some(Ok(s)) => Some(s),
                Some(Err(e)) => {
                    warn!(session = self.id, uid = m.uid, error = %e, "summary unreadable");
                    job.failure = Some(Done::no(Some("SERVERBUG"), "Message summary unreadable"));
                    continue;
                }
            };
            let raw = content.raw.as_deref().unwrap_or(&[]);
            let stream_this = streamed(&m);
            let mut parts: Vec<Part> = Vec::new();
            let mut has_uid = false;
            let mut has_flags = false;
            for it in items {
                let mut p = Vec::new();
                let mut body = None;
                match it {
                    FetchItem::Uid => {
                        has_uid = true;
                        p.extend_from_slice(format!("UID {}", m.uid).as_bytes());
                    }
                    FetchItem::Flags => {
                        has_flags = true;
                        p.extend_from_slice(
                            format!(
                                "FLAGS {}",
                                response::flag_list(m.flags, &m.keywords, recent)
                            )
                            .as_bytes(),
                        );
                    }
                    FetchItem::InternalDate => p.extend_from_slice(
                        format!(
                            "INTERNALDATE \"{}\"",
                            response::internal_date(m.internal_date)
                        )
                        .as_bytes(),
                    ),
                    FetchItem::Rfc822Size => {
                        p.extend_from_slice(format!("RFC822.SIZE {}", m.size).as_bytes())
                    }
                    FetchItem::ModSeq => {
                        p.extend_from_slice(format!("MODSEQ ({})", m.modseq).as_bytes())
                    }
                    FetchItem::Preview => {
                        p.extend_from_slice(b"PREVIEW ");
                        match content.preview.as_deref() {
                            None | Some("") => p.extend_from_slice(b"NIL"),
                            // 8-bit text travels in a literal unless UTF-8 was enabled.
                            Some(text) if !self.utf8 && !text.is_ascii() => {
                                response::literal(&mut p, text.as_bytes(), false)
                            }
                            Some(text) => response::string(&mut p, text.as_bytes()),
                        }
                    }
                    FetchItem::EmailId => match content.email_id.as_deref() {
                        Some(id) => p.extend_from_slice(format!("EMAILID ({id})").as_bytes()),
                        None => p.extend_from_slice(b"EMAILID NIL"),
                    },
                    FetchItem::ThreadId => p.extend_from_slice(b"THREADID NIL"),
                    FetchItem::SaveDate => p.extend_from_slice(
                        format!("SAVEDATE \"{}\"", response::internal_date(m.saved_at)).as_bytes(),
                    ),
                    FetchItem::Envelope => {
                        if let Some(s) = &summary {
                            p.extend_from_slice(b"ENVELOPE ");
                            p.extend_from_slice(s.envelope().as_bytes());
                        }
                    }
                    FetchItem::Body => {
                        if let Some(s) = &summary {
                            p.extend_from_slice(b"BODY ");
                            p.extend_from_slice(s.body_structure(false).as_bytes());
                        }
                    }
                    FetchItem::BodyStructure => {
                        if let Some(s) = &summary {
                            p.extend_from_slice(b"BODYSTRUCTURE ");
                            p.extend_from_slice(s.body_structure(true).as_bytes());
                        }
                    }
                    FetchItem::Rfc822 if stream_this => {
                        p.extend_from_slice(b"RFC822 ");
                        match self.backend.messages.open_body(m.message_id).await {
                            Ok(b) => body = Some(streamed_literal(&mut p, b, None)),
                            Err(e) => {
                                job.failure = Some(lost_message(e));
                                continue 'messages;
                            }
                        }
                    }
                    FetchItem::Rfc822 => {
                        p.extend_from_slice(b"RFC822 ");
                        response::literal(&mut p, raw, false);
                    }
                    FetchItem::Rfc822Header | FetchItem::Rfc822Text => {
                        let (label, spec) = if *it == FetchItem::Rfc822Header {
                            ("RFC822.HEADER ", SectionSpec::Header)
                        } else {
                            ("RFC822.TEXT ", SectionSpec::Text)
                        };
                        p.extend_from_slice(label.as_bytes());
                        let sec = Section {
                            part: Vec::new(),
                            spec,
                        };
                        match summary.as_ref().and_then(|s| s.section(raw, &sec)) {
                            Some(d) => response::literal(&mut p, &d, false),
                            None => p.extend_from_slice(b"NIL"),
                        }
                    }
                    FetchItem::BodySection {
                        section, partial, ..
                    } => {
                        p.extend_from_slice(
                            format!(
                                "BODY[{}]{} ",
                                section_label(section),
                                partial_label(*partial)
                            )
                            .as_bytes(),
                        );
                        if stream_this && whole_body(it) {
                            match self.backend.messages.open_body(m.message_id).await {
                                Ok(b) => body = Some(streamed_literal(&mut p, b, *partial)),
                                Err(e) => {
                                    job.failure = Some(lost_message(e));
                                    continue 'messages;
                                }
                            }
                            parts.push(Part { text: p, body });
                            continue;
                        }
                        let data = if section.part.is_empty() && section.spec == SectionSpec::Full {
                            Some(std::borrow::Cow::Borrowed(raw))
                        } else {
                            summary.as_ref().and_then(|s| s.section(raw, section))
                        };
                        match data {
                            Some(d) => {
                                response::literal(&mut p, partial_slice(&d, *partial), false)
                            }
                            None => p.extend_from_slice(b"NIL"),
                        }
                    }
                    FetchItem::Binary { part, partial, .. } => {
                        let label = part
                            .iter()
                            .map(|x| x.to_string())
                            .collect::<Vec<_>>()
                            .join(".");
                        let data = match &summary {
                            Some(_) if part.is_empty() => Ok(Some(raw.to_vec())),
                            Some(s) => s.binary(raw, part),
                            None => Ok(None),
                        };
                        match data {
                            Ok(d) => {
                                p.extend_from_slice(
                                    format!("BINARY[{label}]{} ", partial_label(*partial))
                                        .as_bytes(),
                                );
                                match d {
                                    Some(d) => {
                                        let slice = partial_slice(&d, *partial);
                                        response::literal(&mut p, slice, slice.contains(&0));
                                    }
                                    None => p.extend_from_slice(b"NIL"),
                                }
                            }
                            Err(wharf_mime::MimeError::UnknownCte(_)) => {
                                return Done::no(
                                    Some("UNKNOWN-CTE"),
                                    "Unknown content-transfer-encoding",
                                );
                            }
                            Err(e) => {
                                warn!(session = self.id, error = %e, "BINARY failed");
                                return Done::no(Some("SERVERBUG"), "Cannot decode part");
                            }
                        }
                    }
                    FetchItem::BinarySize { part } => {
                        let label = part
                            .iter()
                            .map(|x| x.to_string())
                            .collect::<Vec<_>>()
                            .join(".");
                        let size = match &summary {
                            Some(_) if part.is_empty() => Ok(Some(raw.len() as u64)),
                            Some(s) => s.binary_size(raw, part),
                            None => Ok(None),
                        };
                        match size {
                            Ok(Some(n)) => {
                                p.extend_from_slice(format!("BINARY.SIZE[{label}] {n}").as_bytes())
                            }
                            Ok(None) => {
                                p.extend_from_slice(format!("BINARY.SIZE[{label}] NIL").as_bytes())
                            }
                            Err(wharf_mime::MimeError::UnknownCte(_)) => {
                                return Done::no(
                                    Some("UNKNOWN-CTE"),
                                    "Unknown content-transfer-encoding",
                                );
                            }
                            Err(_) => return Done::no(Some("SERVERBUG"), "Cannot decode part"),
                        }
                    }
                }
                if !p.is_empty() {
                    parts.push(Part { text: p, body });
                }
            }
            if uid && !has_uid {
                parts.insert(
                    0,
                    Part {
                        text: format!("UID {}", m.uid).into_bytes(),
                        body: None,
                    },
                );
            }
            if job.seen_now.contains(&m.uid) {
                if !has_flags {
                    parts.push(Part {
                        text: format!(
                            "FLAGS {}",
                            response::flag_list(m.flags, &m.keywords, recent)
                        )
                        .into_bytes(),
                        body: None,
                    });
                }
                // A flag change under CONDSTORE is reported with its UID and MODSEQ (§3.1).
                if self.condstore {
                    if !has_uid && !uid {
                        parts.insert(
                            0,
                            Part {
                                text: format!("UID {}", m.uid).into_bytes(),
                                body: None,
                            },
                        );
                    }
                    if !items.contains(&FetchItem::ModSeq) {
                        parts.push(Part {
                            text: format!("MODSEQ ({})", m.modseq).into_bytes(),
                            body: None,
                        });
                    }
                }
            }
            out.extend_from_slice(format!("* {} FETCH (", i + 1).as_bytes());
            for (k, part) in parts.into_iter().enumerate() {
                if k > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(&part.text);
                if let Some(b) = part.body {
                    out.body(b);
                }
            }
            out.extend_from_slice(b")\r\n");
        }
        match job.failure {
            Some(f) => f,
            None => Done::ok(if uid {
                "UID FETCH completed"
            } else {
                "FETCH completed"
            }),
        }
    }
}
