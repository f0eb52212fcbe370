//! The corpus: a handful of messages, and scripts built from templates over them.

pub const FROM: &str = "coyote@desert.example.org";
pub const RCPT: &str = "roadrunner@acme.example.com";

/// RFC 5228 §9's example, with more fields for the extensions.
pub const BASIC: &str = "Date: Tue, 1 Apr 1997 09:06:31 -0800 (PST)
Received: from b.example by mx.example; Tue, 1 Apr 1997 18:06:40 +0100
Received: from a.example by b.example; Tue, 1 Apr 1997 17:06:35 +0000
From: coyote@desert.example.org
To: roadrunner@acme.example.com
Cc: \"Some One\" <someone+lists@example.net>, Friends: a@friends.example, b@friends.example;
Subject: I have a present for you
Message-ID: <1234@desert.example.org>
X-Spam: yes
X-N: 10
X-N: 9
X-Empty:
X-Word: abc

Look, I'm sorry about the whole anvil thing, and I really
didn't mean to try and drop it on you from the top of the
cliff.  I've got some great birdseed over here at my place.
";

/// MIME structure for `body`, encoded words, a sub-address recipient.
pub const MULTIPART: &str = "Date: Wed, 15 Jan 2020 23:30:00 +0530
From: =?UTF-8?Q?Andr=C3=A9_Muller?= <andre+news@example.org>
To: roadrunner+detail@acme.example.com, other@example.com
Subject: =?UTF-8?B?U2Now7ZuZSBHcsO8w59l?= and more
Message-ID: <mp-1@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=\"outer\"

preamble text
--outer
Content-Type: multipart/alternative; boundary=\"inner\"

--inner
Content-Type: text/plain; charset=utf-8

This is the plain part about rockets.
--inner
Content-Type: text/html; charset=utf-8

<p>This is the <b>bold</b> html part.</p>
--inner--
--outer
Content-Type: application/octet-stream
Content-Disposition: attachment; filename=\"a.bin\"

binarystuff ACME
--outer--
epilogue
";

/// Mailing-list traffic: what vacation must not answer.
pub const LIST: &str = "Date: Mon, 4 Mar 2024 12:00:00 +0000
From: Lister <news@lists.example.net>
To: roadrunner@acme.example.com
Subject: Weekly digest
Message-ID: <list-1@lists.example.net>
List-Id: <weekly.lists.example.net>
Precedence: bulk

Digest body.
";

/// Auto-submitted mail.
pub const AUTO: &str = "Date: Mon, 4 Mar 2024 12:00:00 +0000
From: robot@example.net
To: roadrunner@acme.example.com
Subject: Notification
Auto-Submitted: auto-generated

Beep.
";

/// Addressed to someone else (Bcc'd to us).
pub const ELSEWHERE: &str = "Date: Mon, 4 Mar 2024 12:00:00 +0000
From: coyote@desert.example.org
To: someone@elsewhere.example
Subject: Not for you

Hi.
";

/// Minimal: no Subject, Date or Message-ID.
pub const MINIMAL: &str = "From: coyote@desert.example.org
To: roadrunner@acme.example.com

x
";

pub fn spam_message(score: u8, virus: u8) -> &'static str {
    let text = format!("X-Spam-Score: {score}\nX-Virus-Score: {virus}\n{BASIC}");
    Box::leak(text.into_boxed_str())
}

#[derive(Clone)]
pub struct Case {
    pub name: String,
    pub script: String,
    pub message: &'static str,
    pub from: &'static str,
    pub rcpt: &'static str,
    /// Mailboxes that exist before the run.
    pub existing: &'static [&'static str],
    pub spam: Option<u8>,
    pub virus: Option<u8>,
}

struct Corpus(Vec<Case>);

impl Corpus {
    fn add(&mut self, name: &str, script: &str, message: &'static str) -> &mut Case {
        assert!(
            self.0.iter().all(|c| c.name != name),
            "duplicate case {name}"
        );
        self.0.push(Case {
            name: name.to_string(),
            script: script.to_string(),
            message,
            from: FROM,
            rcpt: RCPT,
            existing: &[],
            spam: None,
            virus: None,
        });
        self.0.last_mut().unwrap()
    }

