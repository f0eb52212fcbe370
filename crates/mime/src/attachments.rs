//! Text of common document attachments for search (issue 22): the zip+XML
//! formats DOCX, XLSX, PPTX (Office Open XML) and ODT, ODS, ODP (OpenDocument) read with `zip`
//! and `quick-xml`, and PDF read with `lopdf` in a helper process (`set_pdf_helper`): lopdf
//! decompresses and parses every object stream while loading a file, before any limit of ours
//! applies, so it runs where the server can bound its memory and CPU (rlimits) and kill it at the
//! deadline — never in the server's own process. Run off the delivery path (the store's background extraction), on a blocking
//! thread, and bounded: attachments over `Limits::max_attachment` are skipped, every zip entry is
//! read through `Read::take` (a zip bomb inflates to at most `MAX_ENTRY_BYTES`), the text stops at
//! `Limits::max_text`, and work stops at `Limits::deadline` (checked between zip entries and XML
//! events). Third-party parsing runs under `catch_unwind`: a file that makes a parser panic is
//! skipped like any malformed one. Never panics itself.

use std::io::{BufReader, Read, Seek};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use crate::section::{decode_base64, decode_qp};
use crate::structure::{self, Part};

/// Decompressed bytes read from one zip entry at most (a zip bomb stops here).
const MAX_ENTRY_BYTES: u64 = 32 * 1024 * 1024;
/// Zip entries of one document read at most (slides, sheets).
const MAX_ENTRIES: usize = 500;
/// Entries a document's zip directory may list (the directory is read whole before any entry).
const MAX_ZIP_DIRECTORY: usize = 10_000;

/// Bounds on the extraction of one message's attachments.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Decoded size over which an attachment is skipped (estimated from its encoded size).
    pub max_attachment: usize,
    /// Text kept per message, in bytes.
    pub max_text: usize,
    /// Wall-clock time for the whole message.
    pub budget: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_attachment: 20 * 1024 * 1024,
            max_text: 1024 * 1024,
            budget: Duration::from_secs(2),
        }
    }
}

/// Document kinds whose text is extracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pdf,
    Docx,
    Xlsx,
    Pptx,
    /// ODT, ODS, ODP: `content.xml`.
    OpenDocument,
}

/// One attachment that was not (fully) read, and why; for the caller's log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub name: String,
    pub kind: Option<Kind>,
    pub reason: String,
}

/// What `extract` found.
#[derive(Debug, Clone, Default)]
pub struct AttachmentText {
    /// Text of every document attachment read, one per paragraph/line, joined by newlines.
    pub text: String,
    /// Attachments of a known kind that were read.
    pub documents: usize,
    pub skipped: Vec<Skipped>,
}

/// Text of the document attachments of `raw` (parts of a kind `Kind` names, found by content
/// type or file name extension), within `limits`.
pub fn extract(raw: &[u8], limits: &Limits) -> AttachmentText {
    let deadline = Instant::now() + limits.budget;
    let root = structure::build(raw);
    let mut out = AttachmentText::default();
    walk(raw, &root, limits, deadline, &mut out);
    out
}

/// True when `raw` has a part `extract` would read. Delivery asks, so that a message without
/// one is stored as done and never read again for its attachments.
pub fn has_documents(raw: &[u8]) -> bool {
    fn any(p: &Part) -> bool {
        if p.is_multipart() {
            return p.children.iter().any(any);
        }
        if let Some(m) = &p.message {
            return any(m);
        }
        kind_of(p, &file_name(p)).is_some()
    }
    any(&structure::build(raw))
}

fn walk(raw: &[u8], p: &Part, limits: &Limits, deadline: Instant, out: &mut AttachmentText) {
    if p.is_multipart() {
        for c in &p.children {
            walk(raw, c, limits, deadline, out);
        }
        return;
    }
    if let Some(m) = &p.message {
        walk(raw, m, limits, deadline, out);
        return;
    }
    let name = file_name(p);
    let Some(kind) = kind_of(p, &name) else {
        return;
    };
    let skip = |out: &mut AttachmentText, reason: String| {
        out.skipped.push(Skipped {
            name: name.clone(),
            kind: Some(kind),
            reason,
        })
    };
    if out.text.len() >= limits.max_text {
        return skip(out, "text budget of the message used up".into());
    }
    if Instant::now() >= deadline {
        return skip(out, "time budget of the message used up".into());
    }
    let r = p.body_range();
    let encoded = raw.get(r).unwrap_or_default();
    let cte = p.cte.as_deref().unwrap_or("").to_ascii_lowercase();
    let estimate = if cte == "base64" {
        encoded.len() / 4 * 3
    } else {
        encoded.len()
    };
    if estimate > limits.max_attachment {
        return skip(
            out,
            format!(
                "{estimate} bytes, over the {} byte limit",
                limits.max_attachment
            ),
        );
    }
    let data = match cte.as_str() {
        "base64" => decode_base64(encoded),
        "quoted-printable" => decode_qp(encoded),
        _ => encoded.to_vec(),
    };
    let room = limits.max_text - out.text.len();
    let mut text = String::new();
    let result = catch_unwind(AssertUnwindSafe(|| {
        document_text(kind, &data, room, deadline, &mut text)
    }));
    match result {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => skip(out, reason),
        Err(_) => skip(out, "the parser panicked".into()),
    }
    if !text.trim().is_empty() {
        out.documents += 1;
        if !out.text.is_empty() {
            out.text.push('\n');
        }
        push_bounded(&mut out.text, &text, limits.max_text);
    }
}

