//! PDF attachment text for search (issue 22) through the helper process `wharf extract-pdf`:
//! the helper's answers for a good, an encrypted and a malformed PDF; a small PDF that would take
//! gigabytes, stopped by the helper's own address-space limit; and a PDF
//! attachment found by SEARCH's store query after `wharf reindex` (which, like `wharf serve`,
//! extracts through the helper).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Env};

/// A one-page PDF showing `text` (ASCII), with a correct cross-reference table; `extra` objects
/// and trailer entries added.
fn pdf(text: &str, extra_objects: &[Vec<u8>], trailer_extra: &str) -> Vec<u8> {
    let stream = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
    let mut objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
           /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_vec(),
        format!(
            "<< /Length {} >>\nstream\n{stream}\nendstream",
            stream.len()
        )
        .into_bytes(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    ];
    objects.extend(extra_objects.iter().cloned());
    let mut out = b"%PDF-1.5\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(o);
        out.extend_from_slice(b"\nendobj\n");
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

/// Runs `wharf extract-pdf` on `data`: status success, stdout, stderr, and how long it took.
fn helper(data: &[u8], budget_ms: u64) -> (bool, String, String, Duration) {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(["extract-pdf", "--budget-ms", &budget_ms.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn the_helper_reads_pdf_text_and_refuses_bad_files() {
    let (ok, text, err, _) = helper(&pdf("Quarterly zanzibarpdf report", &[], ""), 5000);
    assert!(ok, "{err}");
    assert!(text.contains("zanzibarpdf"), "{text}");
    let encrypted = pdf(
        "secret words",
        &[b"<< /Filter /Standard /V 1 /R 2 /O (x) /U (y) /P -4 >>".to_vec()],
        "/Encrypt 6 0 R /ID [<00> <00>]",
    );
    let (ok, text, err, _) = helper(&encrypted, 5000);
    assert!(!ok && text.is_empty(), "{text}");
    assert!(err.contains("encrypted") || err.contains("PDF"), "{err}");
    let (ok, _, err, _) = helper(b"%PDF-1.4\nthis is not a PDF at all", 5000);
    assert!(!ok);
    assert!(err.contains("unreadable PDF"), "{err}");
}

/// 100 KB that lopdf turns into gigabytes: an object stream holding one array of 50 million
/// integers, parsed while the file loads, before any limit of ours. Without the helper's
/// address-space limit this took 6.3 GB and 20 s of CPU (measured); with it the helper dies at
/// its first allocation past 768 MiB, within a second, and the caller only sees a failed helper.
#[test]
fn a_pdf_that_would_take_gigabytes_dies_in_the_helper() {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(b"9 0 [").unwrap();
    let chunk = b"1 ".repeat(1 << 19);
    for _ in 0..100 {
        z.write_all(&chunk).unwrap();
    }
    z.write_all(b"]").unwrap();
    let packed = z.finish().unwrap();
    let mut object = format!(
        "<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length {} >>\nstream\n",
        packed.len()
    )
    .into_bytes();
    object.extend_from_slice(&packed);
    object.extend_from_slice(b"\nendstream");
    let data = pdf("bombword", &[object], "");
    assert!(data.len() < 200_000);
    let (ok, _, err, took) = helper(&data, 20_000);
    assert!(!ok, "the helper survived: {err}");
    assert!(err.contains("memory allocation"), "{err}");
    assert!(took < Duration::from_secs(8), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_finds_pdf_attachment_text() {
    let env = Env::new();
    let body = String::from_utf8(pdf("Annual reindexpdfword figures", &[], "")).unwrap();
    let part = format!(
        "Content-Type: application/pdf; name=r.pdf\nContent-Disposition: attachment; filename=r.pdf\n\n{body}"
    );
    let (out, got) = crate::reindex::reindex_attachment(&env, &part, "reindexpdfword").await;
    assert!(out.contains("1 messages' attachments extracted"), "{out}");
    assert_eq!(got.len(), 1, "{got:?}");
}
