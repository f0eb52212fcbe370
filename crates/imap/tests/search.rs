//! Transcripts: SEARCH and UID SEARCH keys, ESEARCH return options, SEARCHRES `$`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;

async fn fixture() -> (Env, T) {
    let env = env().await;
    let mut t = T::login(&env).await;
    let msgs = [
        (
            "(\\Seen) \"01-Jan-2020 10:00:00 +0000\" ",
            "From: Ann <ann@example.org>\r\nTo: alice@example.test\r\nSubject: Quarterly report\r\nDate: Wed, 1 Jan 2020 10:00:00 +0000\r\nX-Priority: 1\r\n\r\nNumbers are up.\r\n",
        ),
        (
            "(\\Flagged $Junk) \"15-Jun-2021 10:00:00 +0000\" ",
            "From: Bob <bob@example.org>\r\nTo: carol@example.org\r\nCc: alice@example.test\r\nSubject: Lunch?\r\nDate: Tue, 15 Jun 2021 10:00:00 +0000\r\n\r\nPizza at noon, Grüße\r\n",
        ),
        (
            "(\\Deleted) \"20-Dec-2022 10:00:00 +0000\" ",
            "From: Ann <ann@example.org>\r\nTo: alice@example.test\r\nSubject: Re: Quarterly report\r\nDate: Tue, 20 Dec 2022 10:00:00 +0000\r\n\r\nThanks for the numbers, a much longer body to make this message larger than the others by quite a lot of bytes.\r\n",
        ),
    ];
    for (flags, m) in msgs {
        t.append("INBOX", flags, m).await;
    }
    t.cmd("s SELECT INBOX").await;
    (env, t)
}

#[tokio::test]
async fn flag_date_size_keys() {
    let (_env, mut t) = fixture().await;
    assert_eq!(
        t.cmd("a SEARCH ALL").await,
        "* SEARCH 1 2 3\r\na OK SEARCH completed\r\n"
    );
    assert!(t.cmd("b SEARCH SEEN").await.starts_with("* SEARCH 1\r\n"));
    assert!(
        t.cmd("c SEARCH UNSEEN UNDELETED")
            .await
            .starts_with("* SEARCH 2\r\n")
    );
    assert!(
        t.cmd("d SEARCH OR FLAGGED DELETED")
            .await
            .starts_with("* SEARCH 2 3\r\n")
    );
    assert!(
        t.cmd("e SEARCH NOT (SEEN)")
            .await
            .starts_with("* SEARCH 2 3\r\n")
    );
    assert!(
        t.cmd("f SEARCH KEYWORD $Junk")
            .await
            .starts_with("* SEARCH 2\r\n")
    );
    assert!(
        t.cmd("g SEARCH UNKEYWORD $junk")
            .await
            .starts_with("* SEARCH 1 3\r\n")
    );
    assert!(
        t.cmd("h SEARCH SINCE 1-Jun-2021")
            .await
            .starts_with("* SEARCH 2 3\r\n")
    );
    assert!(
        t.cmd("i SEARCH BEFORE 15-Jun-2021")
            .await
            .starts_with("* SEARCH 1\r\n")
    );
    assert!(
        t.cmd("j SEARCH ON 15-Jun-2021")
            .await
            .starts_with("* SEARCH 2\r\n")
    );
    assert!(
        t.cmd("k SEARCH SENTSINCE 1-Jan-2022")
            .await
            .starts_with("* SEARCH 3\r\n")
    );
    assert!(
        t.cmd("l SEARCH SENTBEFORE 2-Jan-2020")
            .await
            .starts_with("* SEARCH 1\r\n")
    );
    assert!(
        t.cmd("l2 SEARCH SENTON \"15-Jun-2021\"")
            .await
            .starts_with("* SEARCH 2\r\n")
    );
    assert!(
        t.cmd("m SEARCH LARGER 200")
            .await
            .starts_with("* SEARCH 3\r\n")
    );
    assert!(
        t.cmd("n SEARCH SMALLER 200")
            .await
            .starts_with("* SEARCH 1 2\r\n")
    );
    assert!(t.cmd("o SEARCH 2:*").await.starts_with("* SEARCH 2 3\r\n"));
    assert!(
        t.cmd("p UID SEARCH UID 1,3")
            .await
            .starts_with("* SEARCH 1 3\r\n")
    );
    assert!(
        t.cmd("q SEARCH RECENT NEW")
            .await
            .starts_with("* SEARCH 2 3\r\n")
    );
    assert!(t.cmd("r SEARCH OLD").await.starts_with("* SEARCH\r\n"));
    assert!(
        t.cmd("s SEARCH CHARSET KOI8-R ALL")
            .await
            .starts_with("s NO [BADCHARSET")
    );
    assert!(t.cmd("t SEARCH FOO").await.starts_with("t BAD"));
    assert!(t.cmd("u SEARCH 7").await.starts_with("* SEARCH\r\n"));
}