/// The attachment's file name (Content-Disposition filename, else Content-Type name).
fn file_name(p: &Part) -> String {
    p.disposition
        .as_ref()
        .and_then(|d| {
            d.params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("filename"))
        })
        .or_else(|| {
            p.params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("name"))
        })
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn kind_of(p: &Part, name: &str) -> Option<Kind> {
    let subtype = p.subtype.to_ascii_lowercase();
    if p.ctype.eq_ignore_ascii_case("application") {
        let by_type = match subtype.as_str() {
            "pdf" | "x-pdf" => Some(Kind::Pdf),
            "vnd.openxmlformats-officedocument.wordprocessingml.document" => Some(Kind::Docx),
            "vnd.openxmlformats-officedocument.spreadsheetml.sheet" => Some(Kind::Xlsx),
            "vnd.openxmlformats-officedocument.presentationml.presentation" => Some(Kind::Pptx),
            "vnd.oasis.opendocument.text"
            | "vnd.oasis.opendocument.spreadsheet"
            | "vnd.oasis.opendocument.presentation" => Some(Kind::OpenDocument),
            _ => None,
        };
        if by_type.is_some() {
            return by_type;
        }
    }
    if p.ctype.eq_ignore_ascii_case("text") || p.ctype.eq_ignore_ascii_case("multipart") {
        return None;
    }
    // Generic types (application/octet-stream and the like): the file name decides.
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    match ext.as_str() {
        "pdf" => Some(Kind::Pdf),
        "docx" => Some(Kind::Docx),
        "xlsx" => Some(Kind::Xlsx),
        "pptx" => Some(Kind::Pptx),
        "odt" | "ods" | "odp" => Some(Kind::OpenDocument),
        _ => None,
    }
}

fn document_text(
    kind: Kind,
    data: &[u8],
    room: usize,
    deadline: Instant,
    text: &mut String,
) -> Result<(), String> {
    match kind {
        Kind::Pdf => pdf_text(data, room, deadline, text),
        _ => zip_text(kind, data, room, deadline, text),
    }
}

/// The program that reads PDF text for this process: `program args… --max-text N --budget-ms M`
/// reads a PDF on standard input and writes its text on standard output (status 0), or a reason
/// on standard error (another status). `wharf extract-pdf` is one, with its own rlimits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdfHelper {
    pub program: std::path::PathBuf,
    pub args: Vec<String>,
}

static PDF_HELPER: std::sync::OnceLock<PdfHelper> = std::sync::OnceLock::new();

/// Sets the PDF helper of this process (the first call wins); without one, PDF attachments are
/// skipped with a reason.
pub fn set_pdf_helper(helper: PdfHelper) {
    let _ = PDF_HELPER.set(helper);
}

/// PDF pages read at most.
const MAX_PDF_PAGES: u32 = 2000;
/// Decompressed content of one PDF page at most.
const MAX_PDF_PAGE_BYTES: usize = 16 * 1024 * 1024;
/// What the helper may say on standard error (its reason) that is kept.
const MAX_HELPER_REASON: u64 = 512;

/// A PDF's text through the helper process, killed at the deadline.
fn pdf_text(data: &[u8], room: usize, deadline: Instant, text: &mut String) -> Result<(), String> {
    let Some(helper) = PDF_HELPER.get() else {
        return Err("PDF text extraction is not set up (no helper process)".into());
    };
    let out = run_helper(helper, data, room, deadline)?;
    push_bounded(text, &out, room);
    Ok(())
}

