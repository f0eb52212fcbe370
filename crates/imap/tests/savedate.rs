//! SAVEDATE (RFC 8514): when a message was saved into its mailbox, as a FETCH item and the
//! SAVEDBEFORE / SAVEDON / SAVEDSINCE / SAVEDATESUPPORTED search keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;

on_both!(save_dates_are_when_the_mailbox_got_the_message);

async fn save_dates_are_when_the_mailbox_got_the_message(env: &impl HasBackend) {
    let mut t = T::login(env).await;
    assert!(t.cmd("a CAPABILITY").await.contains(" SAVEDATE"));
    // An old message, imported today: its INTERNALDATE is old, its SAVEDATE today.
    t.append("INBOX", "\"01-Jan-2020 10:00:00 +0000\" ", &message(1))
        .await;
    t.cmd("s SELECT INBOX").await;
    let r = t.cmd("b FETCH 1 (INTERNALDATE SAVEDATE)").await;
    assert!(
        r.contains("INTERNALDATE \"01-Jan-2020 10:00:00 +0000\""),
        "{r}"
    );
    let today = chrono::Utc::now().format("%d-%b-%Y").to_string();
    assert!(r.contains(&format!("SAVEDATE \"{today} ")), "{r}");
    // Dates by save date, not by internal date.
    let r = t.cmd(&format!("c SEARCH SAVEDON {today}")).await;
    assert!(r.starts_with("* SEARCH 1\r\n"), "{r}");
    let r = t.cmd("d SEARCH SAVEDBEFORE 1-Jan-2021").await;
    assert!(r.starts_with("* SEARCH\r\n"), "{r}");
    let r = t.cmd("e SEARCH BEFORE 1-Jan-2021").await;
    assert!(r.starts_with("* SEARCH 1\r\n"), "{r}");
    let r = t
        .cmd("f SEARCH SAVEDSINCE 1-Jan-2021 SAVEDATESUPPORTED")
        .await;
    assert!(r.starts_with("* SEARCH 1\r\n"), "{r}");
    // A copy is saved into its mailbox when copied.
    t.cmd("g COPY 1 Archive").await;
    t.cmd("h SELECT Archive").await;
    let r = t.cmd("i FETCH 1 SAVEDATE").await;
    assert!(r.contains(&format!("SAVEDATE \"{today} ")), "{r}");
}
