//! Arguments of GETMETADATA and SETMETADATA (RFC 5464 §4, §5): options, entry names, values.
//! Entry names are checked here, so a bad one is a BAD as §3.2 asks.

use super::{PResult, Parser};
use crate::syntax::command::*;

/// Most entries one GETMETADATA or SETMETADATA may name: far above any mailbox's limit, and a
/// bound on what one command makes the server do.
pub const MAX_METADATA_ENTRIES: usize = 1000;
/// Longest entry name, in octets.
pub const MAX_ENTRY_NAME: usize = 1024;

/// Whether `name` is a valid entry name: `/private` or `/shared` (any case), then components
/// after single slashes; no `*`, `%`, control characters, empty components or trailing slash.
pub fn valid_entry_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let top_ok = ["/private", "/shared"].iter().any(|p| {
        lower
            .strip_prefix(p)
            .is_some_and(|r| r.is_empty() || r.starts_with('/'))
    });
    top_ok
        && name.len() <= MAX_ENTRY_NAME
        && !name.ends_with('/')
        && !name.contains("//")
        && !name.chars().any(|c| c.is_control() || c == '*' || c == '%')
}

impl Parser<'_> {
    fn entry_name(&mut self) -> PResult<String> {
        let name = self.astring()?;
        if !valid_entry_name(&name) {
            return Err(format!("invalid entry name {name:?}"));
        }
        Ok(name)
    }

    /// `"(" option *(SP option) ")"`, the `(` already read.
    fn metadata_options(
        &mut self,
        max_size: &mut Option<u64>,
        depth: &mut Option<MetadataDepth>,
    ) -> PResult<()> {
        self.items_until_close(false, |p| {
            if max_size.is_none() && p.keyword("MAXSIZE") {
                p.sp()?;
                *max_size = Some(p.number64()?);
            } else if depth.is_none() && p.keyword("DEPTH") {
                p.sp()?;
                *depth = Some(if p.keyword("0") {
                    MetadataDepth::Zero
                } else if p.keyword("1") {
                    MetadataDepth::One
                } else if p.keyword("infinity") {
                    MetadataDepth::Infinity
                } else {
                    return Err("DEPTH is 0, 1 or infinity".into());
                });
            } else {
                return Err("unknown or repeated GETMETADATA option".into());
            }
            Ok(())
        })
    }

    /// After `GETMETADATA`. The options may come before the mailbox (RFC 5464's grammar) or
    /// after it (its examples, and clients that followed them).
    pub(super) fn get_metadata(&mut self) -> PResult<CommandKind> {
        let mut max_size = None;
        let mut depth = None;
        self.sp()?;
        if self.eat(b'(') {
            self.metadata_options(&mut max_size, &mut depth)?;
            self.sp()?;
        }
        let mailbox = self.mailbox()?;
        self.sp()?;
        if self.peek() == Some(b'(')
            && max_size.is_none()
            && depth.is_none()
            && self
                .s
                .get(self.pos + 1)
                .is_some_and(|b| b.is_ascii_alphabetic())
        {
            self.pos += 1;
            self.metadata_options(&mut max_size, &mut depth)?;
            self.sp()?;
        }
        let mut entries = Vec::new();
        if self.eat(b'(') {
            self.items_until_close(false, |p| {
                if entries.len() >= MAX_METADATA_ENTRIES {
                    return Err("too many entries".into());
                }
                entries.push(p.entry_name()?);
                Ok(())
            })?;
        } else {
            entries.push(self.entry_name()?);
        }
        Ok(CommandKind::GetMetadata {
            mailbox,
            max_size,
            depth: depth.unwrap_or(MetadataDepth::Zero),
            entries,
        })
    }

    /// After `SETMETADATA`: `SP mailbox SP "(" entry SP value *(SP entry SP value) ")"`, a value
    /// being an nstring or a literal8.
    pub(super) fn set_metadata(&mut self) -> PResult<CommandKind> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        self.sp()?;
        self.expect(b'(')?;
        let mut entries = Vec::new();
        self.items_until_close(false, |p| {
            if entries.len() >= MAX_METADATA_ENTRIES {
                return Err("too many entries".into());
            }
            let name = p.entry_name()?;
            if name.eq_ignore_ascii_case("/private") || name.eq_ignore_ascii_case("/shared") {
                return Err("/private and /shared hold no value themselves".into());
            }
            p.sp()?;
            let value = if p.keyword("NIL") {
                None
            } else {
                let literal8 = p.peek() == Some(b'~');
                let v = p.string()?;
                // CHAR8 excludes NUL: only a literal8 may carry one (RFC 5464 §5, RFC 3516).
                if !literal8 && v.contains(&0) {
                    return Err("NUL is allowed only in a literal8 (~{n})".into());
                }
                Some(v)
            };
            entries.push((name, value));
            Ok(())
        })?;
        Ok(CommandKind::SetMetadata { mailbox, entries })
    }
}
