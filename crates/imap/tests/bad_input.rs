//! Bad input: BAD with the tag (or `*`), the session continues, too many BADs close with BYE;
//! the parser never panics (property tests) and rejects what RFC 9051 forbids.

mod common;
use common::*;
use proptest::prelude::*;
use wharf_imap::syntax::{CommandKind, SearchKey, SeqNum, SeqSet, parse_command};
use wharf_imap::{ImapConfig, Next};

#[tokio::test]
async fn bad_commands_keep_the_session_then_bye() {
    let env = env().await;
    let cfg = ImapConfig {
        max_bad_commands: 3,
        ..ImapConfig::default()
    };
    let mut t = T::new(&env, true, cfg);
    assert_eq!(
        t.cmd("a FROBNICATE").await,
        "a BAD unknown command FROBNICATE\r\n"
    );
    assert_eq!(t.cmd("b NOOP").await, "b OK NOOP completed\r\n");
    assert!(t.cmd("+++").await.starts_with("* BAD"));
    assert!(t.cmd("c LOGIN").await.starts_with("c BAD"));
    let (r, next) = t.next(b"d SELECT\r\n").await;
    assert!(
        r.starts_with("d BAD") && r.ends_with("* BYE Too many invalid commands\r\n"),
        "{r}"
    );
    assert_eq!(next, Next::Close);
}

#[tokio::test]
async fn too_long_and_too_big() {
    let env = env().await;
    let mut t = T::new(&env, true, ImapConfig::default());
    let r = t.s.line_too_long();
    assert_eq!(
        String::from_utf8(r.out).unwrap(),
        "* BAD [TOOBIG] Command line too long\r\n"
    );
    let r = t.s.literal_too_big(Some("a"), true);
    assert_eq!(
        String::from_utf8(r.out).unwrap(),
        "a BAD [TOOBIG] Literal too large\r\n"
    );
    let r = t.s.literal_too_big(Some("b"), false);
    assert_eq!(
        String::from_utf8(r.out).unwrap(),
        "b NO [TOOBIG] Literal too large\r\n"
    );
}

