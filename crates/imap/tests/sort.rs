//! SORT / UID SORT (RFC 5256), SORT=DISPLAY (RFC 5957) and ESORT (RFC 5267) over a small
//! corpus whose orderings are known by construction.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;

/// (from, to, cc, subject, date, body padding: far apart, so sizes order as they do) — UIDs 1..=6 in this order.
const CORPUS: &[(&str, &str, &str, &str, &str, usize)] = &[
    (
        "Zed <zed@example.org>",
        "amy@example.com",
        "",
        "Re: Budget",
        "Tue, 1 Jun 2021 10:00:00 +0000",
        1500,
    ),
    (
        "\"Anna\" <bob@example.org>",
        "Carl <carl@example.com>",
        "x@example.com",
        "budget",
        "Mon, 31 May 2021 10:00:00 +0000",
        300,
    ),
    (
        "carol@example.org",
        "=?UTF-8?Q?=C3=89mile?= <emile@example.com>",
        "",
        "[list] Fwd: Agenda",
        "Wed, 2 Jun 2021 09:00:00 +0200",
        3000,
    ),
    (
        "dave@example.org",
        "bob@example.com",
        "a@example.com",
        "agenda (fwd)",
        "",
        600,
    ),
    (
        "=?UTF-8?Q?=C3=85sa?= <asa@example.org>",
        "",
        "",
        "Zebra",
        "Thu, 3 Jun 2021 10:00:00 +0000",
        0,
    ),
    (
        "Bob <bob@example.org>",
        "dan@example.com",
        "",
        "[Fwd: Re: Apples]",
        "garbage date",
        2000,
    ),
];

async fn corpus(env: &impl HasBackend) -> T {
    let mut t = T::login(env).await;
    for (i, (from, to, cc, subject, date, pad)) in CORPUS.iter().enumerate() {
        let mut m = format!("From: {from}\r\nSubject: {subject}\r\n");
        if !to.is_empty() {
            m.push_str(&format!("To: {to}\r\n"));
        }
        if !cc.is_empty() {
            m.push_str(&format!("Cc: {cc}\r\n"));
        }
        if !date.is_empty() {
            m.push_str(&format!("Date: {date}\r\n"));
        }
        m.push_str(&format!("\r\n{}\r\n", "x".repeat(*pad)));
        // Arrival times one second apart, after every sent date.
        t.append("INBOX", &format!("\"05-Jun-2021 10:00:0{i} +0000\" "), &m)
            .await;
    }
    t.cmd("s SELECT INBOX").await;
    t
}

fn sorted(r: &str) -> String {
    r.lines()
        .find(|l| l.starts_with("* SORT"))
        .expect(r)
        .trim_start_matches("* SORT")
        .trim()
        .to_string()
}

on_both!(sort_orders, esort_and_search_keys, esort_partial);

async fn sort_orders(env: &impl HasBackend) {
    let mut t = corpus(env).await;
    assert!(
        t.cmd("c CAPABILITY")
            .await
            .contains(" SORT SORT=DISPLAY ESORT")
    );
    for (criteria, expected) in [
        // Base subjects: BUDGET, BUDGET, AGENDA, AGENDA, ZEBRA, APPLES; ties by number.
        ("SUBJECT", "3 4 6 1 2 5"),
        // REVERSE applies to the key, not to the tie-break by number.
        ("REVERSE SUBJECT", "5 1 2 6 3 4"),
        // Mailboxes: ZED, BOB, CAROL, DAVE, ASA, BOB.
        ("FROM", "5 2 6 3 4 1"),
        // To mailboxes: AMY, CARL, EMILE, BOB, "", DAN.
        ("TO", "5 1 4 2 6 3"),
        ("CC", "1 3 5 6 4 2"),
        ("SIZE", "5 2 4 1 6 3"),
        // Sent dates (3 is 07:00 UTC on 2 June); 4 and 6 fall back to their arrival (5 June).
        ("DATE", "2 1 3 5 4 6"),
        ("REVERSE DATE", "6 4 5 3 1 2"),
        ("ARRIVAL", "1 2 3 4 5 6"),
        ("REVERSE ARRIVAL", "6 5 4 3 2 1"),
        // Display names: zed, anna, carol@…, dave@…, åsa, bob.
        ("DISPLAYFROM", "2 6 3 4 1 5"),
        // Display: amy@…, carl, émile, bob@…, "", dan@….
        ("DISPLAYTO", "5 1 4 2 6 3"),
        ("SUBJECT REVERSE SIZE", "3 4 6 1 2 5"),
        ("SUBJECT SIZE", "4 3 6 2 1 5"),
    ] {
        let r = t.cmd(&format!("a SORT ({criteria}) UTF-8 ALL")).await;
        assert_eq!(sorted(&r), expected, "{criteria}: {r}");
        assert!(r.ends_with("a OK SORT completed\r\n"), "{r}");
    }
}

