//! The session's command receiver: assembles one command from the lines and literals the loop
//! hands in (`Input::Line`, `Input::Data`), asks for literal octets with continuation requests
//! (or none for RFC 7888 LITERAL+ non-synchronising ones), enforces the literal limits, reads away oversized
//! non-synchronising literals, and puts APPEND messages beyond the spool threshold (or beyond
//! the shared memory budget) into a temp file instead of memory. An APPEND may carry several
//! messages (MULTIAPPEND) and CATENATE text parts: `max_append` bounds all of them together, at
//! most `literal_spool_threshold` octets of them are held in memory, the rest go to the
//! command's one spool file, and at most `MAX_APPEND_LITERALS` are taken. Only message literals
//! are spooled: a mailbox name or a CATENATE URL sent as a literal stays in the command.

use std::sync::Arc;

use tracing::warn;

use crate::output::Output;
use crate::session::{Next, Session, Step};
use crate::spool::{Lease, Spool, Spooled};
use crate::syntax::literal_at_end;
use crate::syntax::parser::{MAX_APPEND_MESSAGES, MAX_CATENATE_PARTS, MAX_ENTRY_NAME};

/// Largest non-synchronising literal before login. After login (LITERAL+, RFC 7888) a
/// non-synchronising literal may be as large as the command's own limit: APPENDs of any size
/// without a round trip, spooled like synchronising ones. Before login a stranger gets no such
/// licence (a LOGIN needs no large literal).
pub const MAX_NON_SYNC_LITERAL: u64 = 4096;
/// Most message literals (messages and CATENATE text parts) one APPEND may announce: a
/// MULTIAPPEND of the most messages, and room for text parts. Past it the command is refused as
/// the literal is announced, not after everything has been received.
pub const MAX_APPEND_LITERALS: u32 = (MAX_APPEND_MESSAGES + MAX_CATENATE_PARTS) as u32;
/// Most non-synchronising literals read away in one refused command. When the client still
/// announces one after that, the rest of its stream cannot be framed: the session says BYE.
pub const MAX_DISCARD_ROUNDS: u32 = 2 * MAX_APPEND_LITERALS;
/// The lines of one command (literal octets not counted) may total this many times `max_line`:
/// room for a MULTIAPPEND of a thousand messages with flags, dates and CATENATE URLs, and a
/// bound on what a stream of empty literals can make a session hold.
const MAX_COMMAND_LINES: usize = 16;

/// A command being received.
#[derive(Debug, Default)]
pub(crate) struct Receiver {
    /// The command so far: lines and in-memory literals, as the parser reads them.
    buf: Vec<u8>,
    /// Octets of the current literal still to come.
    literal_left: u64,
    /// The current literal goes to the spool (or, after a spool failure, nowhere).
    to_spool: bool,
    /// The command's spool file, made when its first literal is spooled.
    spool: Option<Spool>,
    /// Spooled literals of this command: the offset of their `{` in `buf`, and where they are in
    /// the spool file (offset, length).
    spooled: Vec<(usize, u64, u64)>,
    /// Where the literal being spooled starts in `buf` and in the spool file.
    spool_at: (usize, u64),
    spool_failed: bool,
    /// Octets of APPEND message literals announced so far in this command.
    append_total: u64,
    /// APPEND message literals announced so far in this command.
    append_literals: u32,
    /// Octets of the command's lines so far (literals not counted).
    line_total: usize,
    /// Budget held by this command's in-memory APPEND literals.
    lease: Option<Lease>,
    /// Reading away an oversized non-synchronising literal: the tag to answer, rounds so far,
    /// and the reply when it is not `BAD [TOOBIG]`.
    discard: Option<(Option<String>, u32, Option<String>)>,
}

impl Receiver {
    /// No part of a command has been received.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.literal_left == 0 && self.discard.is_none()
    }
}

/// A fully received command.
pub(crate) struct Received {
    pub raw: Vec<u8>,
    /// APPEND literals that went to the spool (each reads `{0}` in `raw`), by the offset of
    /// their `{` in `raw`.
    pub spooled: Vec<(usize, Spooled)>,
    /// Held until the command has run.
    pub _lease: Option<Lease>,
}

pub(crate) fn tag_of(buf: &[u8]) -> Option<String> {
    let end = buf.iter().position(|&b| b == b' ')?;
    let t = &buf[..end];
    (!t.is_empty() && t.iter().all(|&b| b.is_ascii_graphic() && b != b'+'))
        .then(|| String::from_utf8_lossy(t).into_owned())
}