fn run_helper(
    helper: &PdfHelper,
    data: &[u8],
    room: usize,
    deadline: Instant,
) -> Result<String, String> {
    use std::process::{Command, Stdio};
    let budget = deadline.saturating_duration_since(Instant::now());
    if budget.is_zero() {
        return Err("time budget of the message used up".into());
    }
    let mut child = Command::new(&helper.program)
        .args(&helper.args)
        .arg("--max-text")
        .arg(room.to_string())
        .arg("--budget-ms")
        .arg(budget.as_millis().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_clear()
        .spawn()
        .map_err(|e| format!("PDF helper cannot start: {e}"))?;
    // Standard input written and both outputs read on their own threads, so that no pipe fills
    // while this thread waits; each output is read only up to what is kept.
    let input = child.stdin.take().map(|mut stdin| {
        let data = data.to_vec();
        std::thread::spawn(move || {
            use std::io::Write as _;
            // A helper that stops reading (it failed) closes the pipe: not an error here.
            let _ = stdin.write_all(&data);
        })
    });
    let read = |pipe: Option<Box<dyn Read + Send>>, cap: u64| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = pipe {
                let _ = p.take(cap).read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        room as u64 + 4,
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        MAX_HELPER_REASON,
    );
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("time budget exceeded: PDF helper killed".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("PDF helper: {e}")),
        }
    };
    if let Some(t) = input {
        let _ = t.join();
    }
    let out = stdout.join().unwrap_or_default();
    let reason = stderr.join().unwrap_or_default();
    if !status.success() {
        let reason = String::from_utf8_lossy(&reason).trim().to_string();
        return Err(if reason.is_empty() {
            format!("PDF helper failed ({status})")
        } else {
            reason
        });
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The text of a PDF, page by page, at most `room` bytes, stopping at `deadline`. lopdf loads
/// the whole file first with no bound of its own: call this only in a process whose memory and
/// CPU are limited (the PDF helper), never in the server.
pub fn read_pdf_text(data: &[u8], room: usize, deadline: Instant) -> Result<String, String> {
    let doc = lopdf::Document::load_mem(data).map_err(|e| format!("unreadable PDF: {e}"))?;
    if doc.is_encrypted() {
        return Err("encrypted PDF".into());
    }
    let mut text = String::new();
    for n in doc.get_pages().keys().copied() {
        if n > MAX_PDF_PAGES {
            break;
        }
        if Instant::now() >= deadline {
            break;
        }
        // A page that fails (a font or stream lopdf cannot read) does not lose the others.
        if let Ok(t) = doc.extract_text_with_limit(&[n], MAX_PDF_PAGE_BYTES)
            && !push_bounded(&mut text, &t, room)
        {
            break;
        }
    }
    Ok(text)
}

fn zip_text(
    kind: Kind,
    data: &[u8],
    room: usize,
    deadline: Instant,
    text: &mut String,
) -> Result<(), String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(data))
        .map_err(|e| format!("unreadable zip: {e}"))?;
    if archive.len() > MAX_ZIP_DIRECTORY {
        return Err(format!("zip lists over {MAX_ZIP_DIRECTORY} entries"));
    }
    let mut names: Vec<String> = archive
        .file_names()
        .filter(|n| wanted_entry(kind, n))
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        return Err("no document content in the zip".into());
    }
    // Slides and sheets in their order (slide2 before slide10); shared strings first.
    names.sort_by_cached_key(|n| (entry_rank(n), n.len(), n.clone()));
    for name in names.iter().take(MAX_ENTRIES) {
        if Instant::now() >= deadline {
            return Err(format!("time budget exceeded before {name}"));
        }
        xml_entry_text(&mut archive, name, kind, room, deadline, text)?;
        if text.len() >= room {
            break;
        }
    }
    Ok(())
}

fn wanted_entry(kind: Kind, name: &str) -> bool {
    match kind {
        Kind::Docx => {
            name == "word/document.xml"
                || name == "word/footnotes.xml"
                || name == "word/endnotes.xml"
        }
        Kind::Xlsx => {
            name == "xl/sharedStrings.xml"
                || (name.starts_with("xl/worksheets/sheet") && name.ends_with(".xml"))
        }
        Kind::Pptx => name.starts_with("ppt/slides/slide") && name.ends_with(".xml"),
        Kind::OpenDocument => name == "content.xml",
        Kind::Pdf => false,
    }
}

fn entry_rank(name: &str) -> u8 {
    if name.ends_with("document.xml") || name.ends_with("sharedStrings.xml") {
        0
    } else {
        1
    }
}