    /// `if TEST { fileinto "Yes"; } else { fileinto "No"; }` over each message.
    fn test(&mut self, name: &str, require: &str, test: &str, messages: &[&'static str]) {
        for (i, m) in messages.iter().enumerate() {
            let script = format!(
                "require [\"fileinto\"{require}];\nif {test} {{ fileinto \"Yes\"; }} else {{ fileinto \"No\"; }}\n"
            );
            self.add(&format!("{name}-m{i}"), &script, m);
        }
    }
}

const ALL3: &[&str] = &[BASIC, MULTIPART, MINIMAL];

pub fn corpus() -> Vec<Case> {
    let mut c = Corpus(Vec::new());

    // ---------------------------------------------------------------- core tests
    for (name, test) in [
        (
            "header-is",
            r#"header :is "Subject" "I have a present for you""#,
        ),
        (
            "header-contains-case",
            r#"header :contains "subject" "PRESENT""#,
        ),
        (
            "header-octet",
            r#"header :contains :comparator "i;octet" "Subject" "PRESENT""#,
        ),
        (
            "header-matches",
            r#"header :matches "Subject" "I have*you""#,
        ),
        ("header-matches-q", r#"header :matches "Subject" "?have*""#),
        (
            "header-matches-from",
            r#"header :matches "From" "*@desert.example.org""#,
        ),
        (
            "header-list",
            r#"header :is ["To","Cc"] ["x@y.z","roadrunner@acme.example.com"]"#,
        ),
        ("header-missing-empty", r#"header :contains "X-Missing" """#),
        ("header-empty-field", r#"header :is "X-Empty" """#),
        ("header-contains-empty", r#"header :contains "Subject" """#),
        (
            "header-received",
            r#"header :contains "Received" "a.example""#,
        ),
        ("header-date-star", r#"header :matches "Date" "*1997*""#),
        ("header-encoded", r#"header :contains "Subject" "Schöne""#),
        ("header-encoded-from", r#"header :contains "From" "André""#),
        ("header-escape", r#"header :matches "Subject" "*\\?*""#),
        (
            "address-is",
            r#"address :is "From" "coyote@desert.example.org""#,
        ),
        (
            "address-domain",
            r#"address :domain :is "From" "DESERT.example.org""#,
        ),
        (
            "address-localpart",
            r#"address :localpart :contains "To" "runner""#,
        ),
        (
            "address-all-cc",
            r#"address :all :is "Cc" "someone+lists@example.net""#,
        ),
        ("address-group", r#"address :is "Cc" "b@friends.example""#),
        (
            "address-domain-matches",
            r#"address :domain :matches ["To","Cc"] "*.example""#,
        ),
        ("address-display", r#"address :contains "From" "Andr""#),
        ("exists", r#"exists "X-Spam""#),
        ("exists-list", r#"exists ["From","X-Nope"]"#),
        ("not-exists", r#"not exists "X-Nope""#),
        ("size-over", "size :over 500"),
        ("size-under", "size :under 500"),
        ("size-k", "size :over 1K"),
        ("size-m", "size :under 1M"),
        ("allof", r#"allof(exists "From", exists "Subject")"#),
        (
            "anyof",
            r#"anyof(exists "X-Nope", header :contains "To" "acme")"#,
        ),
        ("not-anyof", r#"not anyof(false, exists "Message-ID")"#),
        ("true-false", "allof(true, not false)"),
    ] {
        c.test(name, "", test, ALL3);
    }
    for (name, test) in [
        (
            "envelope-from",
            r#"envelope :is "from" "coyote@desert.example.org""#,
        ),
        (
            "envelope-to-domain",
            r#"envelope :domain "to" "ACME.example.com""#,
        ),
        (
            "envelope-localpart",
            r#"envelope :localpart :matches "from" "coy*""#,
        ),
        (
            "envelope-to-all",
            r#"envelope :all :contains "to" "runner""#,
        ),
    ] {
        c.test(name, r#","envelope""#, test, &[BASIC]);
    }

    // ---------------------------------------------------------------- core actions
    let basic_actions = [
        ("keep", "keep;"),
        ("implicit", "if false { keep; }"),
        ("discard", "discard;"),
        ("discard-keep", "discard; keep;"),
        ("fileinto", r#"require "fileinto"; fileinto "A";"#),
        (
            "fileinto-twice",
            r#"require "fileinto"; fileinto "A"; fileinto "A"; fileinto "B";"#,
        ),
        ("fileinto-inbox", r#"require "fileinto"; fileinto "INBOX";"#),
        (
            "fileinto-inbox-case",
            r#"require "fileinto"; fileinto "inbox";"#,
        ),
        (
            "fileinto-discard",
            r#"require "fileinto"; fileinto "A"; discard;"#,
        ),
        (
            "keep-fileinto",
            r#"require "fileinto"; keep; fileinto "A";"#,
        ),
        ("redirect", r#"redirect "friend@example.com";"#),
        (
            "redirect-twice",
            r#"redirect "friend@example.com"; redirect "friend@example.com";"#,
        ),
        ("redirect-keep", r#"redirect "friend@example.com"; keep;"#),
        (
            "redirect-limit",
            r#"redirect "a@x.org"; redirect "b@x.org"; redirect "c@x.org"; redirect "d@x.org"; redirect "e@x.org";"#,
        ),
        ("redirect-invalid", r#"redirect "not an address";"#),
        (
            "stop",
            r#"require "fileinto"; fileinto "A"; stop; fileinto "B";"#,
        ),
        ("stop-implicit", "stop; discard;"),
        (
            "if-elsif",
            r#"require "fileinto"; if false { fileinto "A"; } elsif true { fileinto "B"; } else { fileinto "C"; }"#,
        ),
        (
            "nested",
            r#"require "fileinto"; if exists "From" { if exists "Nope" { discard; } else { fileinto "Nested"; } }"#,
        ),
        (
            "multiline",
            "require \"reject\";\nreject text:\nline one\n..dotted\n.\n;",
        ),
        ("comment", "# comment\n/* block\ncomment */ keep;"),
        ("reject", r#"require "reject"; reject "go away";"#),
        (
            "reject-keep",
            r#"require "reject"; reject "go away"; keep;"#,
        ),
        (
            "reject-fileinto",
            r#"require ["reject","fileinto"]; fileinto "A"; reject "go away";"#,
        ),
        (
            "reject-redirect",
            r#"require "reject"; redirect "friend@example.com"; reject "go away";"#,
        ),
        (
            "reject-discard",
            r#"require "reject"; reject "go away"; discard;"#,
        ),
        (
            "reject-twice",
            r#"require "reject"; reject "one"; reject "two";"#,
        ),
        // Compile errors: both must refuse.
        ("err-unknown-require", r#"require "nonsense"; keep;"#),
        ("err-missing-require", r#"fileinto "A";"#),
        ("err-unterminated", r#"keep; if header :is "a" "b { }"#),
        ("err-bad-tag", r#"if header :bogus "a" "b" { keep; }"#),
        ("err-empty-allof", "if allof() { keep; }"),
        ("err-keep-arg", r#"keep "x";"#),
        ("err-require-late", r#"keep; require "fileinto";"#),
        ("err-elsif-alone", "elsif true { keep; }"),
        ("err-missing-semicolon", "keep discard;"),
    ];
    for (name, script) in basic_actions {
        c.add(name, script, BASIC);
    }

    // ---------------------------------------------------------------- encoded-character
    for (name, s) in [
        (
            "enc-hex",
            r#"require ["fileinto","encoded-character"]; fileinto "${hex:42 6f 78}";"#,
        ),
        (
            "enc-unicode",
            r#"require ["fileinto","encoded-character"]; fileinto "Box-${unicode:e9}";"#,
        ),
        (
            "enc-bad",
            r#"require ["fileinto","encoded-character"]; fileinto "${hex:zz}";"#,
        ),
        (
            "enc-notrequired",
            r#"require ["fileinto"]; fileinto "${hex:41}";"#,
        ),
        (
            "enc-header",
            r#"require ["fileinto","encoded-character"]; if header :contains "Subject" "${hex:70 72 65}sent" { fileinto "Yes"; }"#,
        ),
        (
            "enc-upper",
            r#"require ["fileinto","encoded-character"]; fileinto "${HEX:43}${Unicode:44}";"#,
        ),
    ] {
        c.add(name, s, BASIC);
    }

    // ---------------------------------------------------------------- body
    for (name, test) in [
        ("body-contains", r#"body :contains "anvil""#),
        ("body-case", r#"body :contains "ANVIL""#),
        ("body-raw", r#"body :raw :contains "Content-Type""#),
        ("body-raw-boundary", r#"body :raw :contains "--inner""#),
        ("body-text", r#"body :text :contains "rockets""#),
        ("body-text-html", r#"body :text :contains "bold""#),
        (
            "body-content-html",
            r#"body :content "text/html" :contains "bold""#,
        ),
        (
            "body-content-text",
            r#"body :content "text" :contains "plain part""#,
        ),
        (
            "body-content-app",
            r#"body :content "application/octet-stream" :contains "ACME""#,
        ),
        (
            "body-content-multipart",
            r#"body :content "multipart" :contains "preamble""#,
        ),
        ("body-matches", r#"body :text :matches "*birdseed*""#),
        ("body-is", r#"body :is "x""#),
        ("body-attach-text", r#"body :text :contains "binarystuff""#),
    ] {
        c.test(name, r#","body""#, test, &[BASIC, MULTIPART, MINIMAL]);
    }

    // ---------------------------------------------------------------- variables
    let vars = [
        ("var-set", r#"set "a" "Box"; fileinto "${a}";"#),
        ("var-upper", r#"set :upper "a" "box"; fileinto "${a}";"#),
        ("var-lower", r#"set :lower "a" "BOX"; fileinto "${a}";"#),
        (
            "var-upperfirst",
            r#"set :upperfirst "a" "box"; fileinto "${a}";"#,
        ),
        (
            "var-lowerfirst-upper",
            r#"set :lower :upperfirst "a" "BOX"; fileinto "${a}";"#,
        ),
        (
            "var-length",
            r#"set :length "a" "héllo"; fileinto "L${a}";"#,
        ),
        (
            "var-quotewildcard",
            r#"set :quotewildcard "a" "a*b?c\\d"; fileinto "${a}";"#,
        ),
        ("var-unknown", r#"fileinto "x${nope}y";"#),
        ("var-unterminated", r#"fileinto "x${a";"#),
        (
            "var-nested",
            r#"set "a" "b"; set "b" "c"; fileinto "${${a}}";"#,
        ),
        ("var-case", r#"set "Name" "Box"; fileinto "${name}";"#),
        (
            "var-match",
            r#"if header :matches "Subject" "* have * *" { fileinto "${1}-${2}-${3}"; }"#,
        ),
        (
            "var-match0",
            r#"if header :matches "Subject" "I*" { fileinto "${0}"; }"#,
        ),
        (
            "var-match-q",
            r#"if header :matches "From" "?*@*" { fileinto "${1}|${2}|${3}"; }"#,
        ),
        (
            "var-match-fail-keeps",
            r#"if header :matches "Subject" "I*" { } if header :matches "Subject" "zzz*" { } fileinto "m${1}";"#,
        ),
        (
            "var-match-address",
            r#"if address :matches :domain "From" "*.*.*" { fileinto "${2}"; }"#,
        ),
        (
            "var-string-is",
            r#"set "a" "x"; if string :is "${a}" "x" { fileinto "Yes"; }"#,
        ),
        (
            "var-string-empty",
            r#"if string :is "${nope}" "" { fileinto "Empty"; }"#,
        ),
        (
            "var-string-list",
            r#"if string :contains ["abc","def"] "e" { fileinto "Yes"; }"#,
        ),
        (
            "var-numeric",
            r#"if header :matches "Subject" "*" { set "x" "${01}"; fileinto "n${x}"; }"#,
        ),
        (
            "var-redirect",
            r#"set "d" "example.com"; redirect "friend@${d}";"#,
        ),
        (
            "var-overwrite",
            r#"set "a" "1"; set "a" "${a}2"; fileinto "${a}";"#,
        ),
        (
            "var-contains-nomatch",
            r#"if header :contains "Subject" "present" { fileinto "c${1}"; }"#,
        ),
        ("var-bad-name", r#"set "1a" "x";"#),
    ];
    for (name, s) in vars {
        c.add(
            name,
            &format!("require [\"fileinto\",\"variables\"];\n{s}\n"),
            BASIC,
        );
    }
    c.add(
        "var-encoded-subject",
        "require [\"fileinto\",\"variables\"];\nif header :matches \"Subject\" \"*\" { fileinto \"${1}\"; }\n",
        MULTIPART,
    );

    // ---------------------------------------------------------------- relational
    for (name, test) in [
        (
            "rel-count-received",
            r#"header :count "eq" :comparator "i;ascii-numeric" "Received" "2""#,
        ),
        (
            "rel-count-ge",
            r#"header :count "ge" :comparator "i;ascii-numeric" ["Received","X-N"] "4""#,
        ),
        (
            "rel-count-addr",
            r#"address :count "eq" :comparator "i;ascii-numeric" ["To","Cc"] "4""#,
        ),
        (
            "rel-value-gt",
            r#"header :value "gt" :comparator "i;ascii-numeric" "X-N" "9""#,
        ),
        ("rel-value-lt-str", r#"header :value "lt" "Subject" "J""#),
        ("rel-value-ne", r#"header :value "ne" "X-Word" "abc""#),
        (
            "rel-value-le-casemap",
            r#"header :value "le" "X-Word" "ABC""#,
        ),
        (
            "rel-count-zero",
            r#"header :count "eq" :comparator "i;ascii-numeric" "X-Nope" "0""#,
        ),
        (
            "rel-value-missing",
            r#"header :value "lt" :comparator "i;ascii-numeric" "X-Nope" "5""#,
        ),
        (
            "rel-count-envelope",
            r#"envelope :count "eq" :comparator "i;ascii-numeric" "to" "1""#,
        ),
    ] {
        c.test(
            name,
            r#","relational","envelope","comparator-i;ascii-numeric""#,
            test,
            &[BASIC, MINIMAL],
        );
    }

    // ---------------------------------------------------------------- comparator-i;ascii-numeric
    for (name, test) in [
        (
            "num-is",
            r#"header :is :comparator "i;ascii-numeric" "X-N" "010""#,
        ),
        (
            "num-nondigit",
            r#"header :is :comparator "i;ascii-numeric" "X-Word" "0""#,
        ),
        (
            "num-both-nondigit",
            r#"header :is :comparator "i;ascii-numeric" "X-Word" "xyz""#,
        ),
        (
            "num-lt-inf",
            r#"header :value "lt" :comparator "i;ascii-numeric" "X-Word" "99999999""#,
        ),
        (
            "num-prefix",
            r#"header :value "eq" :comparator "i;ascii-numeric" "Subject" "0""#,
        ),
        (
            "num-contains-err",
            r#"header :contains :comparator "i;ascii-numeric" "X-N" "1""#,
        ),
    ] {
        c.test(
            name,
            r#","relational","comparator-i;ascii-numeric""#,
            test,
            &[BASIC],
        );
    }

    // ---------------------------------------------------------------- subaddress
    for (name, test) in [
        ("sub-detail", r#"envelope :detail "to" "detail""#),
        ("sub-user", r#"envelope :user "to" "roadrunner""#),
        ("sub-detail-empty-env", r#"envelope :detail "to" """#),
        ("sub-addr-detail", r#"address :detail "Cc" "lists""#),
        ("sub-addr-user", r#"address :user :is "Cc" "someone""#),
        ("sub-no-sep", r#"address :detail :matches "From" "*""#),
        ("sub-to-detail", r#"address :detail :is "To" "detail""#),
    ] {
        for (i, (m, rcpt)) in [
            (BASIC, RCPT),
            (MULTIPART, "roadrunner+detail@acme.example.com"),
        ]
        .into_iter()
        .enumerate()
        {
            c.add(
                &format!("{name}-m{i}"),
                &format!(
                    "require [\"fileinto\",\"envelope\",\"subaddress\"];\nif {test} {{ fileinto \"Yes\"; }} else {{ fileinto \"No\"; }}\n"
                ),
                m,
            )
            .rcpt = rcpt;
        }
    }
    c.add(
        "sub-detail-var",
        "require [\"fileinto\",\"envelope\",\"subaddress\",\"variables\"];\nif envelope :detail :matches \"to\" \"*\" { fileinto \"${1}\"; }\n",
        MULTIPART,
    )
    .rcpt = "roadrunner+detail@acme.example.com";

    // ---------------------------------------------------------------- imap4flags
    for (name, s) in [
        ("flags-set", r#"setflag "\\Seen";"#),
        (
            "flags-add",
            r#"addflag ["\\Seen", "Foo"]; addflag "bar baz";"#,
        ),
        ("flags-remove", r#"addflag "a b c"; removeflag "b";"#),
        ("flags-remove-all", r#"addflag "a"; removeflag "a"; keep;"#),
        ("flags-fileinto", r#"addflag "\\Flagged"; fileinto "A";"#),
        (
            "flags-explicit",
            r#"addflag "x"; fileinto :flags "\\Seen y" "A";"#,
        ),
        ("flags-keep-explicit", r#"keep :flags ["\\Answered"];"#),
        ("flags-keep-empty", r#"addflag "x"; keep :flags "";"#),
        ("flags-after", r#"fileinto "A"; addflag "late";"#),
        (
            "flags-hasflag",
            r#"addflag "Foo"; if hasflag "foo" { fileinto "Yes"; }"#,
        ),
        (
            "flags-hasflag-contains",
            r#"addflag "Foobar"; if hasflag :contains "bar" { fileinto "Yes"; }"#,
        ),
        (
            "flags-hasflag-count",
            r#"require ["relational","comparator-i;ascii-numeric"]; addflag "a b c"; if hasflag :count "eq" :comparator "i;ascii-numeric" "3" { fileinto "Yes"; }"#,
        ),
        (
            "flags-variable",
            r#"require "variables"; set "f" ""; addflag "f" "\\Deleted"; fileinto :flags "${f}" "A"; if hasflag "f" "\\Deleted" { fileinto "Yes"; }"#,
        ),
        ("flags-dup", r#"addflag "X x X";"#),
        ("flags-case-system", r#"addflag "\\SEEN";"#),
        (
            "flags-two-folders",
            r#"setflag "a"; fileinto "A"; setflag "b"; fileinto "B";"#,
        ),
    ] {
        c.add(
            name,
            &format!("require [\"fileinto\",\"imap4flags\"];\n{s}\n"),
            BASIC,
        );
    }

    // ---------------------------------------------------------------- date / index
    let date_msgs: &[&'static str] = &[BASIC, MULTIPART, MINIMAL];
    for (name, test) in [
        ("date-year", r#"date :is "date" "year" "1997""#),
        (
            "date-zone-hour",
            r#"date :zone "+0000" :is "date" "hour" "17""#,
        ),
        (
            "date-originalzone",
            r#"date :originalzone :is "date" "zone" "-0800""#,
        ),
        ("date-local-zone", r#"date :is "date" "zone" "+0000""#),
        ("date-weekday", r#"date :is "date" "weekday" "2""#),
        (
            "date-iso",
            r#"date :originalzone :matches "date" "iso8601" "*-04-01T09:06:31*""#,
        ),
        (
            "date-std11",
            r#"date :zone "+0100" :contains "date" "std11" "Apr 1997""#,
        ),
        ("date-julian", r#"date :is "date" "julian" "50539""#),
        (
            "date-time",
            r#"date :originalzone :is "date" "time" "09:06:31""#,
        ),
        (
            "date-month-value",
            r#"date :value "ge" :comparator "i;ascii-numeric" "date" "month" "04""#,
        ),
        ("date-received", r#"date :is "received" "day" "01""#),
        ("date-missing", r#"date :is "x-nope" "year" "1997""#),
        (
            "date-bad-zone-part",
            r#"date :zone "-0130" :is "date" "date" "1997-04-01""#,
        ),
        (
            "currentdate-year",
            r#"currentdate :value "ge" :comparator "i;ascii-numeric" "year" "2024""#,
        ),
        ("currentdate-zone", r#"currentdate :is "zone" "+0000""#),
        (
            "currentdate-zone-arg",
            r#"currentdate :zone "+0230" :is "zone" "+0230""#,
        ),
        (
            "index-header",
            r#"header :index 2 :contains "Received" "a.example""#,
        ),
        (
            "index-last",
            r#"header :index 1 :last :contains "Received" "a.example""#,
        ),
        (
            "index-out-of-range",
            r#"header :index 5 :contains "Received" """#,
        ),
        (
            "index-address",
            r#"address :index 2 :is "Cc" "a@friends.example""#,
        ),
        (
            "index-date",
            r#"date :index 1 :last :originalzone :is "received" "hour" "17""#,
        ),
        (
            "index-date-first",
            r#"date :index 1 :zone "+0000" :is "received" "hour" "17""#,
        ),
    ] {
        c.test(
            name,
            r#","date","index","relational","comparator-i;ascii-numeric""#,
            test,
            date_msgs,
        );
    }

    // ---------------------------------------------------------------- editheader
    for (name, s) in [
        ("eh-add", r#"addheader "X-New" "value";"#),
        ("eh-add-last", r#"addheader :last "X-New" "value";"#),
        (
            "eh-add-visible",
            r#"addheader "X-New" "v1"; if header :is "X-New" "v1" { fileinto "Yes"; }"#,
        ),
        (
            "eh-add-index",
            r#"require "index"; addheader "X-N" "0"; if header :index 1 :is "X-N" "0" { fileinto "Yes"; }"#,
        ),
        (
            "eh-add-last-index",
            r#"require "index"; addheader :last "X-N" "0"; if header :index 1 :last :is "X-N" "0" { fileinto "Yes"; }"#,
        ),
        ("eh-delete", r#"deleteheader "X-Spam";"#),
        (
            "eh-delete-visible",
            r#"deleteheader "X-Spam"; if exists "X-Spam" { fileinto "Still"; } else { fileinto "Gone"; }"#,
        ),
        ("eh-delete-index", r#"deleteheader :index 2 "X-N";"#),
        ("eh-delete-last", r#"deleteheader :index 1 :last "X-N";"#),
        ("eh-delete-value", r#"deleteheader :is "X-N" "9";"#),
        ("eh-delete-matches", r#"deleteheader :matches "X-N" "1*";"#),
        (
            "eh-delete-contains",
            r#"deleteheader :contains "Subject" "present";"#,
        ),
        ("eh-delete-missing", r#"deleteheader "X-Nope";"#),
        ("eh-delete-received", r#"deleteheader "Received";"#),
        ("eh-add-received", r#"addheader "Received" "from nowhere";"#),
        (
            "eh-delete-autosubmitted",
            r#"addheader "Auto-Submitted" "no"; deleteheader "Auto-Submitted";"#,
        ),
        ("eh-utf8", r#"addheader "X-Utf8" "Grüße";"#),
        ("eh-bad-name", r#"addheader "Bad Name" "x";"#),
        (
            "eh-var",
            r#"require "variables"; if header :matches "Subject" "*" { addheader "X-Old-Subject" "${1}"; deleteheader "Subject"; addheader "Subject" "[tag] ${1}"; }"#,
        ),
        (
            "eh-then-fileinto",
            r#"addheader "X-Tag" "1"; fileinto "A";"#,
        ),
        (
            "eh-add-count",
            r#"require ["relational","comparator-i;ascii-numeric"]; addheader "X-A" "1"; addheader "X-A" "2"; if header :count "eq" :comparator "i;ascii-numeric" "X-A" "2" { fileinto "Two"; }"#,
        ),
        (
            "eh-delete-then-add",
            r#"deleteheader "Subject"; addheader :last "Subject" "new"; if header :is "Subject" "new" { fileinto "Yes"; }"#,
        ),
    ] {
        c.add(
            name,
            &format!("require [\"fileinto\",\"editheader\"];\n{s}\n"),
            BASIC,
        );
    }

    // ---------------------------------------------------------------- mailbox
    for (name, s) in [
        ("mbx-create", r#"fileinto :create "New";"#),
        ("mbx-create-existing", r#"fileinto :create "Existing";"#),
        (
            "mbx-exists",
            r#"if mailboxexists "Existing" { fileinto "Yes"; } else { fileinto "No"; }"#,
        ),
        (
            "mbx-exists-missing",
            r#"if mailboxexists "Nope" { fileinto "Yes"; } else { fileinto "No"; }"#,
        ),
        (
            "mbx-exists-list",
            r#"if mailboxexists ["Existing","Nope"] { fileinto "Yes"; } else { fileinto "No"; }"#,
        ),
        (
            "mbx-exists-inbox",
            r#"if mailboxexists "INBOX" { fileinto "Yes"; } else { fileinto "No"; }"#,
        ),
    ] {
        c.add(
            name,
            &format!("require [\"fileinto\",\"mailbox\"];\n{s}\n"),
            BASIC,
        )
        .existing = &["Existing"];
    }

    // ---------------------------------------------------------------- copy
    for (name, s) in [
        ("copy-redirect", r#"redirect :copy "friend@example.com";"#),
        ("copy-fileinto", r#"fileinto :copy "A";"#),
        (
            "copy-both",
            r#"fileinto :copy "A"; redirect :copy "friend@example.com";"#,
        ),
        (
            "copy-then-plain",
            r#"redirect :copy "friend@example.com"; redirect "friend@example.com";"#,
        ),
        ("copy-discard", r#"fileinto :copy "A"; discard;"#),
        ("copy-mixed", r#"fileinto :copy "A"; fileinto "B";"#),
    ] {
        c.add(
            name,
            &format!("require [\"fileinto\",\"copy\"];\n{s}\n"),
            BASIC,
        );
    }

    // ---------------------------------------------------------------- duplicate
    for (name, s) in [
        (
            "dup-default",
            r#"if duplicate { discard; } else { fileinto "New"; }"#,
        ),
        (
            "dup-twice",
            r#"if duplicate { fileinto "D1"; } if duplicate { fileinto "D2"; }"#,
        ),
        (
            "dup-header",
            r#"if duplicate :header "Subject" { discard; } else { fileinto "New"; }"#,
        ),
        (
            "dup-uniqueid",
            r#"if duplicate :uniqueid "abc" :seconds 60 { discard; } else { fileinto "New"; }"#,
        ),
        (
            "dup-handle-last",
            r#"if duplicate :handle "h" :last { discard; } else { fileinto "New"; }"#,
        ),
        (
            "dup-missing-header",
            r#"if duplicate :header "X-Nope" { discard; } else { fileinto "New"; }"#,
        ),
    ] {
        for (i, m) in [BASIC, MINIMAL].into_iter().enumerate() {
            c.add(
                &format!("{name}-m{i}"),
                &format!("require [\"fileinto\",\"duplicate\"];\n{s}\n"),
                m,
            );
        }
    }

    // ---------------------------------------------------------------- spamtest / virustest
    for (name, req, test) in [
        (
            "spam-ge",
            "spamtest",
            r#"spamtest :value "ge" :comparator "i;ascii-numeric" "5""#,
        ),
        (
            "spam-zero",
            "spamtest",
            r#"spamtest :value "eq" :comparator "i;ascii-numeric" "0""#,
        ),
        ("spam-is", "spamtest", r#"spamtest :is "1""#),
        (
            "spamplus-percent",
            "spamtestplus",
            r#"spamtest :percent :value "gt" :comparator "i;ascii-numeric" "49""#,
        ),
        (
            "spamplus-percent-is",
            "spamtestplus",
            r#"spamtest :percent :is :comparator "i;ascii-numeric" "90""#,
        ),
        (
            "virus-ge",
            "virustest",
            r#"virustest :value "ge" :comparator "i;ascii-numeric" "4""#,
        ),
        (
            "virus-zero",
            "virustest",
            r#"virustest :value "eq" :comparator "i;ascii-numeric" "0""#,
        ),
    ] {
        for (i, (spam, virus)) in [
            (None, None),
            (Some(0), Some(0)),
            (Some(2), Some(1)),
            (Some(9), Some(5)),
        ]
        .into_iter()
        .enumerate()
        {
            let m = match (spam, virus) {
                (Some(s), Some(v)) => spam_message(s, v),
                _ => BASIC,
            };
            let case = c.add(
                &format!("{name}-s{i}"),
                &format!(
                    "require [\"fileinto\",\"relational\",\"comparator-i;ascii-numeric\",\"{req}\"];\nif {test} {{ fileinto \"Yes\"; }} else {{ fileinto \"No\"; }}\n"
                ),
                m,
            );
            case.spam = spam;
            case.virus = virus;
        }
    }

    // ---------------------------------------------------------------- vacation
    let vac = |s: &str| {
        format!("require [\"vacation\",\"vacation-seconds\",\"fileinto\",\"variables\"];\n{s}\n")
    };
    for (name, s) in [
        ("vac-default", r#"vacation "I'm away";"#),
        ("vac-days", r#"vacation :days 3 "I'm away";"#),
        ("vac-days-0", r#"vacation :days 0 "I'm away";"#),
        ("vac-days-big", r#"vacation :days 100 "I'm away";"#),
        ("vac-seconds", r#"vacation :seconds 7200 "I'm away";"#),
        ("vac-seconds-small", r#"vacation :seconds 60 "I'm away";"#),
        ("vac-seconds-0", r#"vacation :seconds 0 "I'm away";"#),
        (
            "vac-subject",
            r#"vacation :subject "Gone fishing" "I'm away";"#,
        ),
        (
            "vac-from",
            r#"vacation :from "boss@acme.example.com" "I'm away";"#,
        ),
        ("vac-handle", r#"vacation :handle "h1" "I'm away";"#),
        (
            "vac-mime",
            "vacation :mime \"Content-Type: text/plain\r\n\r\nI'm away\";",
        ),
        (
            "vac-addresses",
            r#"vacation :addresses ["other@example.com"] "I'm away";"#,
        ),
        (
            "vac-var-subject",
            r#"if header :matches "Subject" "*" { vacation :subject "Re: ${1}" "I'm away"; }"#,
        ),
        ("vac-with-fileinto", r#"fileinto "A"; vacation "I'm away";"#),
        ("vac-discard", r#"vacation "I'm away"; discard;"#),
        ("vac-twice", r#"vacation "one"; vacation "two";"#),
    ] {
        c.add(name, &vac(s), BASIC);
    }
    for (name, m) in [
        ("vac-list", LIST),
        ("vac-auto", AUTO),
        ("vac-elsewhere", ELSEWHERE),
        ("vac-minimal", MINIMAL),
        ("vac-subaddress-header", MULTIPART),
    ] {
        c.add(name, &vac(r#"vacation "I'm away";"#), m);
    }
    c.add(
        "vac-encoded-subject",
        &vac(r#"vacation "I'm away";"#),
        MULTIPART,
    )
    .rcpt = "roadrunner+detail@acme.example.com";
    c.add(
        "vac-elsewhere-addresses",
        &vac(r#"vacation :addresses "someone@elsewhere.example" "I'm away";"#),
        ELSEWHERE,
    );
    c.add("vac-daemon", &vac(r#"vacation "I'm away";"#), BASIC)
        .from = "MAILER-DAEMON@desert.example.org";
    c.add("vac-owner", &vac(r#"vacation "I'm away";"#), BASIC)
        .from = "owner-list@desert.example.org";
    c.add("vac-request", &vac(r#"vacation "I'm away";"#), BASIC)
        .from = "list-request@desert.example.org";
    c.add("vac-self", &vac(r#"vacation "I'm away";"#), BASIC)
        .from = RCPT;
    c.add(
        "vac-reject",
        &format!(
            "require \"reject\";\n{}",
            vac(r#"vacation "x"; reject "no";"#)
        ),
        BASIC,
    );

    c.0
}
