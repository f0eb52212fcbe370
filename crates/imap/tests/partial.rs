//! Transcripts: the PARTIAL search return option (RFC 5267 §4.4, with RFC 9394's negative
//! ranges) on SEARCH and UID SEARCH; SORT's in tests/sort.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;

/// Twelve messages, UIDs 1..=12, UIDs 3 and 4 \Deleted: UNDELETED matches ten, at sequence
/// numbers (and UIDs) 1,2,5..12.
async fn fixture() -> (Env, T) {
    let env = env().await;
    let mut t = T::login(&env).await;
    for i in 0..12 {
        t.append("INBOX", "", &message(i)).await;
    }
    t.cmd("s SELECT INBOX").await;
    t.cmd("d UID STORE 3:4 +FLAGS.SILENT (\\Deleted)").await;
    (env, t)
}

fn esearch(r: &str) -> &str {
    r.lines().find(|l| l.starts_with("* ESEARCH")).unwrap_or("")
}

#[tokio::test]
async fn rfc5267_paged_uid_search() {
    let (_env, mut t) = fixture().await;
    // RFC 5267 §4.4's example, scaled down: the first page, then the next.
    let r = t.cmd("A01 UID SEARCH RETURN (PARTIAL 1:5) UNDELETED").await;
    assert_eq!(
        r,
        "* ESEARCH (TAG \"A01\") UID PARTIAL (1:5 1:2,5:7)\r\nA01 OK UID SEARCH completed\r\n"
    );
    let r = t
        .cmd("A02 UID SEARCH RETURN (PARTIAL 6:10) UNDELETED")
        .await;
    assert_eq!(
        esearch(&r),
        "* ESEARCH (TAG \"A02\") UID PARTIAL (6:10 8:12)"
    );
    // A range past the end returns what exists; one wholly past it, NIL.
    let r = t
        .cmd("A03 UID SEARCH RETURN (PARTIAL 9:20) UNDELETED")
        .await;
    assert_eq!(
        esearch(&r),
        "* ESEARCH (TAG \"A03\") UID PARTIAL (9:20 11:12)"
    );
    let r = t
        .cmd("A04 UID SEARCH RETURN (PARTIAL 11:500) UNDELETED")
        .await;
    assert_eq!(
        esearch(&r),
        "* ESEARCH (TAG \"A04\") UID PARTIAL (11:500 NIL)"
    );
    // Either end may come first; the answer gives the lower end first (as Dovecot does, and
    // as imaptest's search-partial expects).
    let r = t.cmd("A05 UID SEARCH RETURN (PARTIAL 5:1) UNDELETED").await;
    assert_eq!(
        esearch(&r),
        "* ESEARCH (TAG \"A05\") UID PARTIAL (1:5 1:2,5:7)"
    );
}

#[tokio::test]
async fn rfc9394_negative_ranges() {
    let (_env, mut t) = fixture().await;
    // -1 is the last result (RFC 9394 §3.1's example, scaled down).
    let r = t
        .cmd("A01 UID SEARCH RETURN (PARTIAL -1:-3) UNDELETED")
        .await;
    assert_eq!(
        r,
        "* ESEARCH (TAG \"A01\") UID PARTIAL (-1:-3 10:12)\r\nA01 OK UID SEARCH completed\r\n"
    );
    let r = t
        .cmd("A02 UID SEARCH RETURN (PARTIAL -10:-9) UNDELETED")
        .await;
    assert_eq!(
        esearch(&r),
        "* ESEARCH (TAG \"A02\") UID PARTIAL (-9:-10 1:2)"
    );
    let r = t
        .cmd("A03 UID SEARCH RETURN (PARTIAL -8:-20) UNDELETED")
        .await;
    assert_eq!(
        esearch(&r),
        "* ESEARCH (TAG \"A03\") UID PARTIAL (-8:-20 1:2,5)"
    );
    let r = t
        .cmd("A04 UID SEARCH RETURN (PARTIAL -11:-20) UNDELETED")
        .await;
    assert_eq!(
        esearch(&r),
        "* ESEARCH (TAG \"A04\") UID PARTIAL (-11:-20 NIL)"
    );
    // No match at all.
    let r = t
        .cmd("A05 UID SEARCH RETURN (PARTIAL -1:-5) KEYWORD nothing")
        .await;
    assert_eq!(
        esearch(&r),
        "* ESEARCH (TAG \"A05\") UID PARTIAL (-1:-5 NIL)"
    );
}

#[tokio::test]
async fn partial_with_other_options() {
    let (_env, mut t) = fixture().await;
    // MIN, MAX and COUNT describe the whole result.
    let r = t
        .cmd("a UID SEARCH RETURN (COUNT PARTIAL 2:3 MIN MAX) UNDELETED")
        .await;
    assert_eq!(
        esearch(&r),
        "* ESEARCH (TAG \"a\") UID MIN 1 MAX 12 PARTIAL (2:3 2,5) COUNT 10"
    );
    // SEARCH (not UID) answers sequence numbers.
    t.cmd("x EXPUNGE").await;
    let r = t.cmd("b SEARCH RETURN (PARTIAL 2:4) ALL").await;
    assert_eq!(
        r,
        "* ESEARCH (TAG \"b\") PARTIAL (2:4 2:4)\r\nb OK SEARCH completed\r\n"
    );
    let r = t.cmd("c UID SEARCH RETURN (PARTIAL 2:4) ALL").await;
    assert_eq!(esearch(&r), "* ESEARCH (TAG \"c\") UID PARTIAL (2:4 2,5:6)");
    // SAVE with PARTIAL keeps just the messages returned.
    let r = t.cmd("d UID SEARCH RETURN (SAVE PARTIAL -2:-1) ALL").await;
    assert_eq!(
        esearch(&r),
        "* ESEARCH (TAG \"d\") UID PARTIAL (-1:-2 11:12)"
    );
    let r = t.cmd("e UID SEARCH UID $").await;
    assert!(r.starts_with("* SEARCH 11 12\r\n"), "{r}");
    // With a MODSEQ key the highest mod-sequence of the returned messages is added.
    let r = t.cmd("f UID SEARCH RETURN (PARTIAL 1:1) MODSEQ 1").await;
    assert!(
        esearch(&r).starts_with("* ESEARCH (TAG \"f\") UID PARTIAL (1:1 1) MODSEQ "),
        "{r}"
    );
}

#[tokio::test]
async fn partial_errors() {
    let (_env, mut t) = fixture().await;
    for (tag, opts) in [
        ("a", "PARTIAL 0:5"),
        ("b", "PARTIAL 1:-5"),
        ("c", "PARTIAL -1:5"),
        ("d", "PARTIAL 1:5 ALL"),
        ("e", "ALL PARTIAL 1:5"),
        ("f", "PARTIAL 1:2 PARTIAL 3:4"),
        ("g", "PARTIAL"),
        ("h", "PARTIAL 1"),
        ("i", "PARTIAL 1:*"),
        ("j", "PARTIAL -0:-1"),
    ] {
        let r = t
            .cmd(&format!("{tag} UID SEARCH RETURN ({opts}) ALL"))
            .await;
        assert!(r.starts_with(&format!("{tag} BAD")), "{opts}: {r}");
    }
    // Still usable afterwards.
    let r = t.cmd("k UID SEARCH RETURN (PARTIAL 1:1) ALL").await;
    assert_eq!(esearch(&r), "* ESEARCH (TAG \"k\") UID PARTIAL (1:1 1)");
}