fn is_command(buf: &[u8], name: &[u8]) -> bool {
    let mut words = buf.split(|&b| b == b' ');
    words.next();
    words.next().is_some_and(|w| w.eq_ignore_ascii_case(name))
}

fn is_append(buf: &[u8]) -> bool {
    is_command(buf, b"APPEND")
}

/// What a literal of an APPEND holds, judged by what precedes its header. Only flag lists,
/// dates (quoted), the mailbox, URLs and message data can come before a literal in APPEND's
/// grammar; of these only the mailbox and a URL may be literals that are not message data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AppendLiteralKind {
    /// The mailbox name: `tag APPEND {n}`.
    Mailbox,
    /// A CATENATE URL: `URL {n}`.
    Url,
    /// A message, a `CATENATE (TEXT` part, `UTF8 (` data, or something the parser will refuse.
    Message,
}

/// `buf` ends with the literal header `line` ends with.
fn append_literal_kind(buf: &[u8], line: &[u8]) -> AppendLiteralKind {
    let mut body = line;
    while let [rest @ .., b'\r' | b'\n'] = body {
        body = rest;
    }
    let header = match body.iter().rposition(|&b| b == b'{') {
        Some(open) if open > 0 && body[open - 1] == b'~' => body.len() - (open - 1),
        Some(open) => body.len() - open,
        None => return AppendLiteralKind::Message,
    };
    let before_len = (buf.len() - (line.len() - body.len())).saturating_sub(header);
    let before = &buf[..before_len];
    // `tag SP APPEND SP` and nothing else.
    let mut spaces = before.iter().enumerate().filter(|(_, b)| **b == b' ');
    if let (Some(_), Some((second, _)), None) = (spaces.next(), spaces.next(), spaces.next())
        && second + 1 == before.len()
    {
        return AppendLiteralKind::Mailbox;
    }
    if before.len() >= 5 {
        let (sep, word) = before[before.len() - 5..].split_at(1);
        if matches!(sep[0], b' ' | b'(') && word.eq_ignore_ascii_case(b"URL ") {
            return AppendLiteralKind::Url;
        }
    }
    AppendLiteralKind::Message
}

/// Replaces the literal header at the end of `buf` (`{n}`, `{n+}`, `~{n}`) by `{0}`; where its
/// `{` is.
fn zero_literal_header(buf: &mut Vec<u8>) -> usize {
    let mut end = buf.len();
    while end > 0 && matches!(buf[end - 1], b'\r' | b'\n') {
        end -= 1;
    }
    match buf[..end].iter().rposition(|&b| b == b'{') {
        Some(open) => {
            buf.truncate(open);
            buf.extend_from_slice(b"{0}\r\n");
            open
        }
        None => buf.len(),
    }
}

enum LineOutcome {
    /// The command is complete.
    Command(Received),
    /// Answer and wait for what `Step::next` says.
    Step(Step),
}

impl Session {
    /// One line while no SASL exchange or IDLE is in progress.
    pub(crate) async fn command_line(&mut self, line: &[u8]) -> Step {
        match self.receive_line(line).await {
            LineOutcome::Step(s) => s,
            LineOutcome::Command(cmd) => self.command(cmd).await,
        }
    }

