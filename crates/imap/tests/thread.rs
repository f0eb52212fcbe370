//! THREAD / UID THREAD (RFC 5256 §3): ORDEREDSUBJECT and REFERENCES over mailboxes whose
//! threads are known by construction, and hostile reference chains.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;

/// (Message-ID, References, In-Reply-To, Subject, arrival second) → appended in this order.
async fn mailbox(env: &impl HasBackend, msgs: &[(&str, &str, &str, &str, u32)]) -> T {
    let mut t = T::login(env).await;
    for (id, refs, irt, subject, second) in msgs {
        let mut m = String::new();
        if !id.is_empty() {
            m.push_str(&format!("Message-ID: {id}\r\n"));
        }
        if !refs.is_empty() {
            m.push_str(&format!("References: {refs}\r\n"));
        }
        if !irt.is_empty() {
            m.push_str(&format!("In-Reply-To: {irt}\r\n"));
        }
        m.push_str(&format!(
            "Subject: {subject}\r\nFrom: a@example.org\r\n\r\nbody\r\n"
        ));
        let date = format!(
            "\"07-Jun-2021 10:{:02}:{:02} +0000\" ",
            second / 60,
            second % 60
        );
        t.append("INBOX", &date, &m).await;
    }
    t.cmd("s SELECT INBOX").await;
    t
}

fn threads(r: &str) -> &str {
    r.lines()
        .find_map(|l| l.strip_prefix("* THREAD"))
        .expect(r)
        .trim()
}

on_both!(
    references_follow_the_chains,
    a_loop_is_broken_by_the_later_message,
    subjects_merge_threads_without_references,
    orderedsubject_groups_by_subject,
    deep_and_self_referencing_chains_are_bounded,
);

async fn references_follow_the_chains(env: &impl HasBackend) {
    let mut t = mailbox(
        env,
        &[
            ("<1@x>", "", "", "Plans", 1),
            ("<2@x>", "<1@x>", "", "Re: Plans", 2),
            ("<3@x>", "<1@x> <2@x>", "", "Re: Plans", 3),
            ("<4@x>", "", "<1@x>", "Re: Plans", 4),
            ("<5@x>", "", "", "Other", 5),
            // Its parent is missing: a dummy, not at the root with one child, so 6 is a root.
            ("<6@x>", "<missing@x>", "", "Lost", 6),
            // Two replies to one missing message: a dummy with two children stays at the root.
            ("<7@x>", "<gone@x>", "", "Re: Gone", 7),
            ("<8@x>", "<gone@x>", "", "Re: Gone", 8),
        ],
    )
    .await;
    assert!(
        t.cmd("c CAPABILITY")
            .await
            .contains(" THREAD=ORDEREDSUBJECT THREAD=REFERENCES")
    );
    let r = t.cmd("a THREAD REFERENCES UTF-8 ALL").await;
    assert_eq!(threads(&r), "(1 (2 3)(4))(5)(6)((7)(8))", "{r}");
    assert!(r.ends_with("a OK THREAD completed\r\n"), "{r}");
    // The search narrows; UID THREAD names UIDs.
    t.cmd("x STORE 2 +FLAGS (\\Seen)").await;
    let r = t.cmd("b UID THREAD REFERENCES US-ASCII UNSEEN").await;
    assert_eq!(threads(&r), "(1 (3)(4))(5)(6)((7)(8))", "{r}");
    let r = t
        .cmd("c THREAD REFERENCES UTF-8 SUBJECT nothing-matches")
        .await;
    assert_eq!(r, "* THREAD\r\nc OK THREAD completed\r\n");
    assert!(t.cmd("d THREAD BOGUS UTF-8 ALL").await.starts_with("d BAD"));
    assert!(
        t.cmd("e THREAD REFERENCES KOI8-R ALL")
            .await
            .contains("e NO [BADCHARSET")
    );
}

/// RFC 5256 §3 step 1C: a message's References replace the parent an earlier message's chain
/// gave it; a link that would close a loop is not made.
async fn a_loop_is_broken_by_the_later_message(env: &impl HasBackend) {
    let mut t = mailbox(
        env,
        &[
            ("<a@x>", "", "", "", 30),
            ("<b@x>", "<a@x> <c@x>", "", "", 10),
            ("<c@x>", "<b@x>", "", "", 20),
        ],
    )
    .await;
    let r = t.cmd("a THREAD REFERENCES UTF-8 ALL").await;
    assert_eq!(threads(&r), "(3 2)(1)", "{r}");
}

/// Step 6: root threads with one base subject merge — a reply under the original, two
/// originals under a dummy.
async fn subjects_merge_threads_without_references(env: &impl HasBackend) {
    let mut t = mailbox(
        env,
        &[
            ("<1@x>", "", "", "Lunch", 1),
            ("<2@x>", "", "", "Re: Lunch", 2),
            ("<3@x>", "", "", "Dinner", 3),
            ("<4@x>", "", "", "Dinner", 4),
            ("<5@x>", "", "", "Fwd: Breakfast", 5),
        ],
    )
    .await;
    let r = t.cmd("a THREAD REFERENCES UTF-8 ALL").await;
    assert_eq!(threads(&r), "(1 2)((3)(4))(5)", "{r}");
}

async fn orderedsubject_groups_by_subject(env: &impl HasBackend) {
    let mut t = mailbox(
        env,
        &[
            ("<1@x>", "", "", "Beta", 5),
            ("<2@x>", "", "", "Re: Alpha", 2),
            ("<3@x>", "", "", "Alpha", 3),
            ("<4@x>", "", "", "Re: beta", 4),
            ("<5@x>", "", "", "RE: Alpha", 1),
            ("<6@x>", "", "", "Gamma", 6),
        ],
    )
    .await;
    // Alpha: 5 (second 1), 2, 3; Beta: 4 (second 4), 1; threads ordered by their first.
    let r = t.cmd("a THREAD ORDEREDSUBJECT UTF-8 ALL").await;
    assert_eq!(threads(&r), "(5 (2)(3))(4 1)(6)", "{r}");
}

/// A chain of 600 replies, each naming the one before, and a message naming itself: the answer
/// comes (the chain cut at 256 levels), nothing loops or overflows the stack.
async fn deep_and_self_referencing_chains_are_bounded(env: &impl HasBackend) {
    let mut msgs: Vec<(String, String)> = Vec::new();
    for i in 0..600 {
        let refs = if i == 0 {
            String::new()
        } else {
            format!("<{}@deep>", i - 1)
        };
        msgs.push((format!("<{i}@deep>"), refs));
    }
    msgs.push(("<self@x>".into(), "<self@x>".into()));
    let owned: Vec<(&str, &str, &str, &str, u32)> = msgs
        .iter()
        .enumerate()
        .map(|(i, (id, refs))| (id.as_str(), refs.as_str(), "", "", i as u32))
        .collect();
    let mut t = mailbox(env, &owned).await;
    let r = t.cmd("a THREAD REFERENCES UTF-8 ALL").await;
    let line = threads(&r);
    // Every message appears once.
    let nums: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let mut sorted = nums.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=601).collect::<Vec<u32>>(), "{line}");
    // The chain is cut: more than one thread, none deeper than the bound.
    assert!(line.starts_with("(1 2 3 "), "{line}");
    assert!(line.ends_with("(601)"), "{line}");
    assert!(line.matches('(').count() >= 3, "{line}");
}
