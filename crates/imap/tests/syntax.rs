//! The parser: examples of what RFC 9051 allows and forbids, property tests (never panics,
//! round trips), literal announcements.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use wharf_imap::syntax::{CommandKind, SearchKey, SeqNum, SeqSet, parse_command};

/// RFC 7162's modifiers and search key, as its examples write them.
#[test]
fn condstore_syntax() {
    let c = parse_command(b"s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)\r\n").unwrap();
    assert!(matches!(
        c.kind,
        CommandKind::Fetch {
            changed_since: Some(12345),
            ..
        }
    ));
    let c =
        parse_command(b"d105 STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)\r\n")
            .unwrap();
    assert!(matches!(
        c.kind,
        CommandKind::Store {
            unchanged_since: Some(320162338),
            silent: true,
            ..
        }
    ));
    // 0 is a valid UNCHANGEDSINCE (it fails for every message), not a valid CHANGEDSINCE.
    assert!(parse_command(b"a STORE 1 (UNCHANGEDSINCE 0) FLAGS ()\r\n").is_ok());
    assert!(parse_command(b"a FETCH 1 FLAGS (CHANGEDSINCE 0)\r\n").is_err());
    assert!(parse_command(b"a FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)\r\n").is_err());
    assert!(parse_command(b"a FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)\r\n").is_err());
    assert!(parse_command(b"a FETCH 1 FLAGS (BOGUS 1)\r\n").is_err());
    let c = parse_command(b"a SELECT INBOX (CONDSTORE)\r\n").unwrap();
    assert!(matches!(
        c.kind,
        CommandKind::Select {
            condstore: true,
            ..
        }
    ));
    assert!(parse_command(b"a SELECT INBOX (BOGUS)\r\n").is_err());
    let c = parse_command(b"a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338\r\n").unwrap();
    assert!(matches!(
        c.kind,
        CommandKind::Search {
            key: SearchKey::ModSeq(620162338),
            ..
        }
    ));
    let c = parse_command(b"a SEARCH OR NOT MODSEQ 720162338 LARGER 50000\r\n").unwrap();
    assert!(matches!(c.kind, CommandKind::Search { .. }));
    assert!(parse_command(b"a SEARCH MODSEQ \"/flags/x\" bogus 1\r\n").is_err());
    // QRESYNC (RFC 7162 §3.2.5 and §3.2.6 examples).
    let c = parse_command(
        b"A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n",
    )
    .unwrap();
    match c.kind {
        CommandKind::Select {
            qresync: Some(q), ..
        } => {
            assert_eq!((q.uid_validity, q.modseq), (67890007, 20050715194045000));
            assert!(q.known_uids.is_some());
        }
        other => panic!("{other:?}"),
    }
    assert!(
        parse_command(
            b"B02 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))\r\n"
        )
        .is_ok()
    );
    assert!(parse_command(b"a SELECT INBOX (QRESYNC (1 2))\r\n").is_ok());
    assert!(parse_command(b"a SELECT INBOX (QRESYNC (1 2 (1:3 4:6)))\r\n").is_ok());
    assert!(parse_command(b"a SELECT INBOX (QRESYNC (0 2))\r\n").is_err());
    assert!(parse_command(b"a SELECT INBOX (QRESYNC (1))\r\n").is_err());
    let c =
        parse_command(b"A93 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n").unwrap();
    assert!(matches!(
        c.kind,
        CommandKind::Fetch {
            vanished: true,
            changed_since: Some(12345),
            ..
        }
    ));
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
        CommandKind::Fetch {
            uid,
            set,
            items,
            changed_since,
            vanished,
        } => {
            assert!(!vanished);
            assert!(uid);
            assert_eq!(changed_since, None);
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
