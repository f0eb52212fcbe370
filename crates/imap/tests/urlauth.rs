//! Transcripts: URLAUTH (RFC 4467) — GENURLAUTH, URLFETCH and RESETKEY, the access identifiers,
//! expiry, tampering, and who may sign. On the in-memory double and on the embedded store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use wharf_imap::config::ImapConfig;
use wharf_imap::syntax::{UrlAccess, parse_auth_url};

use crate::common;
use common::*;

on_both!(
    signed_urls_fetch_until_their_key_is_reset,
    access_identifiers_expiry_and_tampering,
    only_the_owner_signs_and_resets,
    fetched_octets_count_against_the_shared_budget
);

/// The one URL a `* GENURLAUTH` line carries.
fn signed(r: &str) -> String {
    let line = r
        .lines()
        .find(|l| l.starts_with("* GENURLAUTH "))
        .unwrap_or_else(|| panic!("no GENURLAUTH in {r}"));
    let url = line["* GENURLAUTH ".len()..].trim_matches('"').to_string();
    let token = url.rsplit(':').next().unwrap();
    assert_eq!(token.len(), 64, "{url}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{url}");
    url
}

async fn genurlauth(t: &mut T, rump: &str) -> String {
    let r = t.cmd(&format!("g GENURLAUTH \"{rump}\" INTERNAL")).await;
    assert!(r.contains("g OK GENURLAUTH completed"), "{r}");
    signed(&r)
}

async fn fetch(t: &mut T, url: &str) -> String {
    let r = t.cmd(&format!("f URLFETCH \"{url}\"")).await;
    assert!(r.contains("f OK URLFETCH completed"), "{r}");
    r
}

const A: &str = "imap://alice@example.test/INBOX";

async fn signed_urls_fetch_until_their_key_is_reset(env: &impl HasBackend) {
    let mut alice = T::login(env).await;
    let r = alice.cmd("c CAPABILITY").await;
    assert!(r.contains(" URLAUTH"), "{r}");
    alice.append("INBOX", "", &message(1)).await;
    alice.append("INBOX", "", &message(2)).await;
    let url1 = genurlauth(&mut alice, &format!("{A}/;uid=1;urlauth=user+{USER}")).await;
    let url2 = genurlauth(&mut alice, &format!("{A}/;uid=2;urlauth=user+{USER}")).await;
    assert_ne!(url1, url2);
    let m1 = message(1);
    let r = fetch(&mut alice, &url1).await;
    assert_eq!(
        r,
        format!(
            "* URLFETCH {url1} {{{}}}\r\n{m1}\r\nf OK URLFETCH completed\r\n",
            m1.len()
        )
    );
    // Several in one command; a section and a partial range.
    let r = alice.cmd("st STATUS INBOX (UIDVALIDITY)").await;
    let validity: u32 = first(&r)
        .trim_end_matches(')')
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let wrong = format!("{A};UIDVALIDITY={}/;uid=2;urlauth=authuser", validity + 1);
    let r = alice
        .cmd(&format!("g0 GENURLAUTH \"{wrong}\" INTERNAL"))
        .await;
    assert!(r.starts_with("g0 NO [BADURL"), "{r}");
    let text = genurlauth(
        &mut alice,
        &format!(
            "{A};UIDVALIDITY={validity}/;uid=2/;section=TEXT/;partial=0.5;urlauth=user+{USER}"
        ),
    )
    .await;
    let r = alice
        .cmd(&format!("f2 URLFETCH \"{url2}\" \"{text}\""))
        .await;
    assert!(r.contains("Hello body 2"), "{r}");
    assert!(r.contains(&format!(" {text} {{5}}\r\nHello\r\n")), "{r}");
    // RESETKEY voids them all; a new signature differs.
    let r = alice.cmd("k RESETKEY INBOX").await;
    assert_eq!(r, "k OK RESETKEY completed\r\n");
    for url in [&url1, &url2] {
        let r = fetch(&mut alice, url).await;
        assert_eq!(first(&r), format!("* URLFETCH {url} NIL"));
    }
    let again = genurlauth(&mut alice, &format!("{A}/;uid=1;urlauth=user+{USER}")).await;
    assert_ne!(again, url1);
    assert!(fetch(&mut alice, &again).await.contains("Hello body 1"));
    // RESETKEY without a mailbox resets every key of the account.
    alice.cmd("k2 RESETKEY").await;
    let r = fetch(&mut alice, &again).await;
    assert!(r.contains(" NIL\r\n"), "{r}");
}

