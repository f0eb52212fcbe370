//! wharf-mime: parses a message once (at delivery/append) into what the protocols need later without
//! touching the blob again: the IMAP ENVELOPE and BODYSTRUCTURE data, part offsets for BODY[section],
//! the preview, and the text that feeds the full-text index.
//!
//! The summary is stored by wharf-store as opaque bytes (`Analysis::summary`) and decoded with
//! `Summary::decode` by whoever renders it.

/// Text extracted for the full-text index, already decoded to UTF-8 (RFC 2047 words, transfer
/// encodings and charsets undone).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchText {
    pub subject: String,
    pub from: String,
    pub to: String,
    pub cc: String,
    pub bcc: String,
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