#[tokio::test]
async fn text_and_header_keys() {
    let (_env, mut t) = fixture().await;
    assert!(
        t.cmd("a SEARCH SUBJECT quarterly")
            .await
            .starts_with("* SEARCH 1 3\r\n")
    );
    assert!(
        t.cmd("b SEARCH FROM bob")
            .await
            .starts_with("* SEARCH 2\r\n")
    );
    assert!(
        t.cmd("c SEARCH TO carol")
            .await
            .starts_with("* SEARCH 2\r\n")
    );
    assert!(
        t.cmd("d SEARCH CC alice")
            .await
            .starts_with("* SEARCH 2\r\n")
    );
    assert!(
        t.cmd("e SEARCH BODY pizza")
            .await
            .starts_with("* SEARCH 2\r\n")
    );
    assert!(
        t.cmd("f SEARCH TEXT numbers")
            .await
            .starts_with("* SEARCH 1 3\r\n")
    );
    assert!(
        t.cmd("g SEARCH CHARSET UTF-8 BODY \"Grüße\"")
            .await
            .starts_with("* SEARCH 2\r\n")
    );
    assert!(
        t.cmd("h SEARCH HEADER X-Priority 1")
            .await
            .starts_with("* SEARCH 1\r\n")
    );
    assert!(
        t.cmd("i SEARCH HEADER Subject \"re:\"")
            .await
            .starts_with("* SEARCH 3\r\n")
    );
    assert!(
        t.cmd("j SEARCH NOT FROM ann SUBJECT lunch")
            .await
            .starts_with("* SEARCH 2\r\n")
    );
    let lit = "k SEARCH BODY {5}\r\npizza\r\n";
    assert!(
        t.raw(lit.as_bytes())
            .await
            .starts_with("+ Ready for literal data\r\n* SEARCH 2\r\n")
    );
}

#[tokio::test]
async fn esearch_and_searchres() {
    let (_env, mut t) = fixture().await;
    let r = t.cmd("a SEARCH RETURN (MIN MAX COUNT ALL) UNDELETED").await;
    assert_eq!(
        r,
        "* ESEARCH (TAG \"a\") MIN 1 MAX 2 ALL 1:2 COUNT 2\r\na OK SEARCH completed\r\n"
    );
    let r = t.cmd("b UID SEARCH RETURN () ALL").await;
    assert_eq!(
        r,
        "* ESEARCH (TAG \"b\") UID ALL 1:3\r\nb OK UID SEARCH completed\r\n"
    );
    let r = t.cmd("c SEARCH RETURN (COUNT) KEYWORD nothing").await;
    assert_eq!(
        r,
        "* ESEARCH (TAG \"c\") COUNT 0\r\nc OK SEARCH completed\r\n"
    );
    let r = t.cmd("d SEARCH RETURN (SAVE) FROM ann").await;
    assert_eq!(r, "d OK SEARCH completed\r\n");
    let r = t.cmd("e FETCH $ (UID)").await;
    assert_eq!(
        r,
        "* 1 FETCH (UID 1)\r\n* 3 FETCH (UID 3)\r\ne OK FETCH completed\r\n"
    );
    let r = t.cmd("f SEARCH $ SEEN").await;
    assert!(r.starts_with("* SEARCH 1\r\n"), "{r}");
    t.cmd("x ENABLE IMAP4rev2").await;
    let r = t.cmd("g SEARCH FLAGGED").await;
    assert_eq!(
        r,
        "* ESEARCH (TAG \"g\") ALL 2\r\ng OK SEARCH completed\r\n"
    );
}