    async fn receive_line(&mut self, line: &[u8]) -> LineOutcome {
        if let Some((tag, rounds, reply)) = self.rx.discard.take() {
            if let Some(next) = literal_at_end(line)
                && next.non_sync
            {
                if rounds >= MAX_DISCARD_ROUNDS {
                    // Still more literals: what follows cannot be told from commands.
                    warn!(
                        session = self.id,
                        rounds, "too many literals read away, closing"
                    );
                    return LineOutcome::Step(self.bye("Too many literals in one command"));
                }
                self.rx.discard = Some((tag, rounds + 1, reply));
                return LineOutcome::Step(Step {
                    output: Output::new(),
                    next: Next::Discard { len: next.len },
                });
            }
            return LineOutcome::Step(match reply {
                Some(r) => Step::text(r, Next::Line),
                None => self.literal_too_big(tag.as_deref(), true),
            });
        }
        if self.rx.spool_failed {
            // The command fails; what the client still sends of it is read away.
            let tag = tag_of(&self.rx.buf).unwrap_or_else(|| "*".into());
            self.rx = Default::default();
            let reply =
                format!("{tag} NO [SERVERBUG] Cannot hold the message, try again later\r\n");
            return LineOutcome::Step(self.refuse(line, Some(tag), reply, false));
        }
        self.rx.line_total += line.len();
        if self.rx.line_total > self.cfg.max_line.saturating_mul(MAX_COMMAND_LINES) {
            let tag = tag_of(&self.rx.buf).unwrap_or_else(|| "*".into());
            self.rx = Default::default();
            warn!(session = self.id, "command over the limit");
            let reply = format!("{tag} BAD [TOOBIG] Command too long\r\n");
            return LineOutcome::Step(self.refuse(line, Some(tag), reply, true));
        }
        self.rx.buf.extend_from_slice(line);
        let Some(lit) = literal_at_end(line) else {
            return self.complete().await;
        };
        // A SETMETADATA value too large is refused as it is announced (RFC 5464 §4.3), not after
        // it has been received. The literal may also be the mailbox or an entry name, which are
        // valid up to 1024 octets: shorter literals are judged once the command has been parsed.
        if self.is_authenticated() && is_command(&self.rx.buf, b"SETMETADATA") {
            let max = self.cfg.metadata_limits().max_value;
            if lit.len > max.max(MAX_ENTRY_NAME as u64) {
                let tag = tag_of(&self.rx.buf).unwrap_or_else(|| "*".into());
                self.rx = Default::default();
                let reply = format!("{tag} NO [METADATA MAXSIZE {max}] Value too large\r\n");
                return LineOutcome::Step(self.refuse(line, Some(tag), reply, false));
            }
        }
        let append = is_append(&self.rx.buf);
        // Only message data is counted against `max_append`, held under the budget or spooled.
        let message =
            append && append_literal_kind(&self.rx.buf, line) == AppendLiteralKind::Message;
        let limit = if message {
            self.cfg.max_append
        } else {
            self.cfg.max_literal
        };
        let non_sync_cap = if self.is_authenticated() {
            u64::MAX
        } else {
            MAX_NON_SYNC_LITERAL
        };
        // One APPEND's literals together (several messages, CATENATE parts) within `max_append`.
        let append_total = if message {
            self.rx.append_total.saturating_add(lit.len)
        } else {
            0
        };
        let too_big =
            lit.len > limit || append_total > limit || (lit.non_sync && lit.len > non_sync_cap);
        if too_big {
            let tag = tag_of(&self.rx.buf);
            self.rx = Default::default();
            if lit.non_sync {
                // The client sends it anyway: read it away without keeping it, then the rest
                // of the command (which may announce further literals).
                self.rx.discard = Some((tag, 1, None));
                return LineOutcome::Step(Step {
                    output: Output::new(),
                    next: Next::Discard { len: lit.len },
                });
            }
            return LineOutcome::Step(self.literal_too_big(tag.as_deref(), false));
        }
        if message && self.rx.append_literals >= MAX_APPEND_LITERALS {
            let tag = tag_of(&self.rx.buf).unwrap_or_else(|| "*".into());
            self.rx = Default::default();
            warn!(session = self.id, "too many literals in one APPEND");
            let reply = if lit.non_sync {
                format!("{tag} BAD [LIMIT] Too many messages in one APPEND\r\n")
            } else {
                format!("{tag} NO [LIMIT] Too many messages in one APPEND\r\n")
            };
            return LineOutcome::Step(self.refuse(line, Some(tag), reply, lit.non_sync));
        }
        if message {
            self.rx.append_literals += 1;
            self.rx.append_total = append_total;
        }
        // A message literal that is large, would take this command past the spool threshold in
        // memory, or finds the shared budget spent, waits in the command's spool file.
        let mut to_spool = false;
        if message {
            let held = self.rx.lease.as_ref().map_or(0, Lease::octets);
            let lease = (held.saturating_add(lit.len) <= self.cfg.literal_spool_threshold)
                .then(|| self.shared.budget.try_reserve(lit.len))
                .flatten();
            match lease {
                Some(l) => match self.rx.lease.as_mut() {
                    Some(h) => h.merge(l),
                    None => self.rx.lease = Some(l),
                },
                None => to_spool = true,
            }
        }
        if to_spool {
            if self.rx.spool.is_none() && !self.rx.spool_failed {
                match Spool::create(&self.cfg.spool_dir()).await {
                    Ok(s) => self.rx.spool = Some(s),
                    Err(e) => {
                        warn!(session = self.id, error = %e, "cannot create APPEND spool file");
                        if !lit.non_sync {
                            let tag = tag_of(&self.rx.buf).unwrap_or_else(|| "*".into());
                            self.rx = Default::default();
                            return LineOutcome::Step(Step::text(
                                format!(
                                    "{tag} NO [SERVERBUG] Cannot hold the message, try again later\r\n"
                                ),
                                Next::Line,
                            ));
                        }
                        self.rx.spool_failed = true;
                    }
                }
            }
            let offset = self.rx.spool.as_ref().map_or(0, Spool::written);
            self.rx.spool_at = (zero_literal_header(&mut self.rx.buf), offset);
        } else if self.rx.buf.len() as u64 + lit.len
            > (if append {
                self.cfg.max_append
            } else {
                self.cfg.max_literal
            })
            .saturating_add(self.cfg.max_line as u64 * 4)
        {
            let tag = tag_of(&self.rx.buf);
            self.rx = Default::default();
            return LineOutcome::Step(self.literal_too_big(tag.as_deref(), lit.non_sync));
        }
        self.rx.to_spool = to_spool;
        self.rx.literal_left = lit.len;
        let mut output = Output::new();
        if !lit.non_sync {
            output.extend_from_slice(b"+ Ready for literal data\r\n");
        }
        if lit.len == 0 {
            return LineOutcome::Step(self.literal_done(output).await);
        }
        LineOutcome::Step(Step {
            output,
            next: Next::Literal { len: lit.len },
        })
    }