async fn esort_and_search_keys(env: &impl HasBackend) {
    let mut t = corpus(env).await;
    // The search part narrows first; UID SORT answers UIDs.
    t.cmd("x STORE 2,5 +FLAGS (\\Seen)").await;
    let r = t.cmd("a UID SORT (SUBJECT) US-ASCII UNSEEN").await;
    assert_eq!(sorted(&r), "3 4 6 1", "{r}");
    let r = t.cmd("b SORT (SIZE) UTF-8 NOT FROM bob").await;
    assert_eq!(sorted(&r), "5 4 1 3");
    let r = t.cmd("c SORT (SIZE) UTF-8 SUBJECT nothing-like-this").await;
    assert_eq!(r, "* SORT\r\nc OK SORT completed\r\n");
    // ESORT: MIN and MAX are the first and last in sort order; ALL keeps the order.
    let r = t
        .cmd("d SORT RETURN (MIN MAX COUNT ALL) (REVERSE SIZE) UTF-8 ALL")
        .await;
    assert!(
        r.contains("* ESEARCH (TAG \"d\") MIN 3 MAX 5 ALL 3,6,1,4,2,5 COUNT 6\r\n"),
        "{r}"
    );
    let r = t.cmd("e UID SORT RETURN () (ARRIVAL) UTF-8 1:3").await;
    assert!(r.contains("* ESEARCH (TAG \"e\") UID ALL 1:3\r\n"), "{r}");
    // Errors.
    assert!(
        t.cmd("f SORT (SIZE) KOI8-R ALL")
            .await
            .contains("f NO [BADCHARSET")
    );
    assert!(t.cmd("g SORT (BOGUS) UTF-8 ALL").await.starts_with("g BAD"));
    assert!(t.cmd("h SORT () UTF-8 ALL").await.starts_with("h BAD"));
    assert!(t.cmd("i SORT (SIZE) ALL").await.starts_with("i BAD"));
}

async fn esort_partial(env: &impl HasBackend) {
    let mut t = corpus(env).await;
    // RFC 5267 §4.4 / RFC 9394: PARTIAL counts positions in sort order (3,6,1,4,2,5 here) and
    // answers them in that order; MIN/MAX/COUNT still describe the whole result.
    let r = t
        .cmd("a SORT RETURN (PARTIAL 1:2) (REVERSE SIZE) UTF-8 ALL")
        .await;
    assert_eq!(
        r,
        "* ESEARCH (TAG \"a\") PARTIAL (1:2 3,6)\r\na OK SORT completed\r\n"
    );
    let r = t
        .cmd("b SORT RETURN (MIN COUNT PARTIAL 3:5) (REVERSE SIZE) UTF-8 ALL")
        .await;
    assert!(
        r.contains("* ESEARCH (TAG \"b\") MIN 3 PARTIAL (3:5 1,4,2) COUNT 6\r\n"),
        "{r}"
    );
    let r = t
        .cmd("c UID SORT RETURN (PARTIAL -1:-2) (REVERSE SIZE) UTF-8 ALL")
        .await;
    assert!(
        r.contains("* ESEARCH (TAG \"c\") UID PARTIAL (-1:-2 2,5)\r\n"),
        "{r}"
    );
    let r = t
        .cmd("d UID SORT RETURN (PARTIAL 7:9) (SIZE) UTF-8 ALL")
        .await;
    assert!(
        r.contains("* ESEARCH (TAG \"d\") UID PARTIAL (7:9 NIL)\r\n"),
        "{r}"
    );
    assert!(
        t.cmd("e SORT RETURN (ALL PARTIAL 1:2) (SIZE) UTF-8 ALL")
            .await
            .starts_with("e BAD")
    );
}
