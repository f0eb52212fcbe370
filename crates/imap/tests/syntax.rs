//! The parser: examples of what RFC 9051 allows and forbids, property tests (never panics,
//! round trips), literal announcements.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use wharf_imap::syntax::{
    AppendData, AppendLiteral, AppendMessage, CatPart, CommandKind, SearchKey, SearchReturn,
    Section, SectionSpec, SeqNum, SeqSet, SourceFilter, parse_command,
};

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
    let CommandKind::Append { messages, .. } = c.kind else {
        panic!("{:?}", c.kind)
    };
    assert!(
        matches!(&messages[..], [AppendMessage { data: AppendData::Literal(l), .. }] if l.data == b"abc")
    );
    assert!(parse_command(b"t FETCH 0 FLAGS\r\n").is_err());
    assert!(parse_command(b"t APPEND INBOX {10}\r\nshort\r\n").is_err());
    assert!(parse_command(b"t STORE 1 +FLAGS.SILENT \\Seen $Junk\r\n").is_ok());
    let deep = format!("t SEARCH {}ALL{}\r\n", "(".repeat(100), ")".repeat(100));
    assert!(parse_command(deep.as_bytes()).is_err());
    let e = parse_command(b"tag FETCH\r\n").unwrap_err();
    assert_eq!(e.tag.as_deref(), Some("tag"));
}

