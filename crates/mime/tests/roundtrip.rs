//! Summary encode/decode round trip and the basic analyze outputs.

use wharf_mime::{Summary, analyze};

const MSG: &[u8] = b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\
From: Fred Foobar <foobar@Blurdybloop.example>\r\n\
Subject: afternoon meeting\r\n\
To: mooch@owatagu.siam.edu.example\r\n\
Message-Id: <B27397-0100000@Blurdybloop.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
\r\n\
Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";

#[test]
fn summary_round_trips() {
    let a = analyze(MSG);
    let s = Summary::decode(&a.summary).expect("decodes");
    assert_eq!(s, Summary::parse(MSG));
    assert_eq!(Summary::decode(&s.encode()).expect("decodes again"), s);
    assert_eq!(a.sent_date, Some(760_686_745));
    assert_eq!(a.search.subject, "afternoon meeting");
    assert!(a.search.from.contains("foobar@Blurdybloop.example"));
    assert_eq!(
        a.preview,
        "Hello Joe, do you think we can meet at 3:30 tomorrow?"
    );
    assert_eq!(
        s.envelope(),
        "(\"Mon, 7 Feb 1994 21:52:25 -0800 (PST)\" \"afternoon meeting\" \
((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) \
((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) \
((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) \
((NIL NIL \"mooch\" \"owatagu.siam.edu.example\")) NIL NIL NIL \
\"<B27397-0100000@Blurdybloop.example>\")"
    );
    assert_eq!(
        s.body_structure(false),
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 55 1)"
    );
}

#[test]
fn decode_rejects_garbage() {
    assert!(Summary::decode(b"not a summary").is_err());
    assert!(
        Summary::decode(
            b"{\"v\":999,\"r\":{\"h\":0,\"b\":0,\"e\":0,\"t\":\"TEXT\",\"u\":\"PLAIN\"}}"
        )
        .is_err()
    );
}