#[test]
fn parser_examples() {
    let c = parse_command(
        b"a1 UID FETCH 1:*,$ (BODY.PEEK[1.2.HEADER.FIELDS (From To)]<0.100> FLAGS)\r\n",
    );
    assert!(c.is_err(), "$ must stand alone");
    let c = parse_command(
        b"a1 UID FETCH 1:* (BODY.PEEK[1.2.HEADER.FIELDS (From To)]<0.100> FLAGS)\r\n",
    )
    .unwrap();
    assert_eq!(c.tag, "a1");
    match c.kind {
        CommandKind::Fetch { uid, set, items } => {
            assert!(uid);
            assert_eq!(set, SeqSet::Ranges(vec![(SeqNum::Num(1), SeqNum::Star)]));
            assert_eq!(items.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    let c =
        parse_command(b"t SEARCH OR (FROM a TO b) NOT HEADER X-Y {3}\r\nz\"z UNSEEN\r\n").unwrap();
    match c.kind {
        CommandKind::Search {
            key: SearchKey::And(v),
            ..
        } => assert_eq!(v.len(), 2),
        other => panic!("{other:?}"),
    }
    assert!(
        parse_command(b"t LOGIN \"us\\er\" {3+}\r\np\xc3\xa9\r\n").is_err(),
        "bad escape"
    );
    let c = parse_command(b"t LOGIN \"us\\\\er\" {3+}\r\np\xc3\xa9\r\n").unwrap();
    assert_eq!(
        c.kind,
        CommandKind::Login {
            user: "us\\er".into(),
            pass: "pé".into()
        }
    );
    assert!(
        parse_command(
            b"t LIST (SUBSCRIBED) \"\" (INBOX \"A*\") RETURN (CHILDREN STATUS (MESSAGES SIZE))\r\n"
        )
        .is_ok()
    );
    assert!(parse_command(b"t CREATE x (USE (\\Junk))\r\n").is_ok());
    let c = parse_command(b"t APPEND INBOX (\\Seen) UTF8 (~{3+}\r\nabc)\r\n").unwrap();
    assert!(matches!(c.kind, CommandKind::Append { ref message, .. } if message == b"abc"));
    assert!(parse_command(b"t FETCH 0 FLAGS\r\n").is_err());
    assert!(parse_command(b"t APPEND INBOX {10}\r\nshort\r\n").is_err());
    assert!(parse_command(b"t STORE 1 +FLAGS.SILENT \\Seen $Junk\r\n").is_ok());
    let deep = format!("t SEARCH {}ALL{}\r\n", "(".repeat(100), ")".repeat(100));
    assert!(parse_command(deep.as_bytes()).is_err());
    let e = parse_command(b"tag FETCH\r\n").unwrap_err();
    assert_eq!(e.tag.as_deref(), Some("tag"));
}

proptest! {
    #[test]
    fn parser_never_panics(input in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_command(&input);
    }

    #[test]
    fn parser_never_panics_on_commandish_input(
        tag in "[a-z0-9]{1,4}",
        cmd in prop::sample::select(vec!["FETCH", "UID FETCH", "SEARCH", "STORE", "LIST", "APPEND", "STATUS", "SELECT", "LOGIN", "ID", "ENABLE", "CREATE", "COPY"]),
        rest in "[ -~]{0,80}",
    ) {
        let _ = parse_command(format!("{tag} {cmd} {rest}\r\n").as_bytes());
    }

    #[test]
    fn sequence_sets_round_trip(nums in proptest::collection::btree_set(1u32..10_000, 1..50)) {
        let v: Vec<u32> = nums.into_iter().collect();
        let text = wharf_imap::syntax::response::sequence_set(&v);
        let c = parse_command(format!("t UID FETCH {text} UID\r\n").as_bytes()).unwrap();
        let CommandKind::Fetch { set: SeqSet::Ranges(r), .. } = c.kind else { panic!() };
        let mut back = Vec::new();
        for (a, b) in r {
            let (SeqNum::Num(a), SeqNum::Num(b)) = (a, b) else { panic!() };
            back.extend(a..=b);
        }
        prop_assert_eq!(back, v);
    }

    #[test]
    fn quoted_strings_round_trip(s in "\\PC{0,40}") {
        let mut out = b"t LOGIN ".to_vec();
        wharf_imap::syntax::response::string(&mut out, s.as_bytes());
        out.extend_from_slice(b" x\r\n");
        let c = parse_command(&out).unwrap();
        prop_assert_eq!(c.kind, CommandKind::Login { user: s, pass: "x".into() });
    }

    #[test]
    fn utf7_round_trips(s in "\\PC{0,20}") {
        let e = wharf_imap::syntax::utf7::encode(&s);
        prop_assert!(e.is_ascii());
        prop_assert_eq!(wharf_imap::syntax::utf7::decode(&e), Some(s));
    }
}

#[tokio::test]
async fn huge_sequence_sets_cost_little() {
    let env = env().await;
    let mut t = T::login(&env).await;
    t.append("INBOX", "", &message(1)).await;
    t.cmd("s SELECT INBOX").await;
    let set = vec!["1:*"; 20_000].join(",");
    let started = std::time::Instant::now();
    let r = t.cmd(&format!("a FETCH {set} UID")).await;
    assert_eq!(r, "* 1 FETCH (UID 1)\r\na OK FETCH completed\r\n");
    let r = t
        .cmd(&format!("b UID SEARCH UID {set} NOT UID {set}"))
        .await;
    assert!(r.starts_with("* SEARCH\r\n"), "{r}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn literal_announcements() {
    use wharf_imap::syntax::literal_at_end;
    let l = literal_at_end(b"a LOGIN {5}\r\n").unwrap();
    assert_eq!((l.len, l.non_sync), (5, false));
    let l = literal_at_end(b"a LOGIN {5+}\n").unwrap();
    assert_eq!((l.len, l.non_sync), (5, true));
    assert!(literal_at_end(b"a LOGIN \"{5}\"\r\n").is_none());
    assert!(literal_at_end(b"a LOGIN {}\r\n").is_none());
    assert!(literal_at_end(b"a LOGIN {99999999999999999999}\r\n").is_none());
    assert!(literal_at_end(b"a LOGIN {5a}\r\n").is_none());
}