/// What an APPEND message looks like on the wire, and what the parser must read back.
#[derive(Debug, Clone)]
struct WireMessage {
    flags: Vec<String>,
    date: Option<(u32, &'static str, u32, i32)>,
    /// 0: `{n}`, 1: `{n+}`, 2: `~{n}`, 3: `UTF8 (~{n+})`, 4: CATENATE.
    form: u8,
    body: Vec<u8>,
    urls: Vec<String>,
}

fn wire_message() -> impl Strategy<Value = WireMessage> {
    (
        proptest::collection::vec(
            prop::sample::select(vec!["\\Seen", "\\Flagged", "$Work", "Junk", "\\Draft"]),
            0..4,
        ),
        proptest::option::of((
            1u32..29,
            prop::sample::select(vec!["Jan", "Feb", "Mar", "Dec"]),
            1990u32..2030,
            -1200i32..1400,
        )),
        0u8..5,
        proptest::collection::vec(any::<u8>(), 0..60),
        proptest::collection::vec(
            "/[A-Za-z]{1,8};UIDVALIDITY=[1-9][0-9]{0,5}/;UID=[1-9][0-9]{0,4}",
            0..3,
        ),
    )
        .prop_map(|(flags, date, form, body, urls)| WireMessage {
            flags: flags.into_iter().map(str::to_string).collect(),
            date,
            form,
            body,
            urls,
        })
}

fn literal(out: &mut Vec<u8>, form: &str, body: &[u8]) -> usize {
    let at = out.len() + usize::from(form.starts_with('~'));
    let plus = if form.ends_with('+') { "+" } else { "" };
    let tilde = if form.starts_with('~') { "~" } else { "" };
    out.extend_from_slice(format!("{tilde}{{{}{plus}}}\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    at
}

proptest! {
    #[test]
    fn multiappend_round_trips(msgs in proptest::collection::vec(wire_message(), 1..6)) {
        let mut out = b"t APPEND \"Sent Items\"".to_vec();
        let mut expected = Vec::new();
        for m in &msgs {
            out.push(b' ');
            if !m.flags.is_empty() {
                out.extend_from_slice(format!("({}) ", m.flags.join(" ")).as_bytes());
            }
            if let Some((d, mon, y, z)) = m.date {
                let sign = if z < 0 { '-' } else { '+' };
                out.extend_from_slice(format!("\"{d:02}-{mon}-{y} 10:11:12 {sign}{:04}\" ", z.abs()).as_bytes());
            }
            let data = match m.form {
                0..=2 => {
                    let form = ["{}", "{+}", "~{}"][m.form as usize];
                    let at = literal(&mut out, form, &m.body);
                    AppendData::Literal(AppendLiteral { at, data: m.body.clone() })
                }
                3 => {
                    out.extend_from_slice(b"UTF8 (");
                    let at = literal(&mut out, "~{+}", &m.body);
                    out.push(b')');
                    AppendData::Literal(AppendLiteral { at, data: m.body.clone() })
                }
                _ => {
                    out.extend_from_slice(b"CATENATE (");
                    out.extend_from_slice(b"TEXT ");
                    let at = literal(&mut out, "{+}", &m.body);
                    let mut parts = vec![CatPart::Text(AppendLiteral { at, data: m.body.clone() })];
                    for u in &m.urls {
                        out.extend_from_slice(format!(" URL \"{u}\"").as_bytes());
                        parts.push(CatPart::Url(u.clone()));
                    }
                    out.push(b')');
                    AppendData::Catenate(parts)
                }
            };
            expected.push((m.flags.clone(), m.date.is_some(), data));
        }
        out.extend_from_slice(b"\r\n");
        let c = parse_command(&out).unwrap();
        let CommandKind::Append { mailbox, messages } = c.kind else { panic!() };
        prop_assert_eq!(mailbox, "Sent Items");
        prop_assert_eq!(messages.len(), expected.len());
        for (got, (flags, dated, data)) in messages.iter().zip(expected) {
            let f: Vec<String> = got.flags.iter().map(|f| f.0.clone()).collect();
            prop_assert_eq!(f, flags);
            prop_assert_eq!(got.date.is_some(), dated);
            prop_assert_eq!(&got.data, &data);
        }
    }

    #[test]
    fn append_parser_never_panics(
        parts in proptest::collection::vec(
            prop::sample::select(vec![" {3}\r\nabc", " {0+}\r\n", " ~{2}\r\nab", " CATENATE (", "TEXT", " URL ", "\"/INBOX/;UID=1\"", ")", " (\\Seen)", " UTF8 (", " \"01-Jan-2020 00:00:00 +0000\"", " ", "{5}\r\nab"]),
            0..12,
        ),
    ) {
        let cmd = format!("t APPEND INBOX{}\r\n", parts.concat());
        let _ = parse_command(cmd.as_bytes());
    }

    #[test]
    fn imap_urls_round_trip(
        mailbox in "[A-Za-z0-9 /äöü%;]{1,12}",
        validity in proptest::option::of(1u32..u32::MAX),
        uid in 1u32..u32::MAX,
        part in proptest::collection::vec(1u32..20, 0..3),
        partial in proptest::option::of((0u32..10_000, proptest::option::of(1u32..10_000))),
    ) {
        prop_assume!(!mailbox.starts_with('/') && !mailbox.ends_with('/') && !mailbox.contains("//"));
        let mut enc = String::new();
        for b in mailbox.bytes() {
            if b.is_ascii_alphanumeric() || b == b'/' {
                enc.push(b as char);
            } else {
                enc.push_str(&format!("%{b:02X}"));
            }
        }
        let mut url = format!("/{enc}");
        if let Some(v) = validity {
            url.push_str(&format!(";UIDVALIDITY={v}"));
        }
        url.push_str(&format!("/;UID={uid}"));
        if !part.is_empty() {
            let p: Vec<String> = part.iter().map(u32::to_string).collect();
            url.push_str(&format!("/;SECTION={}.MIME", p.join(".")));
        }
        if let Some((o, l)) = partial {
            url.push_str(&format!("/;PARTIAL={o}"));
            if let Some(l) = l {
                url.push_str(&format!(".{l}"));
            }
        }
        let u = wharf_imap::syntax::parse_imap_url(&url).unwrap();
        prop_assert_eq!(u.mailbox, mailbox);
        prop_assert_eq!(u.uid_validity, validity);
        prop_assert_eq!(u.uid, uid);
        prop_assert_eq!(u.section.map(|s| s.part), (!part.is_empty()).then_some(part));
        prop_assert_eq!(u.partial, partial);
    }

    #[test]
    fn imap_url_parser_never_panics(s in "[/;=A-Za-z0-9%.() ]{0,60}") {
        let _ = wharf_imap::syntax::parse_imap_url(&s);
    }

    /// URLAUTH URLs: no panic on any input, and the rump a verifier signs is always a prefix
    /// of the URL, ending with the access identifier.
    #[test]
    fn auth_url_parser_never_panics(
        s in "(imap://|IMAP://)?[a-z@;:/=+%.*0-9A-Z-]{0,80}",
        access in "(anonymous|authuser|user\\+[a-z]{1,5}|submit\\+x|[a-z]{0,5})",
        verifier in "(:internal:[0-9a-f]{0,8}|:[a-z]{0,3}|)",
    ) {
        let url = format!("{s};urlauth={access}{verifier}");
        if let Ok(u) = wharf_imap::syntax::parse_auth_url(&s) {
            prop_assert!(s.starts_with(&u.rump));
        }
        if let Ok(u) = wharf_imap::syntax::parse_auth_url(&url) {
            prop_assert!(url.starts_with(&u.rump));
            prop_assert!(u.rump.to_ascii_lowercase().ends_with(&access.to_ascii_lowercase()));
        }
    }

    #[test]
    fn parser_never_panics(input in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_command(&input);
    }

    #[test]
    fn parser_never_panics_on_commandish_input(
        tag in "[a-z0-9]{1,4}",
        cmd in prop::sample::select(vec!["FETCH", "UID FETCH", "SEARCH", "ESEARCH", "ESEARCH IN (", "STORE", "LIST", "APPEND", "STATUS", "SELECT", "LOGIN", "ID", "ENABLE", "CREATE", "COPY"]),
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

#[test]
fn setquota_and_url_examples() {
    let c = parse_command(b"t SETQUOTA \"\" (storage 512)\r\n").unwrap();
    assert_eq!(
        c.kind,
        CommandKind::SetQuota {
            root: String::new(),
            limits: vec![("STORAGE".into(), 512)]
        }
    );
    let c = parse_command(b"t SETQUOTA bob@example.test ()\r\n").unwrap();
    assert_eq!(
        c.kind,
        CommandKind::SetQuota {
            root: "bob@example.test".into(),
            limits: vec![]
        }
    );
    assert!(parse_command(b"t SETQUOTA \"\" (STORAGE)\r\n").is_err());
    use wharf_imap::syntax::parse_imap_url;
    let u = parse_imap_url(
        "/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER.FIELDS%20(SUBJECT%20TO)",
    )
    .unwrap();
    assert_eq!(u.mailbox, "Drafts");
    assert_eq!((u.uid_validity, u.uid), (Some(385759045), 20));
    assert!(matches!(
        u.section,
        Some(Section { ref part, spec: SectionSpec::HeaderFields { ref names, not: false } })
            if part.is_empty() && names == &["SUBJECT", "TO"]
    ));
    let u = parse_imap_url("/INBOX/Sub%20box/;UID=7/;PARTIAL=10.20").unwrap();
    assert_eq!(
        (u.mailbox.as_str(), u.uid, u.partial),
        ("INBOX/Sub box", 7, Some((10, Some(20))))
    );
    for bad in [
        "imap://alice@example.test/INBOX/;UID=1",
        "//example.test/INBOX/;UID=1",
        "/INBOX",
        "/INBOX/;UID=0",
        "/INBOX;UIDVALIDITY=x/;UID=1",
        "/INBOX/;UID=1/;URLAUTH=anonymous:internal:abc",
        "/INBOX/;UID=1/;SECTION=1]",
        "/INBOX/;UID=1/;SECTION=BOGUS",
        "/%ZZ/;UID=1",
        "/%FF/;UID=1",
        "/;UID=1",
        // Two hex digits after %, no sign (u8::from_str_radix would take `+4`).
        "/A%+4/;UID=1",
        "/A%-4/;UID=1",
        "/INBOX/;UID=1/;SECTION=%+31",
        "/A%4/;UID=1",
    ] {
        assert!(parse_imap_url(bad).is_err(), "{bad}");
    }
    assert_eq!(parse_imap_url("/A%4a%4B/;UID=1").unwrap().mailbox, "AJK");
}

/// At most 100 CATENATE URLs in one APPEND, counted across its messages.
#[test]
fn catenate_urls_are_capped_per_command() {
    let urls = |n: usize| " URL \"/INBOX/;UID=1\"".repeat(n);
    let cmd = format!(
        "a APPEND INBOX CATENATE ({}) CATENATE ({})\r\n",
        &urls(60)[1..],
        &urls(40)[1..]
    );
    assert!(parse_command(cmd.as_bytes()).is_ok());
    let cmd = format!(
        "a APPEND INBOX CATENATE ({}) CATENATE ({})\r\n",
        &urls(60)[1..],
        &urls(41)[1..]
    );
    let e = parse_command(cmd.as_bytes()).unwrap_err();
    assert!(format!("{e:?}").contains("too many CATENATE URLs"), "{e:?}");
}

/// One RETURN option as written, and what it parses to.
fn return_option() -> impl Strategy<Value = (String, SearchReturn)> {
    prop_oneof![
        Just(("MIN".to_string(), SearchReturn::Min)),
        Just(("max".to_string(), SearchReturn::Max)),
        Just(("COUNT".to_string(), SearchReturn::Count)),
        Just(("Save".to_string(), SearchReturn::Save)),
        Just(("ALL".to_string(), SearchReturn::All)),
        (1u32.., 1u32.., any::<bool>(), any::<bool>()).prop_map(|(a, b, neg, lower)| {
            let kw = if lower { "partial" } else { "PARTIAL" };
            if neg {
                (
                    format!("{kw} -{a}:-{b}"),
                    SearchReturn::Partial(-i64::from(a), -i64::from(b)),
                )
            } else {
                (
                    format!("{kw} {a}:{b}"),
                    SearchReturn::Partial(i64::from(a), i64::from(b)),
                )
            }
        }),
    ]
}

proptest! {
    /// RETURN options parse back to what was written, on SEARCH and SORT alike; more than one
    /// of PARTIAL/ALL is refused (RFC 9394 §3.1).
    #[test]
    fn search_return_round_trips(
        opts in proptest::collection::vec(return_option(), 0..5),
        uid in any::<bool>(),
        sort in any::<bool>(),
    ) {
        let text: Vec<&str> = opts.iter().map(|(s, _)| s.as_str()).collect();
        let want: Vec<SearchReturn> = opts.iter().map(|(_, o)| *o).collect();
        let u = if uid { "UID " } else { "" };
        let line = if sort {
            format!("t {u}SORT RETURN ({}) (DATE) UTF-8 ALL\r\n", text.join(" "))
        } else {
            format!("t {u}SEARCH RETURN ({}) ALL\r\n", text.join(" "))
        };
        let ranged = want
            .iter()
            .filter(|o| matches!(o, SearchReturn::All | SearchReturn::Partial(..)))
            .count();
        let got = parse_command(line.as_bytes());
        if ranged > 1 {
            prop_assert!(got.is_err(), "{line}");
        } else {
            let ret = match got.map(|c| c.kind) {
                Ok(CommandKind::Search { ret, .. }) | Ok(CommandKind::Sort { ret, .. }) => ret,
                other => return Err(TestCaseError::fail(format!("{line}: {other:?}"))),
            };
            prop_assert_eq!(ret, Some(want));
        }
    }

    /// Any PARTIAL range text: parsed only when it is RFC 9394's `partial-range`, never a panic.
    #[test]
    fn partial_range_never_panics(range in "-?[0-9*]{0,11}:?-?[0-9*]{0,11}") {
        let line = format!("t UID SEARCH RETURN (PARTIAL {range}) ALL\r\n");
        if let Ok(c) = parse_command(line.as_bytes()) {
            let CommandKind::Search { ret: Some(ret), .. } = c.kind else {
                return Err(TestCaseError::fail(line.clone()));
            };
            let Some(SearchReturn::Partial(a, b)) = ret.first().copied() else {
                return Err(TestCaseError::fail(line.clone()));
            };
            prop_assert!(a != 0 && b != 0 && (a > 0) == (b > 0));
            let mut ends = range.split(':').map(|n| n.parse::<i64>().ok());
            prop_assert_eq!((ends.next().flatten(), ends.next().flatten()), (Some(a), Some(b)));
        }
    }

    /// The positions a PARTIAL range selects always lie within the result.
    #[test]
    fn partial_window_in_bounds(a in 1i64..=u32::MAX as i64, b in 1i64..=u32::MAX as i64, neg in any::<bool>(), len in 0usize..50) {
        let (a, b) = if neg { (-a, -b) } else { (a, b) };
        let w = SearchReturn::partial_window(a, b, len);
        prop_assert!(w.start <= w.end && w.end <= len);
        let (lo, hi) = (a.abs().min(b.abs()) as usize, a.abs().max(b.abs()) as usize);
        let want: Vec<usize> = (0..len)
            .filter(|&i| {
                let pos = if neg { len - i } else { i + 1 };
                pos >= lo && pos <= hi
            })
            .collect();
        prop_assert_eq!(w.collect::<Vec<_>>(), want);
    }
}

/// GETMETADATA and SETMETADATA (RFC 5464 §4, §5) as its examples write them, and what it
/// forbids.
#[test]
fn metadata_examples() {
    use wharf_imap::syntax::MetadataDepth;
    let get = |s: &str| parse_command(format!("{s}\r\n").as_bytes()).map(|c| c.kind);
    assert_eq!(
        get("a GETMETADATA \"\" /shared/comment").unwrap(),
        CommandKind::GetMetadata {
            mailbox: String::new(),
            max_size: None,
            depth: MetadataDepth::Zero,
            entries: vec!["/shared/comment".into()],
        }
    );
    assert_eq!(
        get("a GETMETADATA INBOX (MAXSIZE 1024 DEPTH infinity) (/shared/comment /private/comment)")
            .unwrap(),
        CommandKind::GetMetadata {
            mailbox: "INBOX".into(),
            max_size: Some(1024),
            depth: MetadataDepth::Infinity,
            entries: vec!["/shared/comment".into(), "/private/comment".into()],
        }
    );
    assert!(matches!(
        get("a GETMETADATA (DEPTH 1) {5}\r\nINBOX \"/private\"").unwrap(),
        CommandKind::GetMetadata { depth: MetadataDepth::One, ref mailbox, .. } if mailbox == "INBOX"
    ));
    assert_eq!(
        get("a SETMETADATA INBOX (/private/comment NIL /shared/x ~{2}\r\n\0\r /shared/y {1}\r\n\" /private/z \"q\")")
            .unwrap(),
        CommandKind::SetMetadata {
            mailbox: "INBOX".into(),
            entries: vec![
                ("/private/comment".into(), None),
                ("/shared/x".into(), Some(b"\0\r".to_vec())),
                ("/shared/y".into(), Some(b"\"".to_vec())),
                ("/private/z".into(), Some(b"q".to_vec())),
            ],
        }
    );
    for bad in [
        "a GETMETADATA INBOX",
        "a GETMETADATA INBOX /private/a/",
        "a GETMETADATA INBOX /private//a",
        "a GETMETADATA INBOX /private/*",
        "a GETMETADATA INBOX /public/a",
        "a GETMETADATA (DEPTH 3) INBOX /private/a",
        "a GETMETADATA (MAXSIZE) INBOX /private/a",
        "a GETMETADATA (MAXSIZE 1 MAXSIZE 2) INBOX /private/a",
        "a GETMETADATA (DEPTH 1) INBOX (DEPTH 1) /private/a",
        "a SETMETADATA INBOX /private/a \"v\"",
        "a SETMETADATA INBOX ()",
        "a SETMETADATA INBOX (/private/a)",
        "a SETMETADATA INBOX (/private \"v\")",
        "a SETMETADATA INBOX (/private/a% \"v\")",
        "a SETMETADATA INBOX (/private/a \"v\") extra",
        "a SETMETADATA INBOX (/private/a {2}\r\n\0x)",
    ] {
        assert!(get(bad).is_err(), "{bad}");
    }
    let many: String = (0..=wharf_imap::syntax::parser::MAX_METADATA_ENTRIES)
        .map(|i| format!(" /private/e{i} NIL"))
        .collect();
    assert!(get(&format!("a SETMETADATA INBOX ({})", &many[1..])).is_err());
}

fn entry_name() -> impl Strategy<Value = String> {
    (
        "(private|shared|PRIVATE|Shared)",
        proptest::collection::vec("[a-zA-Z0-9._-]{1,8}", 0..4),
    )
        .prop_map(|(top, parts)| {
            let mut s = format!("/{top}");
            for p in parts {
                s.push('/');
                s.push_str(&p);
            }
            s
        })
}

proptest! {
    #[test]
    fn setmetadata_round_trips(
        entries in proptest::collection::vec(
            (entry_name(), proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)), 0u8..3),
            1..6,
        ),
    ) {
        let mut wire = b"t SETMETADATA INBOX (".to_vec();
        let mut expect = Vec::new();
        for (i, (name, value, form)) in entries.iter().enumerate() {
            if i > 0 {
                wire.push(b' ');
            }
            // /private or /shared alone holds no value: give it a child.
            let name = if name.matches('/').count() == 1 { format!("{name}/v") } else { name.clone() };
            wire.extend_from_slice(name.as_bytes());
            wire.push(b' ');
            // Only a literal8 may carry NUL.
            let form = if value.as_ref().is_some_and(|v| v.contains(&0)) { &1 } else { form };
            match value {
                None => wire.extend_from_slice(b"NIL"),
                Some(v) => match form {
                    0 => { literal(&mut wire, "{}", v); }
                    1 => { literal(&mut wire, "~{}", v); }
                    _ => { literal(&mut wire, "{}+", v); }
                },
            }
            expect.push((name, value.clone()));
        }
        wire.extend_from_slice(b")\r\n");
        let cmd = parse_command(&wire).unwrap();
        prop_assert_eq!(cmd.kind, CommandKind::SetMetadata { mailbox: "INBOX".into(), entries: expect });
    }

    #[test]
    fn getmetadata_round_trips(
        names in proptest::collection::vec(entry_name(), 1..6),
        max in proptest::option::of(0u64..1_000_000),
        depth in 0u8..3,
        after in any::<bool>(),
    ) {
        use wharf_imap::syntax::MetadataDepth;
        let (d, dname) = match depth {
            0 => (MetadataDepth::Zero, "0"),
            1 => (MetadataDepth::One, "1"),
            _ => (MetadataDepth::Infinity, "infinity"),
        };
        let mut opts = format!("(DEPTH {dname}");
        if let Some(m) = max {
            opts.push_str(&format!(" MAXSIZE {m}"));
        }
        opts.push(')');
        let list = format!("({})", names.join(" "));
        let line = if after {
            format!("t GETMETADATA Work {opts} {list}\r\n")
        } else {
            format!("t GETMETADATA {opts} Work {list}\r\n")
        };
        let cmd = parse_command(line.as_bytes()).unwrap();
        prop_assert_eq!(cmd.kind, CommandKind::GetMetadata {
            mailbox: "Work".into(),
            max_size: max,
            depth: d,
            entries: names,
        });
    }

    #[test]
    fn metadata_parser_never_panics(
        cmd in prop::sample::select(vec!["GETMETADATA", "SETMETADATA"]),
        rest in "[ -~]{0,80}",
        tail in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        use wharf_imap::syntax::parser::valid_entry_name;
        let mut input = format!("t {cmd} {rest}").into_bytes();
        input.extend_from_slice(&tail);
        let _ = parse_command(&input);
        input.extend_from_slice(b"\r\n");
        // What parses names only valid entries, as the fuzz target also checks.
        match parse_command(&input).map(|c| c.kind) {
            Ok(CommandKind::GetMetadata { entries, .. }) => {
                prop_assert!(entries.iter().all(|e| valid_entry_name(e)));
            }
            Ok(CommandKind::SetMetadata { entries, .. }) => {
                prop_assert!(entries.iter().all(|(e, _)| valid_entry_name(e)));
            }
            _ => {}
        }
    }
}

/// A mailbox filter as written and as parsed (RFC 7377 §2.2 with RFC 5465 §6's syntax).
fn source_filter() -> impl Strategy<Value = (String, SourceFilter)> {
    let name = "[A-Za-z][A-Za-z0-9/ ]{0,10}";
    let names = proptest::collection::vec(name, 1..4);
    prop_oneof![
        Just(("selected".to_string(), SourceFilter::Selected)),
        Just(("SELECTED-DELAYED".to_string(), SourceFilter::Selected)),
        Just(("inboxes".to_string(), SourceFilter::Inboxes)),
        Just(("Personal".to_string(), SourceFilter::Personal)),
        Just(("subscribed".to_string(), SourceFilter::Subscribed)),
        (0u8..3, names, any::<bool>()).prop_map(|(kind, names, list)| {
            let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
            let written = if list || names.len() > 1 {
                format!("({})", quoted.join(" "))
            } else {
                quoted[0].clone()
            };
            match kind {
                0 => (format!("subtree {written}"), SourceFilter::Subtree(names)),
                1 => (
                    format!("subtree-one {written}"),
                    SourceFilter::SubtreeOne(names),
                ),
                _ => (
                    format!("mailboxes {written}"),
                    SourceFilter::Mailboxes(names),
                ),
            }
        }),
    ]
}

proptest! {
    /// ESEARCH source options parse back to what was written, with or without RETURN and
    /// CHARSET; without IN the source is left to the session (the selected mailbox).
    #[test]
    fn esearch_sources_round_trip(
        filters in proptest::collection::vec(source_filter(), 0..5),
        ret in any::<bool>(),
        charset in any::<bool>(),
    ) {
        let text: Vec<&str> = filters.iter().map(|(s, _)| s.as_str()).collect();
        let want: Vec<SourceFilter> = filters.iter().map(|(_, f)| f.clone()).collect();
        let mut line = "t ESEARCH ".to_string();
        if !want.is_empty() {
            line.push_str(&format!("IN ({}) ", text.join(" ")));
        }
        if ret {
            line.push_str("RETURN (COUNT) ");
        }
        if charset {
            line.push_str("CHARSET UTF-8 ");
        }
        line.push_str("FROM ann\r\n");
        match parse_command(line.as_bytes()).map(|c| c.kind) {
            Ok(CommandKind::Esearch { sources, ret: r, charset: c, key }) => {
                prop_assert_eq!(sources, (!want.is_empty()).then_some(want));
                prop_assert_eq!(r, ret.then(|| vec![SearchReturn::Count]));
                prop_assert_eq!(c, charset.then(|| "UTF-8".to_string()));
                prop_assert_eq!(key, SearchKey::From("ann".into()));
            }
            other => return Err(TestCaseError::fail(format!("{line}: {other:?}"))),
        }
    }

    /// Anything after `ESEARCH IN (`: parsed or refused, never a panic.
    #[test]
    fn esearch_parser_never_panics(rest in "[ -~]{0,80}") {
        let _ = parse_command(format!("t ESEARCH IN ({rest}\r\n").as_bytes());
    }
}

/// Each FUZZY key scans the text of every message searched: at most 8 in one command, nested
/// in OR and NOT too, for SEARCH as for ESEARCH.
#[test]
fn fuzzy_keys_are_bounded_per_command() {
    let keys = |n: usize| vec!["FUZZY BODY x"; n].join(" ");
    for cmd in ["a SEARCH", "a UID SEARCH", "a ESEARCH IN (personal)"] {
        assert!(parse_command(format!("{cmd} {}\r\n", keys(8)).as_bytes()).is_ok());
        assert!(parse_command(format!("{cmd} {}\r\n", keys(9)).as_bytes()).is_err());
    }
    let nested = format!("a SEARCH OR ({}) NOT FUZZY SUBJECT y\r\n", keys(8));
    assert!(parse_command(nested.as_bytes()).is_err());
}

/// ESEARCH's source syntax (RFC 7377 §4): what it allows and what it refuses.
#[test]
fn esearch_examples() {
    let ok = |l: &str| match parse_command(format!("{l}\r\n").as_bytes()).map(|c| c.kind) {
        Ok(CommandKind::Esearch { sources, .. }) => sources,
        other => panic!("{l}: {other:?}"),
    };
    assert_eq!(ok("a ESEARCH ALL"), None);
    assert_eq!(
        ok("a ESEARCH IN (subtree-one \"\" mailboxes (INBOX Sent)) UID 1:*"),
        Some(vec![
            SourceFilter::SubtreeOne(vec![String::new()]),
            SourceFilter::Mailboxes(vec!["INBOX".into(), "Sent".into()]),
        ])
    );
    for bad in [
        "a ESEARCH IN ALL",
        "a ESEARCH IN () ALL",
        "a ESEARCH IN (personal",
        "a ESEARCH IN (personal (x 1)) ALL",
        "a ESEARCH IN (subtree) ALL",
        "a ESEARCH IN (mailboxes ()) ALL",
        "a ESEARCH IN (nothing) ALL",
        "a ESEARCH IN (personal) ",
        "a ESEARCH",
    ] {
        assert!(
            parse_command(format!("{bad}\r\n").as_bytes()).is_err(),
            "{bad}"
        );
    }
    // At most 1000 mailbox names in all.
    let many: Vec<String> = (0..1001).map(|i| format!("m{i}")).collect();
    let line = format!("a ESEARCH IN (mailboxes ({})) ALL\r\n", many.join(" "));
    assert!(parse_command(line.as_bytes()).is_err());
    let line = format!(
        "a ESEARCH IN (mailboxes ({})) ALL\r\n",
        many[..1000].join(" ")
    );
    assert!(parse_command(line.as_bytes()).is_ok());
}

/// RFC 5267 §5: UPDATE and CONTEXT among the return options, and CANCELUPDATE's quoted tags.
#[test]
fn context_syntax() {
    let c = parse_command(b"B01 UID SEARCH RETURN (UPDATE COUNT) DELETED\r\n").unwrap();
    match c.kind {
        CommandKind::Search { uid, ret, .. } => {
            assert!(uid);
            assert_eq!(ret, Some(vec![SearchReturn::Update, SearchReturn::Count]));
        }
        other => panic!("{other:?}"),
    }
    let c = parse_command(b"A07 SORT RETURN (update context partial 1:5) (DATE) UTF-8 ALL\r\n")
        .unwrap();
    match c.kind {
        CommandKind::Sort { ret, .. } => assert_eq!(
            ret,
            Some(vec![
                SearchReturn::Update,
                SearchReturn::Context,
                SearchReturn::Partial(1, 5)
            ])
        ),
        other => panic!("{other:?}"),
    }
    assert!(parse_command(b"a SEARCH RETURN (UPDATE UPDATE) ALL\r\n").is_err());
    let c = parse_command(b"B04 CANCELUPDATE \"B01\" \"B02\"\r\n").unwrap();
    assert_eq!(
        c.kind,
        CommandKind::CancelUpdate(vec!["B01".into(), "B02".into()])
    );
    assert!(parse_command(b"B05 CANCELUPDATE\r\n").is_err());
    assert!(parse_command(b"B05 CANCELUPDATE \r\n").is_err());
}

/// RFC 5465 §8: NOTIFY's forms, RFC 5465 §3.1's example, and the composition rules (§5, §6.1).
#[test]
fn notify_syntax() {
    use wharf_imap::syntax::{NotifyEvents, NotifyFilter, NotifySet};
    assert_eq!(
        parse_command(b"a NOTIFY NONE\r\n").unwrap().kind,
        CommandKind::Notify(None)
    );
    let c = parse_command(
        b"a NOTIFY SET STATUS (selected (MessageNew (UID BODY.PEEK[HEADER.FIELDS (From To)]) MessageExpunge)) (subtree Lists (MessageNew MessageExpunge MailboxName)) (mailboxes (a \"b c\") NONE)\r\n",
    )
    .unwrap();
    let CommandKind::Notify(Some(NotifySet { status, groups })) = c.kind else {
        panic!("{:?}", c.kind);
    };
    assert!(status);
    assert_eq!(groups.len(), 3);
    assert_eq!(groups[0].0, NotifyFilter::Selected { delayed: false });
    assert!(groups[0].1.message_new && groups[0].1.message_expunge);
    assert_eq!(groups[0].1.fetch.len(), 2);
    assert_eq!(
        groups[1].0,
        NotifyFilter::Other(SourceFilter::Subtree(vec!["Lists".into()]))
    );
    assert!(groups[1].1.mailbox_name);
    assert_eq!(
        groups[2],
        (
            NotifyFilter::Other(SourceFilter::Mailboxes(vec!["a".into(), "b c".into()])),
            NotifyEvents::default()
        )
    );
    // Unknown events parse (they are NO [BADEVENT], not BAD); bad compositions do not.
    let c = parse_command(b"a NOTIFY SET (personal (Xyz))\r\n").unwrap();
    let CommandKind::Notify(Some(set)) = c.kind else {
        panic!();
    };
    assert_eq!(set.groups[0].1.unsupported, ["Xyz"]);
    for bad in [
        "a NOTIFY SET (personal (MessageNew))\r\n",
        "a NOTIFY SET (personal (FlagChange))\r\n",
        "a NOTIFY SET (selected (SubscriptionChange))\r\n",
        "a NOTIFY SET (selected NONE) (selected-delayed NONE)\r\n",
        "a NOTIFY SET (subtree-one x NONE)\r\n",
        "a NOTIFY SET ()\r\n",
        "a NOTIFY SET STATUS\r\n",
        "a NOTIFY ALL\r\n",
    ] {
        assert!(parse_command(bad.as_bytes()).is_err(), "{bad}");
    }
}
