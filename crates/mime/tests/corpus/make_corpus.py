#!/usr/bin/env python3
"""Writes the ENVELOPE/BODYSTRUCTURE corpus: NN-name.eml plus NN-name.envelope,
NN-name.bodystructure and NN-name.body (exact expected IMAP text).

The expected values are written here by hand from RFC 9051 §7.5.2 / RFC 3501 §7.4.2 and are
rendered by this script's own small IMAP renderer; body octets and line counts are computed from
the body bytes each message is assembled from (the bytes between the blank line after the part
header and the line break preceding the next delimiter, RFC 2046 §5.1.1). Nothing here comes from
wharf-mime's output. Run from this directory: python3 make_corpus.py

Line counts (body-fld-lines) count text lines: every LF, plus a last line that has no line break
of its own (in a multipart the CRLF before the delimiter belongs to the delimiter, so a part
"See attached." is one line). Unfolding follows RFC 5322 §2.2.3 exactly (only CRLF is removed,
the blanks stay); a quoted local part keeps its quotes so that mailbox@host stays an address.
"""
import os

OUT = os.path.dirname(os.path.abspath(__file__))


def crlf(s):
    return s.replace("\r\n", "\n").replace("\n", "\r\n")


def q(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def st(s):
    if any(ord(c) >= 0x80 or c in "\r\n\0" for c in s):
        b = s.encode()
        return "{%d}\r\n" % len(b) + s
    return q(s)


def ns(s):
    return "NIL" if s is None else st(s)


def nlines(b):
    if isinstance(b, str):
        b = b.encode()
    n = b.count(b"\n")
    return n + (1 if b and not b.endswith(b"\n") else 0)


def A(name, mb, host, adl=None):
    return "(" + " ".join(ns(x) for x in (name, adl, mb, host)) + ")"


GS = lambda g: "(NIL NIL %s NIL)" % q(g)  # group start
GE = "(NIL NIL NIL NIL)"  # group end


def alist(lst):
    return "NIL" if not lst else "(" + "".join(lst) + ")"


def env(date=None, subject=None, frm=(), sender=(), reply=(), to=(), cc=(), bcc=(), irt=None, mid=None):
    sender = sender or frm
    reply = reply or frm
    return "(%s %s %s %s %s %s %s %s %s %s)" % (
        ns(date), ns(subject), alist(frm), alist(sender), alist(reply),
        alist(to), alist(cc), alist(bcc), ns(irt), ns(mid))


def params(p):
    if not p:
        return "NIL"
    return "(" + " ".join("%s %s" % (st(k), st(v)) for k, v in p) + ")"


def dsp(d):
    if d is None:
        return "NIL"
    return "(%s %s)" % (st(d[0]), params(d[1]))


def lang(l):
    if l is None:
        return "NIL"
    if isinstance(l, str):
        return st(l)
    return "(" + " ".join(st(x) for x in l) + ")"


class Leaf:
    def __init__(self, t, s, body, p=None, id=None, desc=None, enc="7BIT", md5=None, d=None,
                 lg=None, loc=None, env=None, inner=None):
        self.__dict__.update(locals())
        del self.__dict__["self"]
        if isinstance(self.body, str):
            self.body = self.body.encode()

    def render(self, ext):
        out = "(%s %s %s %s %s %s %d" % (q(self.t), q(self.s), params(self.p), ns(self.id),
                                        ns(self.desc), q(self.enc), len(self.body))
        if self.t == "MESSAGE":
            out += " %s %s %d" % (self.env, self.inner.render(ext), nlines(self.body))
        elif self.t == "TEXT":
            out += " %d" % nlines(self.body)
        if ext:
            out += " %s %s %s %s" % (ns(self.md5), dsp(self.d), lang(self.lg), ns(self.loc))
        return out + ")"


class Multi:
    def __init__(self, s, children, p=None, d=None, lg=None, loc=None):
        self.__dict__.update(locals())
        del self.__dict__["self"]

    def render(self, ext):
        out = "(" + "".join(c.render(ext) for c in self.children) + " " + q(self.s)
        if ext:
            out += " %s %s %s %s" % (params(self.p), dsp(self.d), lang(self.lg), ns(self.loc))
        return out + ")"


# RFC 2045 §5.2 default, and RFC 2046 §4.1.2: text/plain without a charset parameter is
# US-ASCII, so the parameter is added to text/plain parts that lack it.
DEFAULT = [("CHARSET", "us-ascii")]
CASES = []


def case(name, raw, envelope, tree):
    if isinstance(raw, str):
        raw = raw.encode()
    CASES.append((name, raw, envelope, tree))


def plain(body, **kw):
    return Leaf("TEXT", "PLAIN", body, p=kw.pop("p", DEFAULT), **kw)


# 01: RFC 3501-style simple message.
b = crlf("Hello Joe, do you think we can meet at 3:30 tomorrow?\n")
case("01-simple", crlf("""Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)
From: Fred Foobar <foobar@Blurdybloop.example>
Subject: afternoon meeting
To: mooch@owatagu.siam.edu.example
Message-Id: <B27397-0100000@Blurdybloop.example>
MIME-Version: 1.0
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII

""") + b,
     env("Mon, 7 Feb 1994 21:52:25 -0800 (PST)", "afternoon meeting",
         [A("Fred Foobar", "foobar", "Blurdybloop.example")],
         to=[A(None, "mooch", "owatagu.siam.edu.example")],
         mid="<B27397-0100000@Blurdybloop.example>"),
     plain(b, p=[("CHARSET", "US-ASCII")]))

# 02: no MIME-Version, no Content-Type, no Date, no Message-ID: RFC 2045 §5.2 default.
b = crlf("line one\nline two\n")
case("02-no-content-type", crlf("From: alice@example.org\nTo: bob@example.net\nSubject: plain\n\n") + b,
     env(None, "plain", [A(None, "alice", "example.org")], to=[A(None, "bob", "example.net")]),
     plain(b))

# 03: multipart/alternative, QP text + base64 html.
p1 = crlf("Caf=C3=A9 au lait=\n is nice.")
p2 = "PGI+Q2Fmw6k8L2I+Cg=="
case("03-alternative", crlf("""From: "Carol" <carol@example.com>
To: Dave <dave@example.com>
Subject: alt
Date: Tue, 1 Jan 2019 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="alt-1"

--alt-1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

""") + p1 + crlf("""
--alt-1
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: base64

""") + p2 + crlf("\n--alt-1--\n"),
     env("Tue, 1 Jan 2019 10:00:00 +0000", "alt", [A("Carol", "carol", "example.com")],
         to=[A("Dave", "dave", "example.com")]),
     Multi("ALTERNATIVE", [
         Leaf("TEXT", "PLAIN", p1, p=[("CHARSET", "utf-8")], enc="QUOTED-PRINTABLE"),
         Leaf("TEXT", "HTML", p2, p=[("CHARSET", "utf-8")], enc="BASE64"),
     ], p=[("BOUNDARY", "alt-1")]))

# 04: mixed with an attachment carrying id, description, disposition.
p1 = "See attached."
p2 = "JVBERi0xLjQKJcfsj6IK"
case("04-attachment", crlf("""From: sender@example.com
To: rcpt@example.com
Subject: report
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=XYZ

--XYZ
Content-Type: text/plain; charset=us-ascii

""") + p1 + crlf("""
--XYZ
Content-Type: application/pdf; name="report.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="report.pdf"; size=12
Content-ID: <part2@example.com>
Content-Description: Quarterly report

""") + p2 + crlf("\n--XYZ--\n"),
     env(None, "report", [A(None, "sender", "example.com")], to=[A(None, "rcpt", "example.com")]),
     Multi("MIXED", [
         plain(p1, p=[("CHARSET", "us-ascii")]),
         Leaf("APPLICATION", "PDF", p2, p=[("NAME", "report.pdf")], id="<part2@example.com>",
              desc="Quarterly report", enc="BASE64",
              d=("ATTACHMENT", [("FILENAME", "report.pdf"), ("SIZE", "12")])),
     ], p=[("BOUNDARY", "XYZ")]))

# 05: nested multiparts three levels deep.
t1 = "Plain version"
h1 = "<p>HTML <img src=\"cid:img1\"></p>"
i1 = "iVBORw0KGgo="
a1 = "attachment data"
raw = crlf("""From: n@example.com
Subject: nested
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8

""") + t1 + crlf("""
--alt
Content-Type: multipart/related; boundary="rel"; type="text/html"

--rel
Content-Type: text/html; charset=utf-8

""") + h1 + crlf("""
--rel
Content-Type: image/png
Content-Transfer-Encoding: base64
Content-ID: <img1>
Content-Disposition: inline

""") + i1 + crlf("""
--rel--
--alt--
--outer
Content-Type: application/octet-stream
Content-Disposition: attachment; filename=data.bin

""") + a1 + crlf("\n--outer--\n")
case("05-nested", raw, env(None, "nested", [A(None, "n", "example.com")]),
     Multi("MIXED", [
         Multi("ALTERNATIVE", [
             plain(t1, p=[("CHARSET", "utf-8")]),
             Multi("RELATED", [
                 Leaf("TEXT", "HTML", h1, p=[("CHARSET", "utf-8")]),
                 Leaf("IMAGE", "PNG", i1, p=None, id="<img1>", enc="BASE64", d=("INLINE", [])),
             ], p=[("BOUNDARY", "rel"), ("TYPE", "text/html")]),
         ], p=[("BOUNDARY", "alt")]),
         Leaf("APPLICATION", "OCTET-STREAM", a1, d=("ATTACHMENT", [("FILENAME", "data.bin")])),
     ], p=[("BOUNDARY", "outer")]))

# 06: message/rfc822 inside multipart/mixed.
ibody = "Inner body"
inner = crlf("""From: Inner <inner@example.org>
To: x@y.example
Subject: inner subject
Date: Wed, 2 Jan 2019 11:00:00 +0100
Message-ID: <inner@example.org>

""") + ibody
p1 = "Forwarding."
case("06-message-rfc822", crlf("""From: outer@example.org
Subject: Fwd: inner subject
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="fwd"

--fwd
Content-Type: text/plain

""") + p1 + crlf("""
--fwd
Content-Type: message/rfc822
Content-Disposition: inline

""") + inner + crlf("\n--fwd--\n"),
     env(None, "Fwd: inner subject", [A(None, "outer", "example.org")]),
     Multi("MIXED", [
         plain(p1),
         Leaf("MESSAGE", "RFC822", inner, d=("INLINE", []),
              env=env("Wed, 2 Jan 2019 11:00:00 +0100", "inner subject",
                      [A("Inner", "inner", "example.org")], to=[A(None, "x", "y.example")],
                      mid="<inner@example.org>"),
              inner=plain(ibody)),
     ], p=[("BOUNDARY", "fwd")]))

# 07: multipart/digest: parts without Content-Type are message/rfc822 (RFC 2046 §5.1.5).
d1 = crlf("From: a@b.example\nSubject: one\n\nFirst")
d2 = "not a message"
d3 = crlf("Subject: three\n\nThird")
case("07-digest", crlf("""From: list@example.com
Subject: Digest
MIME-Version: 1.0
Content-Type: multipart/digest; boundary="dig"

--dig

""") + d1 + crlf("""
--dig
Content-Type: text/plain

""") + d2 + crlf("""
--dig

""") + d3 + crlf("\n--dig--\n"),
     env(None, "Digest", [A(None, "list", "example.com")]),
     Multi("DIGEST", [
         Leaf("MESSAGE", "RFC822", d1, p=None,
              env=env(None, "one", [A(None, "a", "b.example")]),
              inner=plain("First")),
         plain(d2),
         Leaf("MESSAGE", "RFC822", d3, p=None, env=env(None, "three"), inner=plain("Third")),
     ], p=[("BOUNDARY", "dig")]))

# 08: RFC 2047 words stay encoded in ENVELOPE (RFC 2047 §2 examples).
b = "body"
case("08-rfc2047", crlf("""From: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>
To: =?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>
CC: =?ISO-8859-1?Q?Olle_J=E4rnefors?= <ojarnef@admin.kth.se>
Subject: =?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=
 =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=
MIME-Version: 1.0
Content-Type: text/plain; charset=ISO-8859-1

""") + b,
     env(None, "=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?= =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=",
         [A("=?ISO-8859-1?Q?Andr=E9?= Pirard", "PIRARD", "vm1.ulg.ac.be")],
         to=[A("=?US-ASCII?Q?Keith_Moore?=", "moore", "cs.utk.edu")],
         cc=[A("=?ISO-8859-1?Q?Olle_J=E4rnefors?=", "ojarnef", "admin.kth.se")]),
     plain(b, p=[("CHARSET", "ISO-8859-1")]))

# 09: RFC 2231 charset + continuations: merged into one extended parameter.
p1 = "rates"
case("09-rfc2231-charset", crlf("""From: x@example.com
Subject: 2231
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain; name*=iso-8859-1'en'%E9t%E9.txt
Content-Disposition: attachment;
 filename*0*=utf-8''%E2%82%AC%20rates;
 filename*1*=%20for%20;
 filename*2="2024.txt"

""") + p1 + crlf("\n--b--\n"),
     env(None, "2231", [A(None, "x", "example.com")]),
     Multi("MIXED", [
         plain(p1, p=[("NAME*", "iso-8859-1'en'%E9t%E9.txt"), ("CHARSET", "us-ascii")],
               d=("ATTACHMENT", [("FILENAME*", "utf-8''%E2%82%AC%20rates%20for%202024.txt")])),
     ], p=[("BOUNDARY", "b")]))

# 10: RFC 2231 continuations without charset, out of order.
b = "0123456789"
case("10-rfc2231-plain", crlf("""From: x@example.com
Subject: cont
MIME-Version: 1.0
Content-Type: application/octet-stream;
 name*1="file name.bin";
 name*0="very long "
Content-Transfer-Encoding: binary

""") + b,
     env(None, "cont", [A(None, "x", "example.com")]),
     Leaf("APPLICATION", "OCTET-STREAM", b, p=[("NAME", "very long file name.bin")], enc="BINARY"))

# 11: multipart without MIME-Version is still MIME (as deployed servers treat it).
p1 = "one"
p2 = "two"
case("11-no-mime-version", crlf("""From: x@example.com
Subject: no version
Content-Type: multipart/mixed; boundary="nv"

--nv

""") + p1 + crlf("\n--nv\nContent-Type: text/plain; charset=utf-8\n\n") + p2 + crlf("\n--nv--\n"),
     env(None, "no version", [A(None, "x", "example.com")]),
     Multi("MIXED", [plain(p1), plain(p2, p=[("CHARSET", "utf-8")])], p=[("BOUNDARY", "nv")]))

# 12: malformed header lines: no colon (ignored), blank before colon, empty To, bad param.
b = crlf("body\n")
case("12-malformed-headers", crlf("""From: a@b.example
This line has no colon
Subject : spaced colon
To:
Content-Type: text/plain; charset
X-Broken: =?utf-8?q?unterminated

""") + b,
     env(None, "spaced colon", [A(None, "a", "b.example")]),
     plain(b))

# 13: header only, no blank line and no body.
case("13-header-only", crlf("From: a@b.example\nSubject: no body\n"),
     env(None, "no body", [A(None, "a", "b.example")]),
     plain(""))

# 14: blank line then nothing.
case("14-empty-body", crlf("From: a@b.example\nSubject: empty\n\n"),
     env(None, "empty", [A(None, "a", "b.example")]),
     plain(""))

# 15: bare LF line endings throughout; sizes are the stored octets.
p1 = "first\npart"
p2 = "second"
case("15-bare-lf", ("From: lf@example.com\nSubject: bare LF\nMIME-Version: 1.0\n"
                    "Content-Type: multipart/mixed; boundary=lf\n\n--lf\nContent-Type: text/plain\n\n"
                    + p1 + "\n--lf\n\n" + p2 + "\n--lf--\n"),
     env(None, "bare LF", [A(None, "lf", "example.com")]),
     Multi("MIXED", [plain(p1), plain(p2)], p=[("BOUNDARY", "lf")]))

# 16: raw UTF-8 in headers (RFC 6532): sent as literals.
b = "Hallo"
case("16-utf8-headers", crlf("""From: Jürgen Müller <juergen@example.de>
To: ÄÖÜ <umlaut@example.de>
Subject: Grüße aus Köln
Content-Type: text/plain; charset=utf-8

""") + b,
     env(None, "Grüße aus Köln", [A("Jürgen Müller", "juergen", "example.de")],
         to=[A("ÄÖÜ", "umlaut", "example.de")]),
     plain(b, p=[("CHARSET", "utf-8")]))

# 17: groups (RFC 5322 §3.4), including an empty group.
b = "x"
case("17-groups", crlf("""From: a@example.com
To: undisclosed-recipients:;
Cc: Friends: ann@a.example, "Bob B" <bob@b.example>;, carl@c.example
Bcc: Hidden:;
Subject: groups

""") + b,
     env(None, "groups", [A(None, "a", "example.com")],
         to=[GS("undisclosed-recipients"), GE],
         cc=[GS("Friends"), A(None, "ann", "a.example"), A("Bob B", "bob", "b.example"), GE,
             A(None, "carl", "c.example")],
         bcc=[GS("Hidden"), GE]),
     plain(b))

# 18: long folded header lines: unfolding removes the line breaks, keeps the blanks.
addrs = ["user%02d@example.com" % i for i in range(20)]
to_hdr = "To: " + ",\n\t".join(addrs)
b = "long"
case("18-long-headers", crlf("From: a@example.com\n" + to_hdr + "\nSubject: This is a very long subject\n\tthat continues here\n  and ends here\n\n") + b,
     env(None, "This is a very long subject\tthat continues here  and ends here",
         [A(None, "a", "example.com")], to=[A(None, a.split("@")[0], "example.com") for a in addrs]),
     plain(b))

# 19: base64 and QP text parts with line counts.
p1 = crlf("SGVsbG8gd29ybGQK\nSGVsbG8gYWdhaW4K")
p2 = crlf("a=3Db\nc=\nd\n")
case("19-encodings", crlf("""From: a@example.com
Subject: enc
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="=_b"

--=_b
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: Base64

""") + p1 + crlf("""
--=_b
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: quoted-printable

""") + p2 + crlf("\n--=_b--\n"),
     env(None, "enc", [A(None, "a", "example.com")]),
     Multi("MIXED", [
         plain(p1, p=[("CHARSET", "us-ascii")], enc="BASE64"),
         plain(p2, p=[("CHARSET", "us-ascii")], enc="QUOTED-PRINTABLE"),
     ], p=[("BOUNDARY", "=_b")]))

# 20: Sender and Reply-To differ from From.
b = "x"
case("20-sender-reply-to", crlf("""From: Boss <boss@example.com>
Sender: Secretary <sec@example.com>
Reply-To: team@example.com, Boss <boss@example.com>
To: all@example.com
Subject: memo

""") + b,
     env(None, "memo", [A("Boss", "boss", "example.com")],
         sender=[A("Secretary", "sec", "example.com")],
         reply=[A(None, "team", "example.com"), A("Boss", "boss", "example.com")],
         to=[A(None, "all", "example.com")]),
     plain(b))

# 21: empty Reply-To and blank Sender default to From (RFC 3501 §7.4.2).
case("21-empty-reply-to", crlf("From: me@example.com\nSender:   \nReply-To:\nSubject: defaults\n\nx"),
     env(None, "defaults", [A(None, "me", "example.com")]),
     plain("x"))

# 22: quoted display names with escapes and commas; quoted local part.
case("22-quoted-names", crlf("""From: "Doe, \\"JD\\" John" <jd@example.com>
To: "john smith"@example.com, "" <empty@example.com>
Subject: quotes

x"""),
     env(None, "quotes", [A('Doe, "JD" John', "jd", "example.com")],
         to=[A(None, '"john smith"', "example.com"), A(None, "empty", "example.com")]),
     plain("x"))

# 23: comment as display name, obsolete source route, domain literal.
case("23-comments-route", crlf("""From: jsmith@example.com (John Smith)
To: <@relay1.example,@relay2.example:bob@example.net>
Cc: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>, root@[192.0.2.1]
Subject: routes

x"""),
     env(None, "routes", [A("John Smith", "jsmith", "example.com")],
         to=[A(None, "bob", "example.net", adl="@relay1.example,@relay2.example")],
         cc=[A("Pete", "pete", "silly.test"), A(None, "root", "[192.0.2.1]")]),
     plain("x"))

# 24: folded In-Reply-To and Message-ID.
case("24-ids", crlf("""From: a@example.com
Subject: Re: ids
In-Reply-To: <first@example.com>
 <second@example.com>
Message-ID:
 <reply@example.com>
References: <first@example.com>

x"""),
     env(None, "Re: ids", [A(None, "a", "example.com")],
         irt="<first@example.com> <second@example.com>", mid="<reply@example.com>"),
     plain("x"))

# 25: extension data: language, location, MD5, disposition on a multipart.
p1 = "Bonjour"
case("25-extension-data", crlf("""From: a@example.com
Subject: ext
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=e; charset=ignored
Content-Disposition: inline
Content-Language: fr, en-CA
Content-Location: http://example.com/all

--e
Content-Type: text/plain; charset=utf-8
Content-Language: fr
Content-Location: http://example.com/fr.txt
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==
Content-Description: French text

""") + p1 + crlf("\n--e--\n"),
     env(None, "ext", [A(None, "a", "example.com")]),
     Multi("MIXED", [
         plain(p1, p=[("CHARSET", "utf-8")], desc="French text", md5="Q2hlY2sgSW50ZWdyaXR5IQ==",
               lg="fr", loc="http://example.com/fr.txt"),
     ], p=[("BOUNDARY", "e"), ("CHARSET", "ignored")], d=("INLINE", []), lg=["fr", "en-CA"],
         loc="http://example.com/all"))

# 26: preamble, epilogue and transport padding after delimiters.
p1 = "part one"
p2 = crlf("part two\n")
case("26-preamble-epilogue", crlf("""From: a@example.com
Subject: pre
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=pp

This is the preamble.
--pp not a delimiter line
--pp   \t
""") + crlf("\n") + p1 + crlf("\n--pp\n\n") + p2 + crlf("\n--pp--   \nThis is the epilogue.\n--pp\nstill epilogue\n"),
     env(None, "pre", [A(None, "a", "example.com")]),
     Multi("MIXED", [plain(p1), plain(p2)], p=[("BOUNDARY", "pp")]))

# 27: missing close delimiter: the last part runs to the end of the message.
p1 = "one"
p2 = crlf("two\nand the rest\n")
case("27-no-close-delimiter", crlf("""From: a@example.com
Subject: unclosed
Content-Type: multipart/mixed; boundary=u

--u

""") + p1 + crlf("\n--u\n\n") + p2,
     env(None, "unclosed", [A(None, "a", "example.com")]),
     Multi("MIXED", [plain(p1), plain(p2)], p=[("BOUNDARY", "u")]))

# 28: multipart without boundary cannot be split: treated as the default text/plain.
b = crlf("--x\n\nbody\n")
case("28-no-boundary", crlf("From: a@example.com\nSubject: nb\nContent-Type: multipart/mixed\n\n") + b,
     env(None, "nb", [A(None, "a", "example.com")]),
     plain(b))

# 29: message/rfc822 whose body is itself multipart.
i1 = "inner text"
i2 = "aW5uZXI="
inner = crlf("""From: in@example.com
Subject: inner multi
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=in

--in
Content-Type: text/plain; charset=utf-8

""") + i1 + crlf("""
--in
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

""") + i2 + crlf("\n--in--\n")
case("29-rfc822-multipart", crlf("""From: out@example.com
Subject: carrier
MIME-Version: 1.0
Content-Type: message/rfc822

""") + inner,
     env(None, "carrier", [A(None, "out", "example.com")]),
     Leaf("MESSAGE", "RFC822", inner, p=None,
          env=env(None, "inner multi", [A(None, "in", "example.com")]),
          inner=Multi("MIXED", [plain(i1, p=[("CHARSET", "utf-8")]),
                                Leaf("APPLICATION", "OCTET-STREAM", i2, enc="BASE64")],
                      p=[("BOUNDARY", "in")])))

# 30: comments and odd case in Content-Type, quoted ';' in a parameter.
b = "<p>x</p>"
case("30-ct-comments", crlf("""From: a@example.com
Subject: ct
Content-Type: Text/HTML (a comment); Charset="ISO-8859-1" (more);
  name="a;b.html"
Content-Transfer-Encoding: 8Bit (why not)

""") + b,
     env(None, "ct", [A(None, "a", "example.com")]),
     Leaf("TEXT", "HTML", b, p=[("CHARSET", "ISO-8859-1"), ("NAME", "a;b.html")], enc="8BIT"))

# 31: quotes and backslashes in a subject are escaped in the quoted string.
case("31-subject-escapes", crlf('From: a@example.com\nSubject: say "hi" \\o/\n\nx'),
     env(None, 'say "hi" \\o/', [A(None, "a", "example.com")]),
     plain("x"))

# 32: no From and no Date: NIL, and Sender/Reply-To stay NIL too.
case("32-no-from", crlf("To: b@example.com\nSubject: anonymous\n\nx"),
     env(None, "anonymous", to=[A(None, "b", "example.com")]),
     plain("x"))

# 33: Content-Type without subtype is invalid: default applies (RFC 2045 §5.2).
case("33-invalid-ct", crlf("From: a@example.com\nSubject: bad ct\nContent-Type: text\n\nx"),
     env(None, "bad ct", [A(None, "a", "example.com")]),
     plain("x"))

# 34: the empty message.
case("34-empty", b"", env(), plain(""))

# 35: an inner boundary that extends the outer one is not the outer delimiter.
i1 = "inner one"
o2 = "outer two"
case("35-boundary-prefix", crlf("""From: a@example.com
Subject: prefix
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: multipart/alternative; boundary=b-inner

--b-inner

""") + i1 + crlf("""
--b-inner--
--b

""") + o2 + crlf("\n--b--\n"),
     env(None, "prefix", [A(None, "a", "example.com")]),
     Multi("MIXED", [Multi("ALTERNATIVE", [plain(i1)], p=[("BOUNDARY", "b-inner")]), plain(o2)],
           p=[("BOUNDARY", "b")]))

# 36: attached message with a disposition whose own header has no Content-Type and 8-bit text.
ib = "Grüße"
inner = crlf("From: Zoë <zoe@example.org>\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n\n") + ib
case("36-attached-message", crlf("""From: a@example.com
Subject: fwd
Content-Type: multipart/mixed; boundary=m

--m
Content-Type: message/rfc822; name="fwd.eml"
Content-Disposition: attachment; filename="fwd.eml"
Content-Transfer-Encoding: 8bit

""") + inner + crlf("\n--m--\n"),
     env(None, "fwd", [A(None, "a", "example.com")]),
     Multi("MIXED", [
         Leaf("MESSAGE", "RFC822", inner, p=[("NAME", "fwd.eml")], enc="8BIT",
              d=("ATTACHMENT", [("FILENAME", "fwd.eml")]),
              env=env(None, "=?utf-8?q?Gr=C3=BC=C3=9Fe?=", [A("Zoë", "zoe", "example.org")]),
              inner=plain(ib)),
     ], p=[("BOUNDARY", "m")]))

# 37: a non-UTF-8 (Latin-1) header byte: replaced by U+FFFD, sent as a literal.
case("37-latin1-header", b"From: a@example.com\r\nSubject: caf\xe9\r\n\r\nx",
     env(None, "caf\ufffd", [A(None, "a", "example.com")]),
     plain("x"))

# 38: odd address forms: null path, no domain, empty list items, unclosed angle bracket.
# A missing domain is "" rather than NIL, since a NIL host marks group syntax (RFC 9051 §7.5.2).
case("38-odd-addresses", crlf("""From: <>
To: root, , Joe <joe@example.com
Cc: ,
Subject: odd

x"""),
     env(None, "odd", [A(None, "", "")], to=[A(None, "root", ""), A("Joe", "joe", "example.com")]),
     plain("x"))

# 39: raw UTF-8 in a parameter value (sent by some mailers instead of RFC 2231): a literal.
b = "data"
case("39-utf8-param", crlf("""From: a@example.com
Subject: utf8 param
Content-Type: application/octet-stream; name="Übersicht.pdf"
Content-Disposition: attachment; filename="Übersicht.pdf"

""") + b,
     env(None, "utf8 param", [A(None, "a", "example.com")]),
     Leaf("APPLICATION", "OCTET-STREAM", b, p=[("NAME", "Übersicht.pdf")],
          d=("ATTACHMENT", [("FILENAME", "Übersicht.pdf")])))


def main():
    for name, raw, envelope, tree in CASES:
        base = os.path.join(OUT, name)
        with open(base + ".eml", "wb") as f:
            f.write(raw)
        with open(base + ".envelope", "wb") as f:
            f.write(envelope.encode())
        with open(base + ".bodystructure", "wb") as f:
            f.write(tree.render(True).encode())
        with open(base + ".body", "wb") as f:
            f.write(tree.render(False).encode())
    print("%d messages" % len(CASES))


main()
