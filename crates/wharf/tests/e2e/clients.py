#!/usr/bin/env python3
"""Real mail clients (smtplib, swaks, poplib, imaplib) driven by the cross-protocol tests.

Usage: clients.py COMMAND key=value ...

Every command talks to a `wharf serve` on 127.0.0.1 only. Each one checks what it saw and exits
non-zero with an AssertionError naming the observation when the server misbehaves; the Rust tests
in crates/wharf/tests/e2e_*.rs start and stop the server between commands.

Sent messages are written to `<dir>/sent/NN.eml` (exact bytes given to the client) and
`<dir>/sent/NN.env` (envelope sender) so later commands compare what they fetch against them.
"""

import base64
import imaplib
import os
import poplib
import random
import re
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time

HOST = "127.0.0.1"
RCPT = "bob@example.test"
SENDER = "alice@example.test"
SEARCH_WORD = "zephyr"
TIMEOUT = 30


def args():
    if len(sys.argv) < 2:
        sys.exit("usage: clients.py COMMAND key=value ...")
    kv = {}
    for a in sys.argv[2:]:
        k, _, v = a.partition("=")
        kv[k] = v
    return sys.argv[1], kv


def tls_context(cafile):
    # The server's certificate is the self-signed one `wharf serve` generated: trust exactly it.
    # It names mail.example.test, not 127.0.0.1, so the name check is off; the chain check is on.
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


# ---------------------------------------------------------------------------------------------
# The messages
# ---------------------------------------------------------------------------------------------


def crlf(text):
    """Joins lines with CRLF and ends with CRLF; `text` is str (UTF-8 encoded) or bytes."""
    if isinstance(text, str):
        text = text.encode("utf-8")
    lines = text.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"\r\n".join(lines) + b"\r\n"


def headers(n, subject, frm, extra=""):
    return (
        f"From: {frm}\n"
        f"To: Bob <{RCPT}>\n"
        f"Subject: {subject}\n"
        f"Date: Sat, 28 Nov 2026 14:{n % 60:02d}:00 +0000\n"
        f"Message-ID: <e2e-{n:02d}@client.example.org>\n"
        f"{extra}"
    )


def b64_lines(data):
    enc = base64.b64encode(data).decode("ascii")
    return "\n".join(enc[i : i + 76] for i in range(0, len(enc), 76))


