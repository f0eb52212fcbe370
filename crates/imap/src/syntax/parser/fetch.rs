//! FETCH arguments: macros, attributes, BODY[section]<partial> and BINARY sections.

use super::{PResult, Parser};
use crate::syntax::command::*;

impl Parser<'_> {
    pub(super) fn fetch(&mut self, uid: bool) -> PResult<CommandKind> {
        self.sp()?;
        let set = self.seq_set()?;
        self.sp()?;
        let mut items = Vec::new();
        if self.eat(b'(') {
            loop {
                self.fetch_att(&mut items)?;
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        } else if self.keyword("ALL") {
            items.extend([
                FetchItem::Flags,
                FetchItem::InternalDate,
                FetchItem::Rfc822Size,
                FetchItem::Envelope,
            ]);
        } else if self.keyword("FAST") {
            items.extend([
                FetchItem::Flags,
                FetchItem::InternalDate,
                FetchItem::Rfc822Size,
            ]);
        } else if self.keyword("FULL") {
            items.extend([
                FetchItem::Flags,
                FetchItem::InternalDate,
                FetchItem::Rfc822Size,
                FetchItem::Envelope,
                FetchItem::Body,
            ]);
        } else {
            self.fetch_att(&mut items)?;
        }
        let mut changed_since = None;
        let mut vanished = false;
        if self.eat(b' ') {
            self.expect(b'(')?;
            self.items_until_close(false, |p| {
                if p.keyword("CHANGEDSINCE") && changed_since.is_none() {
                    p.sp()?;
                    changed_since = Some(p.mod_sequence()?);
                    Ok(())
                } else if p.keyword("VANISHED") && !vanished {
                    vanished = true;
                    Ok(())
                } else {
                    Err("unknown or repeated FETCH modifier".into())
                }
            })?;
        }
        Ok(CommandKind::Fetch {
            uid,
            set,
            items,
            changed_since,
            vanished,
        })
    }

    pub(super) fn fetch_att(&mut self, items: &mut Vec<FetchItem>) -> PResult<()> {
        if items.len() > 100 {
            return Err("too many FETCH items".into());
        }
        let item = if self.keyword("BODY.PEEK[") {
            self.body_section(true)?
        } else if self.keyword("BODY[") {
            self.body_section(false)?
        } else if self.keyword("BINARY.PEEK[") {
            self.binary_section(true)?
        } else if self.keyword("BINARY.SIZE[") {
            let part = self.section_part_only()?;
            FetchItem::BinarySize { part }
        } else if self.keyword("BINARY[") {
            self.binary_section(false)?
        } else {
            let a = self.atom()?.to_ascii_uppercase();
            match a.as_str() {
                "FLAGS" => FetchItem::Flags,
                "INTERNALDATE" => FetchItem::InternalDate,
                "RFC822.SIZE" => FetchItem::Rfc822Size,
                "ENVELOPE" => FetchItem::Envelope,
                "BODY" => FetchItem::Body,
                "BODYSTRUCTURE" => FetchItem::BodyStructure,
                "UID" => FetchItem::Uid,
                "RFC822" => FetchItem::Rfc822,
                "RFC822.HEADER" => FetchItem::Rfc822Header,
                "RFC822.TEXT" => FetchItem::Rfc822Text,
                "MODSEQ" => FetchItem::ModSeq,
                "EMAILID" => FetchItem::EmailId,
                "THREADID" => FetchItem::ThreadId,
                "SAVEDATE" => FetchItem::SaveDate,
                "PREVIEW" => {
                    // RFC 8970 preview modifiers: LAZY (previews here are always at hand).
                    if self.rest().starts_with(b" (") {
                        self.pos += 2;
                        self.items_until_close(false, |p| {
                            if p.keyword("LAZY") {
                                Ok(())
                            } else {
                                Err("unknown PREVIEW modifier".into())
                            }
                        })?;
                    }
                    FetchItem::Preview
                }
                _ => return Err(format!("unknown FETCH item {a}")),
            }
        };
        items.push(item);
        Ok(())
    }

    pub(super) fn partial(&mut self) -> PResult<Option<(u32, u32)>> {
        if self.eat(b'<') {
            let start = self.number()?;
            self.expect(b'.')?;
            let len = self.nz_number()?;
            self.expect(b'>')?;
            Ok(Some((start, len)))
        } else {
            Ok(None)
        }
    }

    pub(super) fn section_part_only(&mut self) -> PResult<Vec<u32>> {
        let mut part = Vec::new();
        if !self.eat(b']') {
            loop {
                part.push(self.nz_number()?);
                if part.len() > 64 {
                    return Err("section part too deep".into());
                }
                if self.eat(b']') {
                    break;
                }
                self.expect(b'.')?;
            }
        }
        Ok(part)
    }

    pub(super) fn binary_section(&mut self, peek: bool) -> PResult<FetchItem> {
        let part = self.section_part_only()?;
        let partial = self.partial()?;
        Ok(FetchItem::Binary {
            peek,
            part,
            partial,
        })
    }

    pub(super) fn body_section(&mut self, peek: bool) -> PResult<FetchItem> {
        let mut part = Vec::new();
        let mut spec = SectionSpec::Full;
        if !self.eat(b']') {
            loop {
                if matches!(self.peek(), Some(b'1'..=b'9')) {
                    part.push(self.nz_number()?);
                    if part.len() > 64 {
                        return Err("section part too deep".into());
                    }
                    if self.eat(b'.') {
                        continue;
                    }
                    break;
                }
                let a = self.atom()?.to_ascii_uppercase();
                spec = match a.as_str() {
                    "HEADER" => SectionSpec::Header,
                    "TEXT" => SectionSpec::Text,
                    "MIME" if !part.is_empty() => SectionSpec::Mime,
                    "HEADER.FIELDS" | "HEADER.FIELDS.NOT" => {
                        self.sp()?;
                        self.expect(b'(')?;
                        let mut names = Vec::new();
                        loop {
                            names.push(self.astring()?);
                            if names.len() > 200 {
                                return Err("too many header names".into());
                            }
                            if self.eat(b')') {
                                break;
                            }
                            self.sp()?;
                        }
                        SectionSpec::HeaderFields {
                            names,
                            not: a.ends_with(".NOT"),
                        }
                    }
                    _ => return Err(format!("invalid section text {a}")),
                };
                break;
            }
            self.expect(b']')?;
        }
        let partial = self.partial()?;
        Ok(FetchItem::BodySection {
            peek,
            section: Section { part, spec },
            partial,
        })
    }

    /// `(uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data])` after
    /// `QRESYNC SP` (RFC 7162 §7).
    pub(super) fn qresync_params(&mut self) -> PResult<QresyncParams> {
        self.expect(b'(')?;
        let uid_validity = self.nz_number()?;
        self.sp()?;
        let modseq = self.mod_sequence()?;
        let mut known_uids = None;
        if self.eat(b' ') {
            if self.peek() != Some(b'(') {
                known_uids = Some(self.seq_set()?);
                if !self.eat(b' ') {
                    self.expect(b')')?;
                    return Ok(QresyncParams {
                        uid_validity,
                        modseq,
                        known_uids,
                    });
                }
            }
            // seq-match-data: (known-sequence-set SP known-uid-set), checked and not used.
            self.expect(b'(')?;
            self.seq_set()?;
            self.sp()?;
            self.seq_set()?;
            self.expect(b')')?;
        }
        self.expect(b')')?;
        Ok(QresyncParams {
            uid_validity,
            modseq,
            known_uids,
        })
    }
}