/// Appends the text of one XML entry. Office Open XML keeps text in `t` elements (`w:t`, `a:t`,
/// a sheet's inline `t`); only those are read, so field codes and other markup stay out.
/// OpenDocument text is every character data inside the body. A paragraph, row or cell ends
/// with a separator; runs within a paragraph are joined as they are (a word may be split across
/// runs).
fn xml_entry_text<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    name: &str,
    kind: Kind,
    room: usize,
    deadline: Instant,
    text: &mut String,
) -> Result<(), String> {
    use quick_xml::events::Event;
    let entry = archive
        .by_name(name)
        .map_err(|e| format!("zip entry {name}: {e}"))?;
    let mut reader = quick_xml::Reader::from_reader(BufReader::new(entry.take(MAX_ENTRY_BYTES)));
    let only_t = kind != Kind::OpenDocument;
    let mut in_t = 0usize;
    let mut buf = Vec::new();
    let mut events = 0u32;
    loop {
        events = events.wrapping_add(1);
        if events.is_multiple_of(4096) && Instant::now() >= deadline {
            return Err(format!("time budget exceeded in {name}"));
        }
        let ev = match reader.read_event_into(&mut buf) {
            Ok(ev) => ev,
            // Truncated by the entry bound, or malformed: keep what was read.
            Err(_) => break,
        };
        let mut piece = std::borrow::Cow::Borrowed("");
        match ev {
            Event::Eof => break,
            Event::Start(s) if s.local_name().as_ref() == b"t" => in_t += 1,
            Event::Empty(s) => match s.local_name().as_ref() {
                b"tab" | b"s" => piece = " ".into(),
                b"br" | b"line-break" => piece = "\n".into(),
                _ => {}
            },
            Event::End(e) => match e.local_name().as_ref() {
                b"t" => in_t = in_t.saturating_sub(1),
                b"p" | b"h" | b"si" | b"row" | b"table-row" => piece = "\n".into(),
                b"c" | b"tc" | b"table-cell" => piece = "\t".into(),
                _ => {}
            },
            Event::Text(t) if !only_t || in_t > 0 => {
                if let Ok(s) = t.decode() {
                    piece = std::borrow::Cow::Owned(s.into_owned());
                }
            }
            Event::GeneralRef(r) if !only_t || in_t > 0 => {
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c),
                    _ => match &*r {
                        b"amp" => Some('&'),
                        b"lt" => Some('<'),
                        b"gt" => Some('>'),
                        b"quot" => Some('"'),
                        b"apos" => Some('\''),
                        _ => None,
                    },
                };
                if let Some(c) = c {
                    piece = std::borrow::Cow::Owned(c.to_string());
                }
            }
            _ => {}
        }
        if !piece.is_empty() && !push_bounded(text, &piece, room) {
            break;
        }
        buf.clear();
    }
    text.push('\n');
    Ok(())
}