def messages():
    """20 messages: (route, envelope sender, bytes, smtplib mail options).

    Routes: `sub` = submission 587 with STARTTLS + AUTH, `subs` = submissions 465 implicit TLS +
    AUTH, `mx` = port 25 plaintext, `mxtls` = port 25 with STARTTLS, `swaks` = swaks on port 25
    with STARTTLS. Submission messages come from alice (the authenticated account)."""
    rnd = random.Random(20261128)
    out = []
    alice = f"Alice <{SENDER}>"
    carol = "Carol <carol@remote.example.org>"

    def add(route, body, opts=()):
        frm = SENDER if route in ("sub", "subs") else "carol@remote.example.org"
        out.append((route, frm, body, list(opts)))

    # 1 plain ASCII
    add("sub", crlf(headers(1, f"Plain hello {SEARCH_WORD}", alice) + "\nHello Bob,\nplain text.\n"))
    # 2 multipart with a binary attachment
    blob = bytes(rnd.getrandbits(8) for _ in range(12000))
    add(
        "sub",
        crlf(
            headers(2, "Report attached", alice, 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b1-e2e"\n')
            + "\nThis is a multi-part message in MIME format.\n--b1-e2e\n"
            "Content-Type: text/plain; charset=us-ascii\n\nSee the attachment.\n"
            "--b1-e2e\nContent-Type: application/octet-stream; name=\"data.bin\"\n"
            "Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"data.bin\"\n\n"
            + b64_lines(blob)
            + "\n--b1-e2e--\n"
        ),
    )
    # 3 8-bit UTF-8 body
    add(
        "sub",
        crlf(
            headers(3, "Unicode body", alice, "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n")
            + "\nGrüße aus Köln, naïve café, 日本語のテキスト, emoji 🚢⚓.\nΣὲ γνωρίζω ἀπὸ τὴν κόψη.\n"
        ),
        ["BODY=8BITMIME"],
    )
    # 4 RFC 2047 encoded headers
    add(
        "sub",
        crlf(
            headers(
                4,
                "=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?= =?ISO-8859-1?Q?caf=E9?=",
                "=?UTF-8?Q?Alic=C3=A9_L=C3=B8vgren?= <alice@example.test>",
                "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n",
            )
            + f"\nThe word {SEARCH_WORD} in the body must not match SUBJECT searches.\n"
        ),
    )
    # 5 long lines: 998 octets and 997 octets, the most RFC 5322 allows
    add(
        "sub",
        crlf(headers(5, "Long lines", alice) + "\n" + "x" * 998 + "\n" + "".join(chr(97 + i % 26) for i in range(997)) + "\nend\n"),
    )
    # 6 lines starting with dots (dot-stuffing both ways)
    add("sub", crlf(headers(6, f"Dots and {SEARCH_WORD}", alice) + "\n.\n..\n.hidden\n...three\nlast\n"))
    # 7 multipart/alternative, quoted-printable
    add(
        "subs",
        crlf(
            headers(7, "Alternative", alice, 'MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="alt-7"\n')
            + "\n--alt-7\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
            "Caf=C3=A9 soft line=\n break\n--alt-7\nContent-Type: text/html; charset=utf-8\n"
            "Content-Transfer-Encoding: quoted-printable\n\n<p>Caf=C3=A9</p>\n--alt-7--\n"
        ),
    )
    # 8 folded headers, many of them
    add(
        "subs",
        crlf(
            headers(8, "Folded\n header that goes on", alice, "".join(f"X-Trace-{i}: value {i}\n\tcontinued {i}\n" for i in range(30)))
            + "\nbody\n"
        ),
    )
    # 9 a larger message (~300 KB of text)
    big = "\n".join(f"line {i:06d} " + "lorem ipsum dolor sit amet " * 2 for i in range(5000))
    add("subs", crlf(headers(9, "Big one", alice) + "\n" + big + "\n"))
    # 10 raw UTF-8 header fields (RFC 6532) with SMTPUTF8
    add(
        "mx",
        crlf(headers(10, "Grüße ohne Kodierung", "Jörg <carol@remote.example.org>", "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n") + "\nÜmlaut body.\n"),
        ["SMTPUTF8", "BODY=8BITMIME"],
    )
    # 11 empty body
    add("mx", crlf(headers(11, "Empty body", carol) + "\n"))
    # 12 plain over port 25
    add("mx", crlf(headers(12, f"From afar {SEARCH_WORD}", carol) + "\nHi from a remote server.\n"))
    # 13 nested multipart with an inline image
    png = bytes(rnd.getrandbits(8) for _ in range(3000))
    add(
        "mxtls",
        crlf(
            headers(13, "Nested", carol, 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="outer"\n')
            + '\n--outer\nContent-Type: multipart/related; boundary="inner"\n\n--inner\n'
            "Content-Type: text/html; charset=us-ascii\n\n<img src=\"cid:i1\">\n--inner\n"
            "Content-Type: image/png\nContent-ID: <i1>\nContent-Transfer-Encoding: base64\n\n"
            + b64_lines(png)
            + "\n--inner--\n--outer\nContent-Type: message/rfc822\n\n"
            "From: x@remote.example.org\nSubject: inner\n\ninner body\n--outer--\n"
        ),
    )
    # 14 8-bit Latin-1 body (not UTF-8 at all)
    add(
        "mxtls",
        crlf(headers(14, "Latin-1", carol, "MIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n").encode("ascii") + b"\nCaf\xe9 cr\xe8me br\xfbl\xe9e\n"),
        ["BODY=8BITMIME"],
    )
    # 15 long header line near the limit
    add("mxtls", crlf(headers(15, "Long header", carol, "X-Long: " + "y" * 988 + "\n") + "\nbody\n"))
    # 16 whitespace at line ends and tabs (must survive)
    add("sub", crlf(headers(16, "Whitespace", alice) + "\ntrailing spaces   \n\tindented\n \n\nafter blank lines\n"))
    # 17-20 swaks on port 25 with STARTTLS
    for n, subj, body in [
        (17, "swaks one", "hello from swaks\n"),
        (18, f"swaks {SEARCH_WORD} two", "second\n.dot line\n"),
        (19, "swaks three", "third\n" * 50),
        (20, "swaks four", "fourth " + "z" * 900 + "\n"),
    ]:
        add("swaks", crlf(headers(n, subj, carol) + "\n" + body))
    assert len(out) == 20, len(out)
    return out


def subject_word_numbers():
    """Message numbers (1-based) whose Subject contains SEARCH_WORD."""
    return [i + 1 for i, (_, _, body, _) in enumerate(messages()) if re.search(rb"^Subject:[^\r]*" + SEARCH_WORD.encode(), body, re.M)]


# ---------------------------------------------------------------------------------------------
# Sending
# ---------------------------------------------------------------------------------------------


def smtp_send(route, envfrom, body, opts, kv, ctx):
    if route == "sub":
        s = smtplib.SMTP(HOST, int(kv["submission"]), timeout=TIMEOUT)
        s.ehlo("client.example.org")
        s.starttls(context=ctx)
        s.ehlo("client.example.org")
        s.login(kv["user"], kv["password"])
    elif route == "subs":
        s = smtplib.SMTP_SSL(HOST, int(kv["submissions"]), timeout=TIMEOUT, context=ctx)
        s.ehlo("client.example.org")
        s.login(kv["user"], kv["password"])
    elif route in ("mx", "mxtls"):
        s = smtplib.SMTP(HOST, int(kv["smtp"]), timeout=TIMEOUT)
        s.ehlo("mx.remote.example.org")
        if route == "mxtls":
            s.starttls(context=ctx)
            s.ehlo("mx.remote.example.org")
    else:
        raise ValueError(route)
    refused = s.sendmail(envfrom, [RCPT], body, mail_options=opts)
    assert not refused, refused
    s.quit()


def swaks_send(envfrom, path, kv):
    out = subprocess.run(
        [
            "swaks", "--server", f"{HOST}:{kv['smtp']}", "--ehlo", "mx.remote.example.org",
            "--from", envfrom, "--to", RCPT, "--tls", "--data", "@" + path,
            "--timeout", str(TIMEOUT),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, f"swaks failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
    # The transcript must show the 250 after the final dot.
    assert re.search(r"^<~? +250 ", out.stdout.split("~> .")[-1], re.M), out.stdout


def cmd_send(kv):
    """Sends all 20 messages, one connection each, in order; records them under dir/sent."""
    ctx = tls_context(kv["cafile"])
    sent = os.path.join(kv["dir"], "sent")
    os.makedirs(sent, exist_ok=True)
    for i, (route, envfrom, body, opts) in enumerate(messages(), 1):
        path = os.path.join(sent, f"{i:02d}.eml")
        with open(path, "wb") as f:
            f.write(body)
        with open(os.path.join(sent, f"{i:02d}.env"), "w") as f:
            f.write(envfrom)
        if route == "swaks":
            # swaks always puts a line break before the final dot, so the content it sends is
            # its input plus CRLF: give it the message without its last CRLF.
            assert body.endswith(b"\r\n")
            with open(path + ".swaks", "wb") as f:
                f.write(body[:-2])
            swaks_send(envfrom, path + ".swaks", kv)
        else:
            smtp_send(route, envfrom, body, opts, kv, ctx)
    print("sent 20")


def load_sent(d):
    sent = os.path.join(d, "sent")
    out = {}
    for name in sorted(os.listdir(sent)):
        if name.endswith(".eml"):
            n = int(name[:2])
            with open(os.path.join(sent, name), "rb") as f:
                body = f.read()
            with open(os.path.join(sent, f"{n:02d}.env")) as f:
                env = f.read()
            out[n] = (body, env)
    return out


def message_id(raw):
    m = re.search(rb"^Message-ID:\s*(<[^>\r\n]+>)", raw, re.M | re.I)
    return m.group(1).decode() if m else None


def strip_trace(raw, envfrom, what):
    """Checks the two trace fields Wharf prepends (RFC 5321 §4.4) and returns what follows."""
    first, sep, rest = raw.partition(b"\r\n")
    assert sep and first == f"Return-Path: <{envfrom}>".encode(), f"{what}: first line {first[:200]!r}"
    # Mail from port 25 carries the spam filter's verdict (ours, above our Received).
    spam = []
    while rest.startswith((b"X-Spam-Status: ", b"X-Spam-Score: ")):
        line, sep, rest = rest.partition(b"\r\n")
        spam.append(line)
        while rest[:1] in (b" ", b"\t"):
            line, sep, rest = rest.partition(b"\r\n")
    assert len(spam) in (0, 2), f"{what}: spam verdict {spam!r}"
    assert rest.startswith(b"Received: "), f"{what}: no Received after Return-Path: {rest[:200]!r}"
    line, sep, rest = rest.partition(b"\r\n")
    received = [line]
    while rest[:1] in (b" ", b"\t"):
        line, sep, rest = rest.partition(b"\r\n")
        received.append(line)
    rec = b"\r\n".join(received)
    assert b"mail.example.test" in rec and b"(Wharf)" in rec, f"{what}: Received {rec!r}"
    return rest


def compare_all(d, fetched, what):
    """fetched: list of raw messages. Each sent message must be there once, byte for byte."""
    sent = load_sent(d)
    by_id = {}
    for raw in fetched:
        mid = message_id(raw)
        assert mid, f"{what}: fetched message without Message-ID: {raw[:300]!r}"
        assert mid not in by_id, f"{what}: {mid} fetched twice"
        by_id[mid] = raw
    assert len(fetched) == len(sent), f"{what}: fetched {len(fetched)} messages, sent {len(sent)}"
    for n, (body, env) in sent.items():
        mid = message_id(body)
        assert mid in by_id, f"{what}: message {n} {mid} missing; have {sorted(by_id)}"
        got = strip_trace(by_id[mid], env, f"{what} message {n}")
        if got != body:
            i = next((k for k in range(min(len(got), len(body))) if got[k] != body[k]), min(len(got), len(body)))
            raise AssertionError(
                f"{what}: message {n} differs at octet {i} (sent {len(body)}, got {len(got)} after trace): "
                f"sent {body[max(0, i - 40):i + 40]!r} got {got[max(0, i - 40):i + 40]!r}"
            )


# ---------------------------------------------------------------------------------------------
# POP3
# ---------------------------------------------------------------------------------------------


def pop3_login(kv, ctx):
    if kv["mode"] == "ssl":
        p = poplib.POP3_SSL(HOST, int(kv["port"]), timeout=TIMEOUT, context=ctx)
    else:
        p = poplib.POP3(HOST, int(kv["port"]), timeout=TIMEOUT)
        caps = p.capa()
        assert "STLS" in caps, caps
        p.stls(context=ctx)
    p.user(kv["user"])
    p.pass_(kv["password"])
    return p


def pop3_uidl(p):
    resp, lines, _ = p.uidl()
    out = []
    for l in lines:
        num, uid = l.decode().split()
        out.append((int(num), uid))
    return out


def cmd_pop3(kv):
    """Downloads every message, compares with what was sent; optionally saves/compares UIDLs,
    and with dele=all deletes everything and checks a new session finds the drop empty."""
    ctx = tls_context(kv["cafile"])
    p = pop3_login(kv, ctx)
    count, total = p.stat()
    uidl = pop3_uidl(p)
    assert [n for n, _ in uidl] == list(range(1, count + 1)), uidl
    assert len({u for _, u in uidl}) == count, f"UIDLs not unique: {uidl}"
    _, listing, _ = p.list()
    sizes = {int(a): int(b) for a, b in (l.split() for l in listing)}
    fetched = []
    for n in range(1, count + 1):
        resp, lines, octets = p.retr(n)
        raw = b"\r\n".join(lines) + b"\r\n"
        # LIST size is the exact octet count RETR sends before dot-stuffing (docs/pop3.md).
        assert sizes[n] == len(raw), f"message {n}: LIST {sizes[n]}, RETR {len(raw)}"
        fetched.append(raw)
    assert total == sum(sizes.values()), (total, sizes)
    compare_all(kv["dir"], fetched, f"POP3 {kv['mode']}")
    if "save_uidl" in kv:
        with open(kv["save_uidl"], "w") as f:
            f.write("\n".join(f"{n} {u}" for n, u in uidl))
    if "expect_uidl" in kv:
        with open(kv["expect_uidl"]) as f:
            before = [(int(a), b) for a, b in (l.split() for l in f.read().splitlines())]
        assert before == uidl, f"UIDL changed across restart:\nbefore {before}\nafter  {uidl}"
    if kv.get("dele") == "all":
        for n in range(1, count + 1):
            p.dele(n)
        # RFC 1939: deleted messages are hidden for the rest of the session.
        c2, _ = p.stat()
        assert c2 == 0, f"STAT after DELE of all: {c2}"
        p.quit()
        p = pop3_login(kv, ctx)
        c3, t3 = p.stat()
        assert (c3, t3) == (0, 0), f"after DELE+QUIT a new session sees {c3} messages"
        assert pop3_uidl(p) == []
        p.quit()
        print(f"pop3 {kv['mode']}: {count} messages identical, deleted")
    else:
        # Nothing marked for deletion (RSET), so QUIT's UPDATE state removes nothing: the next
        # session must find all 20 again.
        p.rset()
        p.quit()
        print(f"pop3 {kv['mode']}: {count} messages identical")


# ---------------------------------------------------------------------------------------------
# IMAP
# ---------------------------------------------------------------------------------------------


def imap_login(kv, ctx, port_key="port", mode_key="mode"):
    if kv[mode_key] == "ssl":
        m = imaplib.IMAP4_SSL(HOST, int(kv[port_key]), ssl_context=ctx, timeout=TIMEOUT)
    else:
        m = imaplib.IMAP4(HOST, int(kv[port_key]), timeout=TIMEOUT)
        assert "STARTTLS" in m.capabilities, m.capabilities
        typ, data = m.starttls(ssl_context=ctx)
        assert typ == "OK", data
    typ, data = m.login(kv["user"], kv["password"])
    assert typ == "OK", data
    return m


def ok(resp, what):
    typ, data = resp
    assert typ == "OK", f"{what}: {typ} {data}"
    return data


def fetch_uid_items(m, spec, item):
    """UID FETCH spec (item); returns {uid: literal bytes or parenthesised text}."""
    data = ok(m.uid("FETCH", spec, f"({item})"), f"UID FETCH {item}")
    out = {}
    for part in data:
        if isinstance(part, tuple):
            head, lit = part
            uid = re.search(rb"UID (\d+)", head)
            assert uid, head
            out[int(uid.group(1))] = lit
        elif part and part != b")":
            uid = re.search(rb"UID (\d+)", part)
            if uid:
                out[int(uid.group(1))] = part
    return out


def flags_of(text):
    m = re.search(rb"FLAGS \(([^)]*)\)", text)
    assert m, text
    return set(m.group(1).decode().split())


def cmd_imap(kv):
    """BODY.PEEK[] of every message equals what was sent; FLAGS; SEARCH SUBJECT; STORE."""
    ctx = tls_context(kv["cafile"])
    m = imap_login(kv, ctx)
    data = ok(m.select("INBOX"), "SELECT")
    exists = int(data[0])
    assert exists == 20, f"SELECT INBOX: {exists} EXISTS, want 20"
    bodies = fetch_uid_items(m, "1:*", "BODY.PEEK[]")
    assert len(bodies) == 20, sorted(bodies)
    uids = sorted(bodies)
    compare_all(kv["dir"], [bodies[u] for u in uids], f"IMAP {kv['mode']}")
    # Delivery order is UID order (the messages were sent one after the other).
    order = [int(re.match(r"<e2e-(\d+)@", message_id(bodies[u])).group(1)) for u in uids]
    assert order == list(range(1, 21)), f"UID order is not delivery order: {order}"
    sizes = fetch_uid_items(m, "1:*", "RFC822.SIZE")
    for u in uids:
        size = int(re.search(rb"RFC822.SIZE (\d+)", sizes[u]).group(1))
        assert size == len(bodies[u]), f"UID {u}: RFC822.SIZE {size}, BODY[] {len(bodies[u])} octets"
    # PEEK must not have set \Seen; new mail carries no flag but possibly \Recent (IMAP4rev1).
    flags = fetch_uid_items(m, "1:*", "FLAGS")
    for u in uids:
        f = flags_of(flags[u])
        assert f <= {"\\Recent"}, f"UID {u}: FLAGS {f} after BODY.PEEK"
    # SEARCH for a subject word finds exactly the messages whose Subject holds it.
    data = ok(m.uid("SEARCH", "SUBJECT", SEARCH_WORD), "UID SEARCH SUBJECT")
    found = sorted(int(x) for x in data[0].split())
    want = sorted(uids[n - 1] for n in subject_word_numbers())
    assert found == want, f"SEARCH SUBJECT {SEARCH_WORD}: {found}, want {want}"
    data = ok(m.uid("SEARCH", "SUBJECT", "Nested"), "UID SEARCH")
    assert [int(x) for x in data[0].split()] == [uids[12]], data
    # STORE and a non-peek fetch change flags, and FLAGS reports it.
    ok(m.uid("STORE", str(uids[0]), "+FLAGS", "(\\Flagged)"), "STORE")
    ok(m.uid("FETCH", str(uids[1]), "(BODY[])"), "FETCH BODY[]")
    flags = fetch_uid_items(m, f"{uids[0]}:{uids[1]}", "FLAGS")
    assert "\\Flagged" in flags_of(flags[uids[0]]) and "\\Seen" not in flags_of(flags[uids[0]]), flags
    assert "\\Seen" in flags_of(flags[uids[1]]), f"BODY[] did not set \\Seen: {flags[uids[1]]!r}"
    data = ok(m.uid("SEARCH", "SEEN"), "SEARCH SEEN")
    assert [int(x) for x in data[0].split()] == [uids[1]], data
    # Undo, so the next run (the other TLS mode) starts from the same state.
    ok(m.uid("STORE", f"{uids[0]}:{uids[1]}", "-FLAGS", "(\\Flagged \\Seen)"), "STORE -FLAGS")
    m.logout()
    print(f"imap {kv['mode']}: 20 messages identical, flags and search ok")


class Untagged:
    """A selected IMAP connection read line by line (imaplib has no IDLE in 3.11)."""

    def __init__(self, m):
        self.m = m

    def idle_start(self):
        self.m.send(b"I1 IDLE\r\n")
        line = self.m.readline()
        assert line.startswith(b"+"), f"IDLE: {line!r}"

    def wait_for(self, pattern, seconds):
        end = time.monotonic() + seconds
        seen = []
        sock = self.m.sock
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} within {seconds}s; saw {seen}")
            sock.settimeout(left)
            try:
                line = self.m.readline()
            except (socket.timeout, TimeoutError):
                raise AssertionError(f"no {pattern!r} within {seconds}s; saw {seen}")
            assert line, f"connection closed; saw {seen}"
            seen.append(line)
            if re.match(pattern, line):
                sock.settimeout(TIMEOUT)
                return line, seen

    def idle_done(self):
        self.m.send(b"DONE\r\n")
        line, seen = self.wait_for(rb"I1 ", 10)
        assert line.startswith(b"I1 OK"), line

    def command(self, tag, text):
        """Sends a command, returns (untagged lines, tagged line)."""
        self.m.send(f"{tag} {text}\r\n".encode())
        line, seen = self.wait_for(tag.encode() + rb" ", TIMEOUT)
        assert line.startswith(tag.encode() + b" OK"), f"{text}: {line!r}"
        return seen[:-1], line


def mx_deliver(port, n, subject):
    body = crlf(headers(n, subject, "carol@remote.example.org") + "\nlate arrival\n")
    s = smtplib.SMTP(HOST, int(port), timeout=TIMEOUT)
    s.ehlo("mx.remote.example.org")
    s.sendmail("carol@remote.example.org", [RCPT], body)
    s.quit()


def cmd_idle(kv):
    """An IMAP session in IDLE hears about an SMTP delivery as * n EXISTS within seconds."""
    ctx = tls_context(kv["cafile"])
    m = imap_login(kv, ctx)
    exists = int(ok(m.select("INBOX"), "SELECT")[0])
    u = Untagged(m)
    u.idle_start()
    t0 = time.monotonic()
    mx_deliver(kv["smtp"], 90, "idle wake-up")
    delivered = time.monotonic() - t0
    line, seen = u.wait_for(rb"\* \d+ EXISTS", 5)
    waited = time.monotonic() - t0
    assert int(line.split()[1]) == exists + 1, f"EXISTS {line!r}, before {exists}"
    u.idle_done()
    untagged, _ = u.command("I2", "UID FETCH * (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    assert any(b"<e2e-90@client.example.org>" in l for l in untagged), f"UID FETCH * after IDLE: {untagged}"
    m.logout()
    print(f"idle: EXISTS {waited - delivered:.3f}s after the 250 (delivery took {delivered:.3f}s)")


def cmd_pop3_dele_seen_by_imap(kv):
    """A message deleted over POP3 (DELE + QUIT) is expunged for an IMAP session that has
    INBOX selected: * n EXPUNGE arrives at its next command (RFC 9051 §7.5.1) and the message
    is gone from FETCH and SEARCH."""
    ctx = tls_context(kv["cafile"])
    m = imap_login(kv, ctx, "imap", "imap_mode")
    exists = int(ok(m.select("INBOX"), "SELECT")[0])
    assert exists >= 2, exists
    uids = sorted(fetch_uid_items(m, "1:*", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]").items())
    victim_uid, victim_hdr = uids[0]
    victim_id = message_id(victim_hdr)
    p = pop3_login({**kv, "port": kv["pop3"], "mode": kv["pop3_mode"]}, ctx)
    raw = b"\r\n".join(p.retr(1)[1]) + b"\r\n"
    assert message_id(raw) == victim_id, (message_id(raw), victim_id)
    p.dele(1)
    p.quit()
    u = Untagged(m)
    untagged, _ = u.command("D1", "NOOP")
    assert b"* 1 EXPUNGE\r\n" in untagged, f"NOOP after POP3 DELE+QUIT: {untagged}"
    untagged, _ = u.command("D2", "UID SEARCH ALL")
    search = [l for l in untagged if l.startswith(b"* SEARCH")]
    assert search and str(victim_uid).encode() not in search[0].split()[2:], search
    assert len(search[0].split()) - 2 == exists - 1, (search, exists)
    again = int(ok(m.select("INBOX"), "SELECT again")[0])
    assert again == exists - 1, f"SELECT after POP3 DELE: {again} EXISTS, before {exists}"
    m.logout()
    # A second POP3 session does not list it either.
    p = pop3_login({**kv, "port": kv["pop3"], "mode": kv["pop3_mode"]}, ctx)
    c, _ = p.stat()
    assert c == exists - 1, (c, exists)
    p.quit()
    print(f"pop3 DELE of {victim_id} seen by IMAP as * 1 EXPUNGE")


def cmd_imap_expunge_seen_by_pop3(kv):
    """A message expunged over IMAP is missing from a POP3 session opened afterwards, and one
    expunged while a POP3 session is open is answered -ERR by RETR (docs/pop3.md)."""
    ctx = tls_context(kv["cafile"])
    m = imap_login(kv, ctx, "imap", "imap_mode")
    exists = int(ok(m.select("INBOX"), "SELECT")[0])
    assert exists >= 3, exists
    items = sorted(fetch_uid_items(m, "1:*", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]").items())
    gone_uid, gone_hdr = items[1]
    gone_id = message_id(gone_hdr)
    ok(m.uid("STORE", str(gone_uid), "+FLAGS.SILENT", "(\\Deleted)"), "STORE \\Deleted")
    data = ok(m.expunge(), "EXPUNGE")
    assert data == [b"2"], f"EXPUNGE reported {data}, want [b'2']"
    p = pop3_login({**kv, "port": kv["pop3"], "mode": kv["pop3_mode"]}, ctx)
    c, _ = p.stat()
    assert c == exists - 1, f"POP3 STAT {c} after IMAP EXPUNGE, INBOX had {exists}"
    ids = [message_id(b"\r\n".join(p.top(n, 0)[1])) for n in range(1, c + 1)]
    assert gone_id not in ids, f"{gone_id} still listed by POP3: {ids}"
    # While this POP3 session holds its snapshot, IMAP expunges message 1 of it.
    first_uid, first_hdr = items[0]
    ok(m.uid("STORE", str(first_uid), "+FLAGS.SILENT", "(\\Deleted)"), "STORE \\Deleted")
    ok(m.expunge(), "EXPUNGE")
    try:
        p.retr(1)
        raise AssertionError("RETR of a message expunged by IMAP answered +OK")
    except poplib.error_proto as e:
        assert str(e).startswith("b'-ERR"), e
    # Other messages keep their numbers.
    raw = b"\r\n".join(p.retr(2)[1]) + b"\r\n"
    assert message_id(raw) == ids[1], (message_id(raw), ids)
    p.quit()
    # QUIT marks what RETR sent as \Seen (docs/pop3.md), and IMAP sees the flag.
    read_uid, unread_uid = items[2][0], items[3][0]
    assert message_id(items[2][1]) == ids[1]
    flags = fetch_uid_items(m, f"{read_uid}:{unread_uid}", "FLAGS")
    assert "\\Seen" in flags_of(flags[read_uid]), f"after POP3 RETR+QUIT: {flags[read_uid]!r}"
    assert "\\Seen" not in flags_of(flags[unread_uid]), f"never retrieved: {flags[unread_uid]!r}"
    m.logout()
    print(f"IMAP EXPUNGE of {gone_id} seen by POP3")


# ---------------------------------------------------------------------------------------------
# Crash test
# ---------------------------------------------------------------------------------------------


def cmd_blast(kv):
    """`clients` concurrent smtplib senders on port 25 until the server dies. Each message's
    Message-ID is appended to `acked` (and flushed) only after its 250; `tried` gets it before
    DATA. Exits 0 once every sender has stopped on a connection error."""
    port = int(kv["smtp"])
    clients = int(kv["clients"])
    # Message-IDs must be unique over every run against one data folder.
    run_id = kv.get("run") or os.urandom(6).hex()
    acked = open(kv["acked"], "a", buffering=1)
    tried = open(kv["tried"], "a", buffering=1)
    lock = threading.Lock()
    errors = []

    def run(c):
        seq = 0
        while True:
            try:
                s = smtplib.SMTP(HOST, port, timeout=TIMEOUT)
                s.ehlo("mx.remote.example.org")
                while True:
                    seq += 1
                    mid = f"<crash-{run_id}-{c}-{seq}@client.example.org>"
                    body = crlf(
                        f"From: carol@remote.example.org\nTo: {RCPT}\nSubject: crash {run_id} {c} {seq}\n"
                        f"Message-ID: {mid}\n\n" + f"client {c} message {seq}\n" * (1 + seq % 40)
                    )
                    with lock:
                        tried.write(mid + "\n")
                    s.sendmail("carol@remote.example.org", [RCPT], body)
                    with lock:
                        acked.write(mid + "\n")
                        acked.flush()
                    if seq % 10 == 0:
                        s.quit()
                        break
            except (OSError, smtplib.SMTPException) as e:
                if isinstance(e, smtplib.SMTPResponseException) and e.smtp_code // 100 == 4:
                    # A temporary refusal before the kill is not expected under this load.
                    with lock:
                        errors.append(f"client {c}: {e}")
                return

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        print("\n".join(errors), file=sys.stderr)
    print("senders stopped")


def cmd_seed(kv):
    """Delivers `n` small messages over port 25 (Message-ID <seed-i@...>)."""
    for i in range(1, int(kv["n"]) + 1):
        body = crlf(
            f"From: carol@remote.example.org\nTo: {RCPT}\nSubject: seed {i}\n"
            f"Message-ID: <seed-{i}@client.example.org>\n\nseed message {i}\n"
        )
        s = smtplib.SMTP(HOST, int(kv["smtp"]), timeout=TIMEOUT)
        s.sendmail("carol@remote.example.org", [RCPT], body)
        s.quit()
    print(f"seeded {kv['n']}")


def cmd_imap_ids(kv):
    """Writes the Message-ID of every INBOX message, one per line, in UID order."""
    ctx = tls_context(kv["cafile"])
    m = imap_login(kv, ctx)
    exists = int(ok(m.select("INBOX"), "SELECT")[0])
    ids = []
    if exists:
        items = fetch_uid_items(m, "1:*", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]")
        assert len(items) == exists, (len(items), exists)
        ids = [message_id(items[u]) or f"<none uid {u}>" for u in sorted(items)]
    m.logout()
    with open(kv["out"], "w") as f:
        f.write("".join(i + "\n" for i in ids))
    print(f"{len(ids)} messages")


COMMANDS = {
    "send": cmd_send,
    "pop3": cmd_pop3,
    "imap": cmd_imap,
    "idle": cmd_idle,
    "pop3_dele_seen_by_imap": cmd_pop3_dele_seen_by_imap,
    "imap_expunge_seen_by_pop3": cmd_imap_expunge_seen_by_pop3,
    "blast": cmd_blast,
    "seed": cmd_seed,
    "imap_ids": cmd_imap_ids,
}

if __name__ == "__main__":
    name, kv = args()
    COMMANDS[name](kv)
