//! Text of document attachments (issue 22, migration 0018): DOCX, ODT, ODS, XLSX and PPTX
//! attachments become searchable by SEARCH TEXT and BODY once the background extraction ran, on
//! both backends, with the same answers; bad files and PDFs (read only by the helper process, which
//! these tests do not set up: crates/wharf/tests/pdf_text.rs) are skipped, and a huge
//! (compressible) one stays within the time budget. The files are built here: the zip formats with
//! the `zip` crate, the PDFs by hand (objects and cross-reference table).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use wharf_mime::attachments::Limits;
use wharf_store::*;
use wharf_testkit::store::store_account;
use wharf_testkit::{Backend, TestStore, on_both_backends};

fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len() / 3 * 4 + 8);
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

/// A message with a text/plain body and the given attachments (content type, file name, data).
fn message(subject: &str, body: &str, attachments: &[(&str, &str, Vec<u8>)]) -> Bytes {
    let mut m = format!(
        "From: a@example.org\r\nTo: b@example.com\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"BOUND\"\r\n\r\n--BOUND\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    );
    for (ctype, name, data) in attachments {
        m.push_str(&format!(
            "--BOUND\r\nContent-Type: {ctype}; name=\"{name}\"\r\n\
             Content-Disposition: attachment; filename=\"{name}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            b64(data)
        ));
    }
    m.push_str("--BOUND--\r\n");
    Bytes::from(m)
}

/// A zip of (name, content) entries, deflated.
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

fn docx(paragraphs: &[&str]) -> Vec<u8> {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><w:document \
         xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>",
    );
    for p in paragraphs {
        // Split in two runs, as Word does: the word must come out whole.
        let (a, b) = p.split_at(p.len() / 2);
        xml.push_str(&format!(
            "<w:p><w:r><w:t>{a}</w:t></w:r><w:r><w:t xml:space=\"preserve\">{b}</w:t></w:r></w:p>"
        ));
    }
    xml.push_str("</w:body></w:document>");
    zip_of(&[
        ("[Content_Types].xml", b"<Types/>"),
        ("word/document.xml", xml.as_bytes()),
    ])
}

fn odf(mimetype: &str, body: &str) -> Vec<u8> {
    let content = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><office:document-content \
         xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" \
         xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" \
         xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\">\
         <office:body>{body}</office:body></office:document-content>"
    );
    zip_of(&[
        ("mimetype", mimetype.as_bytes()),
        ("content.xml", content.as_bytes()),
    ])
}

fn xlsx(strings: &[&str]) -> Vec<u8> {
    let mut sst = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><sst \
         xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">",
    );
    for s in strings {
        sst.push_str(&format!("<si><t>{s}</t></si>"));
    }
    sst.push_str("</sst>");
    let sheet = "<?xml version=\"1.0\"?><worksheet \
        xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData>\
        <row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c><c r=\"B1\" t=\"inlineStr\"><is><t>inlinecellword</t></is></c></row>\
        </sheetData></worksheet>";
    zip_of(&[
        ("xl/sharedStrings.xml", sst.as_bytes()),
        ("xl/worksheets/sheet1.xml", sheet.as_bytes()),
    ])
}

fn pptx(slides: &[&str]) -> Vec<u8> {
    let xml: Vec<String> = slides
        .iter()
        .map(|s| {
            format!(
                "<?xml version=\"1.0\"?><p:sld xmlns:p=\"http://schemas.openxmlformats.org/presentationml/2006/main\" \
                 xmlns:a=\"http://schemas.openxmlformats.org/drawingml/2006/main\"><p:cSld><p:spTree><p:sp><p:txBody>\
                 <a:p><a:r><a:t>{s}</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>"
            )
        })
        .collect();
    let names: Vec<String> = (1..=slides.len())
        .map(|i| format!("ppt/slides/slide{i}.xml"))
        .collect();
    let entries: Vec<(&str, &[u8])> = names
        .iter()
        .zip(&xml)
        .map(|(n, x)| (n.as_str(), x.as_bytes()))
        .collect();
    zip_of(&entries)
}