fn first(r: &str) -> &str {
    r.lines().next().unwrap_or("")
}

async fn access_identifiers_expiry_and_tampering(env: &impl HasBackend) {
    let mut alice = T::login(env).await;
    alice.append("INBOX", "", &message(1)).await;
    let mut bob = T::login_as(env, USER2, ImapConfig::default()).await;
    let authuser = genurlauth(&mut alice, &format!("{A}/;uid=1;urlauth=authuser")).await;
    let anonymous = genurlauth(&mut alice, &format!("{A}/;uid=1;urlauth=anonymous")).await;
    let only_alice = genurlauth(&mut alice, &format!("{A}/;uid=1;urlauth=user+{USER}")).await;
    let only_bob = genurlauth(&mut alice, &format!("{A}/;uid=1;urlauth=user+{USER2}")).await;
    let submit = genurlauth(&mut alice, &format!("{A}/;uid=1;urlauth=submit+{USER}")).await;
    let expired = genurlauth(
        &mut alice,
        &format!("{A}/;uid=1;expire=2001-01-01T00:00:00Z;urlauth=authuser"),
    )
    .await;
    let later = genurlauth(
        &mut alice,
        &format!("{A}/;uid=1;expire=2999-01-01T00:00:00Z;urlauth=authuser"),
    )
    .await;
    // Bob reads alice's message through the URL alone (no ACL on her INBOX).
    for url in [&authuser, &anonymous, &only_bob, &later] {
        let r = fetch(&mut bob, url).await;
        assert!(r.contains("Hello body 1"), "{url}: {r}");
    }
    for url in [&only_alice, &submit, &expired] {
        let r = fetch(&mut bob, url).await;
        assert_eq!(first(&r), format!("* URLFETCH {url} NIL"), "{url}");
    }
    // Any change to what was signed, or to the token, and it fetches nothing.
    let (rump, token) = authuser.rsplit_once(":internal:").unwrap();
    let mut flipped = token.to_string().into_bytes();
    flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
    let tampered = [
        format!("{rump}:internal:{}", String::from_utf8(flipped).unwrap()),
        format!("{}:internal:{token}", rump.replace(";uid=1", ";uid=2")),
        format!("{}:internal:{token}", rump.replace("authuser", "anonymous")),
        format!("{rump}:other:{token}"),
        rump.to_string(),
        format!("{rump}:internal:nothex"),
        "imap://alice@example.test/Nothing/;uid=1;urlauth=authuser:internal:00".to_string(),
        "not a url".to_string(),
    ];
    for url in &tampered {
        let r = fetch(&mut bob, url).await;
        assert!(r.contains(" NIL\r\n"), "{url}: {r}");
    }
    // A message expunged since: NIL.
    alice.cmd("s SELECT INBOX").await;
    alice.cmd("s1 STORE 1 +FLAGS (\\Deleted)").await;
    alice.cmd("s2 EXPUNGE").await;
    let r = fetch(&mut bob, &authuser).await;
    assert!(r.contains(" NIL\r\n"), "{r}");
}

async fn only_the_owner_signs_and_resets(env: &impl HasBackend) {
    let mut alice = T::login(env).await;
    let mut bob = T::login_as(env, USER2, ImapConfig::default()).await;
    bob.append("INBOX", "", &message(1)).await;
    // Alice cannot sign bob's URL, even with rights on the mailbox.
    bob.cmd(&format!("a SETACL INBOX {USER} lrswipkxtea")).await;
    let r = alice
        .cmd("g GENURLAUTH \"imap://bob@example.test/INBOX/;uid=1;urlauth=authuser\" INTERNAL")
        .await;
    assert!(r.starts_with("g NO [BADURL"), "{r}");
    let r = alice
        .cmd("k RESETKEY \"Other Users/bob@example.test/INBOX\"")
        .await;
    assert!(r.starts_with("k NO [NOPERM]"), "{r}");
    // Refusals.
    let url = format!("{A}/;uid=1;urlauth=authuser");
    let r = alice.cmd(&format!("g1 GENURLAUTH \"{url}\" XYZ")).await;
    assert!(r.starts_with("g1 NO"), "{r}");
    let r = alice
        .cmd(&format!("g2 GENURLAUTH \"{url}:internal:00\" INTERNAL"))
        .await;
    assert!(r.starts_with("g2 BAD"), "{r}");
    let r = alice
        .cmd("g3 GENURLAUTH \"imap://alice@example.test/Nothing/;uid=1;urlauth=authuser\" INTERNAL")
        .await;
    assert!(r.starts_with("g3 NO [BADURL"), "{r}");
    let r = alice.cmd("g4 GENURLAUTH \"/INBOX/;uid=1\" INTERNAL").await;
    assert!(r.starts_with("g4 NO [BADURL"), "{r}");
    let r = alice.cmd("g5 GENURLAUTH").await;
    assert!(r.starts_with("g5 BAD"), "{r}");
    let r = alice.cmd("k1 RESETKEY INBOX XYZ").await;
    assert!(r.starts_with("k1 NO"), "{r}");
    let r = alice.cmd("k2 RESETKEY Nothing").await;
    assert!(r.starts_with("k2 NO [NONEXISTENT]"), "{r}");
    let r = alice.cmd("u URLFETCH").await;
    assert!(r.starts_with("u BAD"), "{r}");
}