/// Appends as much of `s` as fits in `cap` bytes (on a character boundary); false once full.
fn push_bounded(out: &mut String, s: &str, cap: usize) -> bool {
    let room = cap.saturating_sub(out.len());
    if s.len() <= room {
        out.push_str(s);
        return out.len() < cap;
    }
    let mut end = room;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    out.push_str(s.get(..end).unwrap_or_default());
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, content) in entries {
            w.start_file(*name, opts).unwrap();
            w.write_all(content).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn b64(data: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for (i, c) in data.chunks(3).enumerate() {
            if i > 0 && i % 19 == 0 {
                out.push_str("\r\n");
            }
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            out.push(A[(n >> 18) as usize & 63] as char);
            out.push(A[(n >> 12) as usize & 63] as char);
            out.push(if c.len() > 1 {
                A[(n >> 6) as usize & 63] as char
            } else {
                '='
            });
            out.push(if c.len() > 2 {
                A[n as usize & 63] as char
            } else {
                '='
            });
        }
        out
    }

    fn message(parts: &[(&str, &str, Vec<u8>)]) -> Vec<u8> {
        let mut m = String::from(
            "Subject: t\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\
             Content-Type: text/plain\r\n\r\nbody\r\n",
        );
        for (ctype, name, data) in parts {
            m.push_str(&format!(
                "--B\r\nContent-Type: {ctype}\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
                b64(data)
            ));
        }
        m.push_str("--B--\r\n");
        m.into_bytes()
    }

    fn docx(xml: &str) -> Vec<u8> {
        zip_of(&[("word/document.xml", xml.as_bytes())])
    }

    #[test]
    fn bad_files_are_skipped_with_a_reason() {
        let raw = message(&[
            ("application/pdf", "a.pdf", b"%PDF-1.4\n1 0 obj <<".to_vec()),
            (
                "application/octet-stream",
                "b.docx",
                b"PK\x03\x04junk".to_vec(),
            ),
            (
                "application/octet-stream",
                "c.docx",
                docx("<w:p><w:t>okword</w:t></w:p>"),
            ),
            ("image/png", "d.png", vec![0x89, b'P', b'N', b'G']),
        ]);
        let got = extract(&raw, &Limits::default());
        assert_eq!(got.text.trim(), "okword");
        assert_eq!(got.documents, 1);
        let reasons: Vec<&str> = got.skipped.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(reasons, ["a.pdf", "b.docx"], "{:?}", got.skipped);
        assert!(got.skipped[0].reason.contains("PDF"), "{:?}", got.skipped);
        assert!(got.skipped[1].reason.contains("zip"), "{:?}", got.skipped);
    }

    #[test]
    fn has_documents_names_what_extract_would_read() {
        assert!(!has_documents(b"Subject: t\r\n\r\nplain body\r\n"));
        assert!(!has_documents(&message(&[(
            "image/png",
            "d.png",
            vec![0x89, b'P', b'N', b'G']
        )])));
        assert!(!has_documents(&message(&[])));
        assert!(has_documents(&message(&[(
            "application/pdf",
            "a",
            b"%PDF".to_vec()
        )])));
        assert!(has_documents(&message(&[(
            "application/octet-stream",
            "c.ODT",
            b"PK".to_vec()
        )])));
        // Inside an attached message too.
        let inner = String::from_utf8(message(&[("application/pdf", "a.pdf", b"%PDF".to_vec())]))
            .expect("ascii");
        let outer = format!("Subject: fwd\r\nContent-Type: message/rfc822\r\n\r\n{inner}");
        assert!(has_documents(outer.as_bytes()));
    }

    #[test]
    fn pdf_helper_answers_and_deadline() {
        let sh = |script: &str| PdfHelper {
            program: "sh".into(),
            args: vec!["-c".into(), script.into(), "helper".into()],
        };
        let far = Instant::now() + Duration::from_secs(10);
        let out = run_helper(&sh("cat >/dev/null; printf 'hello pdf'"), b"%PDF", 100, far);
        assert_eq!(out.unwrap(), "hello pdf");
        let out = run_helper(
            &sh("cat >/dev/null; echo broken file >&2; exit 2"),
            b"x",
            100,
            far,
        );
        assert_eq!(out.unwrap_err(), "broken file");
        // Past the deadline the helper is killed, and the caller is back at once.
        let started = Instant::now();
        let soon = started + Duration::from_millis(200);
        let out = run_helper(&sh("sleep 30"), b"x", 100, soon);
        assert!(out.unwrap_err().contains("killed"));
        assert!(started.elapsed() < Duration::from_secs(5));
        // Output past the room is not read: a helper that writes on is cut off (its pipe
        // closes) and fails, instead of filling the server's memory.
        let out = run_helper(&sh("cat >/dev/null; yes"), b"x", 10, far);
        assert!(out.is_err(), "{out:?}");
    }

    #[test]
    fn size_and_text_budgets_hold() {
        let big = docx(&"<w:p><w:t>wordy</w:t></w:p>".repeat(1000));
        let raw = message(&[("application/octet-stream", "big.docx", big.clone())]);
        let limits = Limits {
            max_attachment: big.len() / 2,
            ..Limits::default()
        };
        let got = extract(&raw, &limits);
        assert!(got.text.is_empty());
        assert!(got.skipped[0].reason.contains("limit"), "{:?}", got.skipped);
        let limits = Limits {
            max_text: 100,
            ..Limits::default()
        };
        let got = extract(&raw, &limits);
        assert!(
            got.text.len() <= 100 && got.text.starts_with("wordy"),
            "{}",
            got.text
        );
    }

    /// 50 MB of markup with no text in one deflated entry: the entry bound (32 MiB) and the
    /// time budget stop it.
    #[test]
    fn zip_bomb_of_markup_is_bounded() {
        let mut xml = String::from("<w:document><w:body><w:p><w:t>headword</w:t></w:p>");
        while xml.len() < 50 * 1024 * 1024 {
            xml.push_str("<w:bookmarkStart w:id=\"0\"/><w:bookmarkEnd w:id=\"0\"/>");
        }
        let data = docx(&xml);
        drop(xml);
        let raw = message(&[("application/octet-stream", "bomb.docx", data)]);
        let limits = Limits::default();
        let started = Instant::now();
        let got = extract(&raw, &limits);
        let took = started.elapsed();
        eprintln!("50 MB markup bomb: {took:?}");
        assert!(
            took < limits.budget + Duration::from_secs(1),
            "took {took:?}"
        );
        assert!(got.text.contains("headword"), "{:?}", got.skipped);
    }
}