    /// Refuses the command being received with `reply`: at once, or, when `line` announces a
    /// non-synchronising literal the client sends anyway, once the rest of the command has been
    /// read away. `bad` counts it as a BAD in a row.
    fn refuse(&mut self, line: &[u8], tag: Option<String>, reply: String, bad: bool) -> Step {
        if let Some(next) = literal_at_end(line)
            && next.non_sync
        {
            if bad {
                self.bad_in_row += 1;
            }
            self.rx.discard = Some((tag, 1, Some(reply)));
            return Step {
                output: Output::new(),
                next: Next::Discard { len: next.len },
            };
        }
        if bad {
            return self.bad_reply(reply);
        }
        Step::text(reply, Next::Line)
    }

    /// The command is complete: hands it over with its spooled literals.
    async fn complete(&mut self) -> LineOutcome {
        let rx = std::mem::take(&mut self.rx);
        let mut spooled = Vec::with_capacity(rx.spooled.len());
        if let Some(spool) = rx.spool {
            match spool.finish().await {
                Ok(file) => {
                    for (at, offset, len) in rx.spooled {
                        spooled.push((at, Spooled::new(Arc::clone(&file), offset, len)));
                    }
                }
                Err(e) => {
                    warn!(session = self.id, error = %e, "finishing the APPEND spool failed");
                    let tag = tag_of(&rx.buf).unwrap_or_else(|| "*".into());
                    return LineOutcome::Step(Step::text(
                        format!(
                            "{tag} NO [SERVERBUG] Cannot hold the message, try again later\r\n"
                        ),
                        Next::Line,
                    ));
                }
            }
        }
        LineOutcome::Command(Received {
            raw: rx.buf,
            spooled,
            _lease: rx.lease,
        })
    }

    /// Octets of the literal being received (at most what `Next::Literal` asked for).
    pub(crate) async fn literal_data(&mut self, data: &[u8]) -> Step {
        if self.rx.literal_left == 0 {
            // Nothing was asked for: a confused loop, not the client.
            warn!(session = self.id, "literal data outside a literal");
            return Step::text(Vec::new(), Next::Line);
        }
        let take = data
            .len()
            .min(usize::try_from(self.rx.literal_left).unwrap_or(usize::MAX));
        let data = &data[..take];
        if self.rx.to_spool {
            if let Some(spool) = self.rx.spool.as_mut()
                && let Err(e) = spool.write(data).await
            {
                warn!(session = self.id, error = %e, "writing the APPEND spool failed");
                self.rx.spool = None;
                self.rx.spool_failed = true;
            }
        } else {
            self.rx.buf.extend_from_slice(data);
        }
        self.rx.literal_left -= take as u64;
        if self.rx.literal_left > 0 {
            return Step {
                output: Output::new(),
                next: Next::Literal {
                    len: self.rx.literal_left,
                },
            };
        }
        self.literal_done(Output::new()).await
    }

    /// The literal is complete: the rest of the command line follows.
    async fn literal_done(&mut self, output: Output) -> Step {
        if self.rx.to_spool {
            self.rx.to_spool = false;
            if let Some(spool) = self.rx.spool.as_ref() {
                let (at, offset) = self.rx.spool_at;
                let len = spool.written().saturating_sub(offset);
                self.rx.spooled.push((at, offset, len));
            }
        }
        Step {
            output,
            next: Next::Line,
        }
    }
}