#[test]
fn auth_urls_parse_into_their_parts() {
    let u = parse_auth_url(
        "IMAP://joe;AUTH=*@example.com:143/INBOX;UIDVALIDITY=7/;UID=20/;SECTION=1.2;EXPIRE=2030-01-02T03:04:05Z;URLAUTH=submit+fred:internal:91354a47",
    )
    .unwrap();
    assert_eq!(u.user, "joe");
    assert_eq!(u.host, "example.com");
    assert_eq!(u.target.mailbox, "INBOX");
    assert_eq!(u.target.uid_validity, Some(7));
    assert_eq!(u.target.uid, 20);
    assert!(u.target.section.is_some());
    assert_eq!(u.expire, Some(1_893_553_445));
    assert_eq!(u.access, UrlAccess::Submit("fred".into()));
    assert_eq!(
        u.verifier,
        Some(("internal".to_string(), "91354a47".to_string()))
    );
    assert_eq!(
        u.rump,
        "IMAP://joe;AUTH=*@example.com:143/INBOX;UIDVALIDITY=7/;UID=20/;SECTION=1.2;EXPIRE=2030-01-02T03:04:05Z;URLAUTH=submit+fred"
    );
    let u = parse_auth_url("imap://a%40b.test@host/Sent%20Items/;uid=1;urlauth=user+a%40b.test")
        .unwrap();
    assert_eq!(u.user, "a@b.test");
    assert_eq!(u.target.mailbox, "Sent Items");
    assert_eq!(u.access, UrlAccess::User("a@b.test".into()));
    assert_eq!(u.verifier, None);
    for bad in [
        "/INBOX/;uid=1;urlauth=authuser",
        "imap://host/INBOX/;uid=1;urlauth=authuser",
        "imap://a@host/INBOX/;uid=1",
        "imap://a@host/INBOX/;uid=1;urlauth=someone",
        "imap://a@host/INBOX/;uid=1;urlauth=authuser:internal",
        "imap://a@host/INBOX/;uid=1;urlauth=authuser::00",
        "imap://a@host/INBOX/;uid=1;expire=tomorrow;urlauth=authuser",
        "imap://a@host/INBOX;urlauth=authuser",
        "imap://a@/INBOX/;uid=1;urlauth=authuser",
    ] {
        assert!(parse_auth_url(bad).is_err(), "{bad}");
    }
}

/// What URLFETCH gathers is held under the literal budget all sessions share: past it, `NO
/// [LIMIT]` instead of memory without a global bound.
async fn fetched_octets_count_against_the_shared_budget(env: &impl HasBackend) {
    let cfg = ImapConfig {
        literal_memory_budget: 100,
        ..ImapConfig::default()
    };
    let mut alice = T::login_as(env, USER, cfg).await;
    alice.append("INBOX", "", &message(1)).await;
    let url = genurlauth(&mut alice, &format!("{A}/;uid=1;urlauth=authuser")).await;
    let r = alice.cmd(&format!("f URLFETCH \"{url}\"")).await;
    assert!(r.starts_with("f NO [LIMIT]"), "{r}");
    // A part that fits is fetched.
    let part = genurlauth(
        &mut alice,
        &format!("{A}/;uid=1/;section=TEXT;urlauth=authuser"),
    )
    .await;
    let r = fetch(&mut alice, &part).await;
    assert!(r.contains("Hello body 1"), "{r}");
}
