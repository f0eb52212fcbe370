//! wharf-mime: parses a message once (at delivery/append) into what the protocols need later without
//! touching the blob again: the IMAP ENVELOPE and BODYSTRUCTURE data, part offsets for BODY[section],
//! the preview, and the text that feeds the full-text index.
//!
//! The summary is stored by wharf-store as opaque bytes (`Analysis::summary`) and decoded with
//! `Summary::decode` by whoever renders it. Offsets in the summary refer to the exact bytes given
//! to `analyze`, so those must be the bytes stored in the blob.
//!
//! `analyze` is the fuzzing entry point: it accepts any bytes, never panics, and bounds nesting
//! (50 levels), part count (5000) and decoded text (2 MiB).

mod address;
pub mod attachments;
mod header;
mod imap;
mod params;
mod section;
mod sort;
mod structure;
mod text;

use serde::{Deserialize, Serialize};

pub use section::{Section, SectionSpec};
pub use sort::{SortKeys, base_subject, message_ids, thread_parents};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum MimeError {
    /// The stored summary could not be decoded (corrupt, or written by an unknown future version).
    #[error("summary cannot be decoded: {0}")]
    Decode(String),
    /// BINARY asked for a part whose Content-Transfer-Encoding is unknown (RFC 3516 UNKNOWN-CTE).
    #[error("unknown content-transfer-encoding {0:?}")]
    UnknownCte(String),
}

/// Format version written into every summary. Decoding accepts every version up to this one;
/// new fields are always optional so older summaries keep decoding.
const SUMMARY_VERSION: u32 = 1;

/// The stored result of parsing a message: its part tree with byte offsets into the raw message,
/// MIME fields and ENVELOPE data. Serialised as compact JSON with short keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(rename = "v")]
    version: u32,
    /// Size of the raw message the offsets refer to.
    #[serde(rename = "z", default)]
    size: u64,
    #[serde(rename = "r")]
    root: structure::Part,
}

impl Summary {
    /// Parses `raw` into a summary. Never panics; bounded in depth and part count.
    pub fn parse(raw: &[u8]) -> Summary {
        Summary {
            version: SUMMARY_VERSION,
            size: raw.len() as u64,
            root: structure::build(raw),
        }
    }

    /// Size of the raw message the summary was made from.
    pub fn raw_size(&self) -> u64 {
        self.size
    }

    /// Serialises the summary for storage.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain structs of strings and integers to a Vec cannot fail; an empty
        // result would only surface later as a decode error, never as a panic.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a stored summary.
    pub fn decode(bytes: &[u8]) -> Result<Summary, MimeError> {
        let s: Summary = serde_json::from_slice(bytes).map_err(|e| {
            tracing::warn!(error = %e, "stored mime summary does not decode");
            MimeError::Decode(e.to_string())
        })?;
        if s.version > SUMMARY_VERSION {
            return Err(MimeError::Decode(format!(
                "summary version {} is newer than {}",
                s.version, SUMMARY_VERSION
            )));
        }
        Ok(s)
    }
}

/// Parses a message once and derives everything stored with it. Never panics, whatever `raw`
/// holds; this is the entry point to fuzz.
pub fn analyze(raw: &[u8]) -> Analysis {
    let summary = Summary::parse(raw);
    let extracted = text::extract(raw, &summary.root);
    Analysis {
        summary: summary.encode(),
        search: extracted.search,
        sent_date: extracted.sent_date,
        preview: extracted.preview,
    }
}

/// Text extracted for the full-text index, already decoded to UTF-8 (RFC 2047 words, transfer
/// encodings and charsets undone).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchText {
    pub subject: String,
    pub from: String,
    pub to: String,
    pub cc: String,
    pub bcc: String,
    /// Every field of the message's header, one per line as `Name: value`: unfolded, and for
    /// RFC 2047-encoded values followed by the decoded text (SEARCH TEXT covers the whole header,
    /// RFC 9051 §6.4.4). At most 256 KiB.
    pub headers: String,
    /// Text of every text/* part (HTML reduced to text), joined by newlines.
    pub body: String,
}

/// Everything derived from one parse of a message.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// Serialised `Summary` (stable across versions: decoding an older one must work).
    pub summary: Vec<u8>,
    pub search: SearchText,
    /// Date: header as unix seconds, if parseable (SEARCH SENTBEFORE…).
    pub sent_date: Option<i64>,
    /// Up to 256 characters of body text (RFC 8970 PREVIEW).
    pub preview: String,
}
