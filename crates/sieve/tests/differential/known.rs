//! Deliberate differences from Pigeonhole 0.5.19 (Debian 12 `dovecot-sieve`); each is also in
//! `README.md` with its RFC reason. Wharf's result is asserted, so a change on either side shows
//! up.

pub struct Known {
    pub name: &'static str,
    /// Wharf's normalised action list.
    pub wharf: &'static [&'static str],
    #[allow(dead_code)]
    pub reason: &'static str,
}

const UNCHANGED: &str = concat!(
    "headers:\n",
    "Date: Tue, 1 Apr 1997 09:06:31 -0800 (PST)\n",
    "Received: from b.example by mx.example; Tue, 1 Apr 1997 18:06:40 +0100\n",
    "Received: from a.example by b.example; Tue, 1 Apr 1997 17:06:35 +0000\n",
    "From: coyote@desert.example.org\n",
    "To: roadrunner@acme.example.com\n",
    "Cc: \"Some One\" <someone+lists@example.net>, Friends: a@friends.example, b@friends.example;\n",
    "Subject: I have a present for you\n",
    "Message-ID: <1234@desert.example.org>\n",
    "X-Spam: yes\n",
    "X-N: 10\n",
    "X-N: 9\n",
    "X-Empty:\n",
    "X-Word: abc"
);

const VACATION: &str =
    "vacation to=\"coyote@desert.example.org\" subject=\"Auto: I have a present for you\"";

fn leak_list(v: Vec<&'static str>) -> &'static [&'static str] {
    Box::leak(v.into_boxed_slice())
}

pub fn differences() -> Vec<Known> {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    vec![
        Known {
            name: "header-matches-q-m0",
            wharf: &["fileinto \"No\""],
            reason: "RFC 5228 §2.7.1: '?' matches exactly one character; Pigeonhole lets \
                     \"?have*\" match \"I have a present\"",
        },
        Known {
            name: "header-matches-q-m1",
            wharf: &["fileinto \"No\""],
            reason: "as header-matches-q-m0",
        },
        Known {
            name: "index-date-m0",
            wharf: &["fileinto \"Yes\""],
            reason: "RFC 5260 §6: date :index selects the Nth field; Pigeonhole ignores \
                     :index in the date test and always reads the first",
        },
        Known {
            name: "eh-add-received",
            wharf: &[UNCHANGED, "keep"],
            reason: "RFC 5293 §9: Received fields carry loop detection; Wharf never adds or \
                     deletes them (lib.rs), Pigeonhole only protects deletion",
        },
        Known {
            name: "eh-delete-autosubmitted",
            wharf: &[UNCHANGED, "keep"],
            reason: "RFC 5293 §9 / RFC 3834: Auto-Submitted stops reply loops; Wharf never \
                     touches it, Pigeonhole refuses deletion but allows adding",
        },
        Known {
            name: "copy-then-plain",
            wharf: &["redirect \"friend@example.com\""],
            reason: "RFC 5228 §4.2 / RFC 3894 §3: a redirect without :copy cancels the \
                     implicit keep even when a :copy redirect to the same address came first; \
                     Pigeonhole merges the two and keeps the :copy semantics",
        },
        Known {
            name: "dup-twice-m0",
            wharf: &["keep", "track duplicate"],
            reason: "RFC 7352 §3: testing the same id twice is allowed (both false on a new \
                     message); Pigeonhole fails the run",
        },
        Known {
            name: "vac-days-0",
            wharf: leak_list(vec!["keep", leak(format!("{VACATION} seconds=86400"))]),
            reason: "RFC 5230 §4.1: the :days minimum is normally 1 day; Pigeonhole applies \
                     its seconds minimum (1h) to :days 0",
        },
        Known {
            name: "vac-seconds-0",
            wharf: leak_list(vec!["keep", leak(format!("{VACATION} seconds=0"))]),
            reason: "RFC 6131 §2: :seconds 0 means reply every time; Pigeonhole raises it to \
                     the site minimum",
        },
        Known {
            name: "vac-subaddress-header",
            wharf: &[
                "keep",
                "vacation to=\"coyote@desert.example.org\" subject=\"Auto: Schöne Grüße and more\" seconds=604800",
            ],
            reason: "RFC 5230 §4.5 leaves the user's own addresses to the implementation: Wharf \
                     counts roadrunner+detail@ as roadrunner@ (RFC 5233), Pigeonhole does not",
        },
    ]
}