/// A one-page PDF showing `text` in Helvetica, with a correct cross-reference table; `extra`
/// goes into the trailer dictionary (an /Encrypt entry for the encrypted case).
fn pdf(text: &str, extra_objects: &[&str], trailer_extra: &str) -> Vec<u8> {
    let stream = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!(
            "<< /Length {} >>\nstream\n{stream}\nendstream",
            stream.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_string(),
    ];
    objects.extend(extra_objects.iter().map(|s| s.to_string()));
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R {trailer_extra} >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// Runs the background extraction until nothing is left.
async fn extract_all(store: &dyn Store) {
    for _ in 0..100 {
        if store
            .extract_attachment_text(8, Limits::default())
            .await
            .unwrap()
            == 0
        {
            return;
        }
    }
    panic!("extraction did not finish");
}

/// SQLite: waits until the writer has indexed every row again (after the body grew).
async fn wait_indexed(files: &TestStore) {
    if files.backend() != Backend::Sqlite {
        return;
    }
    let db = files.path().join("wharf.db");
    for _ in 0..400 {
        let c = rusqlite::Connection::open(&db).unwrap();
        let left: i64 = c
            .query_row(
                "SELECT count(*) FROM message_text WHERE tri_indexed = 0",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if left == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("rows left unindexed");
}

const PDF_TYPE: &str = "application/pdf";
const DOCX_TYPE: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

async fn attachment_text_is_searchable(backend: Backend) {
    let files = TestStore::new(backend);
    let store = files.open().await;
    let a = store_account(store.as_ref(), "docs@example.com", 0).await;
    let b = store_account(store.as_ref(), "other@example.com", 0).await;
    let inbox = store.get_mailbox(a.id, "INBOX").await.unwrap().unwrap();
    let other = store.get_mailbox(b.id, "INBOX").await.unwrap().unwrap();
    let cases: Vec<(&str, Bytes)> = vec![
        (
            "quokkadocx",
            message(
                "docx",
                "see attached",
                &[(
                    DOCX_TYPE,
                    "r.docx",
                    docx(&["Intro", "The quokkadocx paragraph", "Grüße Müller"]),
                )],
            ),
        ),
        (
            "odtwombat",
            message(
                "odt",
                "see attached",
                &[(
                    "application/vnd.oasis.opendocument.text",
                    "r.odt",
                    odf(
                        "application/vnd.oasis.opendocument.text",
                        "<office:text><text:p>An odtwombat &amp; more</text:p></office:text>",
                    ),
                )],
            ),
        ),
        (
            "odsplatypus",
            message(
                "ods",
                "see attached",
                &[(
                    "application/octet-stream",
                    "sheet.ods",
                    odf(
                        "application/vnd.oasis.opendocument.spreadsheet",
                        "<office:spreadsheet><table:table><table:table-row><table:table-cell><text:p>odsplatypus</text:p></table:table-cell></table:table-row></table:table></office:spreadsheet>",
                    ),
                )],
            ),
        ),
        (
            "xlsxnumbat",
            message(
                "xlsx",
                "see attached",
                &[(
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    "s.xlsx",
                    xlsx(&["Revenue", "xlsxnumbat total"]),
                )],
            ),
        ),
        (
            "pptxdingo",
            message(
                "pptx",
                "see attached",
                &[(
                    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
                    "s.pptx",
                    pptx(&["Title slide", "pptxdingo roadmap"]),
                )],
            ),
        ),
    ];
    let mut uids = Vec::new();
    for (_, raw) in &cases {
        uids.push(
            store
                .append(inbox.id, raw.clone(), Flags::empty(), &[], 0)
                .await
                .unwrap()
                .uid,
        );
    }
    // The other account has the DOCX word too: never in the first account's answers.
    let other_uid = store
        .append(
            other.id,
            message(
                "x",
                "y",
                &[(DOCX_TYPE, "o.docx", docx(&["quokkadocx elsewhere"]))],
            ),
            Flags::empty(),
            &[],
            0,
        )
        .await
        .unwrap()
        .uid;
    // Before the extraction ran: attachment words are not found (eventually consistent).
    for (word, _) in &cases {
        assert!(
            store
                .search_text(inbox.id, TextField::Body, word)
                .await
                .unwrap()
                .is_empty(),
            "{word} found before extraction"
        );
    }
    extract_all(store.as_ref()).await;
    for _pass in 0..2 {
        for ((word, _), uid) in cases.iter().zip(&uids) {
            for field in [TextField::Body, TextField::Text] {
                let got = store.search_text(inbox.id, field, word).await.unwrap();
                assert_eq!(got, vec![*uid], "{word} {field:?} on {backend:?}");
            }
            assert!(
                store
                    .search_text(inbox.id, TextField::Subject, word)
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
        // Folded like the rest of the text; a word split across runs comes out whole; entity
        // references decoded; inline cells read.
        assert_eq!(
            store
                .search_text(inbox.id, TextField::Body, "grusse muller")
                .await
                .unwrap(),
            vec![uids[0]]
        );
        assert_eq!(
            store
                .search_text(inbox.id, TextField::Body, "odtwombat & more")
                .await
                .unwrap(),
            vec![uids[1]]
        );
        assert_eq!(
            store
                .search_text(inbox.id, TextField::Body, "inlinecellword")
                .await
                .unwrap(),
            vec![uids[3]]
        );
        // Still found by its own text.
        assert_eq!(
            store
                .search_text(inbox.id, TextField::Body, "see attached")
                .await
                .unwrap(),
            uids
        );
        assert_eq!(
            store
                .search_text(other.id, TextField::Body, "quokkadocx")
                .await
                .unwrap(),
            vec![other_uid]
        );
        // Second pass: after SQLite's writer put the grown rows back in the trigram index.
        wait_indexed(&files).await;
    }
    // Nothing left to do, and a second run appends nothing.
    assert_eq!(
        store
            .extract_attachment_text(8, Limits::default())
            .await
            .unwrap(),
        0
    );
}

async fn bad_pdfs_are_skipped(backend: Backend) {
    let files = TestStore::new(backend);
    let store = files.open().await;
    let a = store_account(store.as_ref(), "bad@example.com", 0).await;
    let inbox = store.get_mailbox(a.id, "INBOX").await.unwrap().unwrap();
    let encrypted = pdf(
        "secretpdfword",
        &[
            "<< /Filter /Standard /V 1 /R 2 /O <00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF> \
           /U <FFEEDDCCBBAA99887766554433221100FFEEDDCCBBAA99887766554433221100> /P -44 >>",
        ],
        "/Encrypt 6 0 R /ID [<0123456789ABCDEF0123456789ABCDEF> <0123456789ABCDEF0123456789ABCDEF>]",
    );
    let mut truncated = pdf("cutpdfword", &[], "");
    truncated.truncate(60);
    let raw = message(
        "bad files",
        "visiblebodyword",
        &[
            (PDF_TYPE, "locked.pdf", encrypted),
            (PDF_TYPE, "cut.pdf", truncated),
            (
                PDF_TYPE,
                "junk.pdf",
                b"%PDF-1.7\n\x00\xff garbage ((((( <<<< obj".to_vec(),
            ),
            (DOCX_TYPE, "junk.docx", b"PK\x03\x04 not a zip".to_vec()),
            (DOCX_TYPE, "good.docx", docx(&["survivorword"])),
            // Well-formed, but read only by a PDF helper process, which is not set up here.
            (
                PDF_TYPE,
                "fine.pdf",
                pdf("Report zanzibarpdf ends", &[], ""),
            ),
        ],
    );
    let uid = store
        .append(inbox.id, raw, Flags::empty(), &[], 0)
        .await
        .unwrap()
        .uid;
    extract_all(store.as_ref()).await;
    wait_indexed(&files).await;
    assert_eq!(
        store
            .search_text(inbox.id, TextField::Body, "visiblebodyword")
            .await
            .unwrap(),
        vec![uid]
    );
    assert_eq!(
        store
            .search_text(inbox.id, TextField::Body, "survivorword")
            .await
            .unwrap(),
        vec![uid]
    );
    assert!(
        store
            .search_text(inbox.id, TextField::Text, "secretpdfword")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .search_text(inbox.id, TextField::Text, "cutpdfword")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .search_text(inbox.id, TextField::Text, "zanzibarpdf")
            .await
            .unwrap()
            .is_empty(),
        "without a PDF helper (none is set up in these tests) PDF text is not extracted"
    );
}

/// A DOCX whose document.xml inflates to 50 MB (markup with no text after a first paragraph):
/// read through the entry bound and the time budget, without holding extraction up.
async fn huge_compressible_attachment_stays_in_budget(backend: Backend) {
    let files = TestStore::new(backend);
    let store = files.open().await;
    let a = store_account(store.as_ref(), "big@example.com", 0).await;
    let inbox = store.get_mailbox(a.id, "INBOX").await.unwrap().unwrap();
    let mut xml = String::from(
        "<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>\
         <w:p><w:r><w:t>bombheadword</w:t></w:r></w:p>",
    );
    let filler =
        "<w:p><w:r><w:t>filler text that repeats</w:t></w:r></w:p><w:bookmarkStart w:id=\"0\"/>";
    while xml.len() < 50 * 1024 * 1024 {
        xml.push_str(filler);
    }
    xml.push_str("<w:p><w:r><w:t>bombtailword</w:t></w:r></w:p></w:body></w:document>");
    let data = zip_of(&[("word/document.xml", xml.as_bytes())]);
    drop(xml);
    assert!(data.len() < 1024 * 1024, "compressed to {}", data.len());
    let uid = store
        .append(
            inbox.id,
            message("big", "small body", &[(DOCX_TYPE, "big.docx", data)]),
            Flags::empty(),
            &[],
            0,
        )
        .await
        .unwrap()
        .uid;
    let limits = Limits::default();
    let started = Instant::now();
    assert_eq!(store.extract_attachment_text(8, limits).await.unwrap(), 1);
    let took = started.elapsed();
    eprintln!("50 MB docx on {backend:?}: {took:?}");
    assert!(
        took < limits.budget + Duration::from_secs(2),
        "took {took:?}"
    );
    assert_eq!(
        store
            .search_text(inbox.id, TextField::Body, "bombheadword")
            .await
            .unwrap(),
        vec![uid]
    );
    // The text stops at the 1 MiB budget: the tail is not read.
    assert!(
        store
            .search_text(inbox.id, TextField::Body, "bombtailword")
            .await
            .unwrap()
            .is_empty()
    );
}

/// A message without a document attachment is stored as done: the extractor, which would read
/// and parse it again off the delivery path, never looks at it; one with a document waits for it.
async fn messages_without_documents_are_not_read_again(backend: Backend) {
    let files = TestStore::new(backend);
    let store = files.open().await;
    let a = store_account(store.as_ref(), "plain@example.com", 0).await;
    let inbox = store.get_mailbox(a.id, "INBOX").await.unwrap().unwrap();
    for i in 0..5 {
        let png = vec![0x89, b'P', b'N', b'G'];
        let attachments: Vec<(&str, &str, Vec<u8>)> = if i % 2 == 0 {
            Vec::new()
        } else {
            vec![("image/png", "p.png", png)]
        };
        store
            .append(
                inbox.id,
                message("plain", "no documents here", &attachments),
                Flags::empty(),
                &[],
                0,
            )
            .await
            .unwrap();
    }
    let limits = Limits::default();
    assert_eq!(store.extract_attachment_text(8, limits).await.unwrap(), 0);
    store
        .append(
            inbox.id,
            message(
                "doc",
                "see attached",
                &[(DOCX_TYPE, "a.docx", docx(&["waitingword"]))],
            ),
            Flags::empty(),
            &[],
            0,
        )
        .await
        .unwrap();
    assert_eq!(store.extract_attachment_text(8, limits).await.unwrap(), 1);
}

on_both_backends!(
    attachment_text_is_searchable,
    messages_without_documents_are_not_read_again,
    bad_pdfs_are_skipped,
    huge_compressible_attachment_stays_in_budget,
);

/// Extraction time per attachment type (debug build), and the reasons bad files are skipped:
/// `cargo test -p wharf-store --test attachment_text measure -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure_extraction() {
    let para = "Quarterly report on the harbour works, with figures and the plan for next year.";
    let many: Vec<String> = (0..2000).map(|i| format!("{para} {i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let odt_body: String = many
        .iter()
        .map(|p| format!("<text:p>{p}</text:p>"))
        .collect();
    let slides: Vec<&str> = many.iter().take(200).copied().collect();
    let cases: Vec<(&str, Bytes)> = vec![
        (
            "pdf, 1 page",
            message("m", "b", &[(PDF_TYPE, "a.pdf", pdf(para, &[], ""))]),
        ),
        (
            "docx, 2,000 paragraphs",
            message("m", "b", &[(DOCX_TYPE, "a.docx", docx(&many))]),
        ),
        (
            "odt, 2,000 paragraphs",
            message(
                "m",
                "b",
                &[(
                    "application/vnd.oasis.opendocument.text",
                    "a.odt",
                    odf(
                        "application/vnd.oasis.opendocument.text",
                        &format!("<office:text>{odt_body}</office:text>"),
                    ),
                )],
            ),
        ),
        (
            "xlsx, 2,000 strings",
            message(
                "m",
                "b",
                &[(
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    "a.xlsx",
                    xlsx(&many),
                )],
            ),
        ),
        (
            "pptx, 200 slides",
            message(
                "m",
                "b",
                &[(
                    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
                    "a.pptx",
                    pptx(&slides),
                )],
            ),
        ),
        (
            "encrypted pdf",
            message(
                "m",
                "b",
                &[(
                    PDF_TYPE,
                    "e.pdf",
                    pdf(
                        "x",
                        &[
                            "<< /Filter /Standard /V 1 /R 2 /O <00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF> \
           /U <FFEEDDCCBBAA99887766554433221100FFEEDDCCBBAA99887766554433221100> /P -44 >>",
                        ],
                        "/Encrypt 6 0 R /ID [<0123456789ABCDEF0123456789ABCDEF> <0123456789ABCDEF0123456789ABCDEF>]",
                    ),
                )],
            ),
        ),
    ];
    for (what, raw) in &cases {
        let mut times = Vec::new();
        let mut got = None;
        for _ in 0..5 {
            let t = Instant::now();
            got = Some(wharf_mime::attachments::extract(raw, &Limits::default()));
            times.push(t.elapsed());
        }
        times.sort();
        let got = got.unwrap();
        eprintln!(
            "{what}: median {:?}, {} bytes in, {} bytes of text, skipped {:?}",
            times[2],
            raw.len(),
            got.text.len(),
            got.skipped
        );
    }
}

/// A row whose text is rewritten (the header backfill, here after its fold version was set back)
/// loses the appended attachment text and is extracted again: the text is in `body` once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewritten_text_is_extracted_again() {
    let files = TestStore::new(Backend::Sqlite);
    let store = files.open().await;
    let a = store_account(store.as_ref(), "again@example.com", 0).await;
    let inbox = store.get_mailbox(a.id, "INBOX").await.unwrap().unwrap();
    let raw = message("x", "y", &[(DOCX_TYPE, "a.docx", docx(&["againword"]))]);
    let uid = store
        .append(inbox.id, raw, Flags::empty(), &[], 0)
        .await
        .unwrap()
        .uid;
    extract_all(store.as_ref()).await;
    let db = files.path().join("wharf.db");
    let state = || {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.query_row(
            "SELECT attachments_version, (length(body) - length(replace(body, 'againword', ''))) / 9 \
             FROM message_text",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        )
        .unwrap()
    };
    assert_eq!(state(), (1, 1));
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("UPDATE message_text SET text_version = 0", [])
        .unwrap();
    assert_eq!(store.backfill_header_text(10).await.unwrap(), 1);
    assert_eq!(state(), (0, 0));
    assert!(
        store
            .search_text(inbox.id, TextField::Body, "againword")
            .await
            .unwrap()
            .is_empty()
    );
    extract_all(store.as_ref()).await;
    assert_eq!(state(), (1, 1));
    assert_eq!(
        store
            .search_text(inbox.id, TextField::Body, "againword")
            .await
            .unwrap(),
        vec![uid]
    );
}
