"""End-to-end run by tests/e2e_clients.rs: MULTIAPPEND, CATENATE and SETQUOTA with Python's
imaplib over implicit TLS against a live Wharf IMAP service. imaplib sends one synchronising
literal per command (it waits for the continuation request); the other messages and text parts
go inline as LITERAL+ non-synchronising literals. The first account is an administrator, the
second is not. Exits non-zero on the first wrong answer."""
import imaplib
import re
import ssl
import sys

host = "127.0.0.1"
tls_port, cafile, admin, other, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]

ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False


def check(cond, what):
    if not cond:
        print("FAILED:", what, file=sys.stderr)
        sys.exit(1)


def lit(data):
    return b"{%d+}\r\n" % len(data) + data


m = imaplib.IMAP4_SSL(host, tls_port, ssl_context=ctx)
m.login(admin, password)
typ, data = m.capability()
caps = data[0].split()
for c in (b"MULTIAPPEND", b"CATENATE", b"QUOTASET", b"LITERAL+"):
    check(c in caps, (c, data))

# MULTIAPPEND: three messages, the last one a synchronising literal.
msgs = [
    b"From: a@example.org\r\nSubject: one\r\n\r\nfirst body\r\n",
    b"From: a@example.org\r\nSubject: two\r\n\r\nsecond body\r\n",
    b"From: a@example.org\r\nSubject: three\r\n\r\nthird body\r\n",
]
m.literal = msgs[2]
typ, data = m._simple_command(
    "APPEND", "INBOX", b"(\\Seen) " + lit(msgs[0]) + b' "05-Mar-2020 10:11:12 +0100" ' + lit(msgs[1]) + b" (\\Flagged)"
)
check(typ == "OK", (typ, data))
code = re.search(rb"APPENDUID (\d+) (\d+):(\d+)", data[0])
check(code is not None, data)
validity, first, last = (int(x) for x in code.groups())
check(last - first == 2, data)
typ, _ = m.select("INBOX")
typ, data = m.uid("FETCH", "%d:%d" % (first, last), "(FLAGS BODY.PEEK[])")
check(typ == "OK", data)
bodies = [d[1] for d in data if isinstance(d, tuple)]
check(bodies == msgs, bodies)
flags = [d[0] for d in data if isinstance(d, tuple)]
check(b"\\Seen" in flags[0] and b"\\Flagged" in flags[2], flags)

# CATENATE: a new header, then the text of the first message by URL, then a text part.
url = '"/INBOX;UIDVALIDITY=%d/;UID=%d/;SECTION=TEXT"' % (validity, first)
typ, data = m._simple_command(
    "APPEND", "Drafts", b"CATENATE (TEXT " + lit(b"Subject: built\r\n\r\n") + b" URL " + url.encode() + b" TEXT " + lit(b"-- \r\n") + b")"
)
check(typ == "OK" and b"APPENDUID" in data[0], (typ, data))
m.select("Drafts")
typ, data = m.fetch("1", "(BODY.PEEK[])")
check(data[0][1] == b"Subject: built\r\n\r\nfirst body\r\n-- \r\n", data)
# A URL that names nothing: BADURL, nothing stored, and with it the other message of the command.
typ, data = m._simple_command(
    "APPEND", "Drafts", lit(msgs[0]) + b' CATENATE (URL "/INBOX;UIDVALIDITY=%d/;UID=999")' % validity
)
check(typ == "NO" and b"[BADURL /INBOX;UIDVALIDITY=" in data[0], (typ, data))
typ, data = m.status("Drafts", "(MESSAGES)")
check(b"MESSAGES 1" in data[0], data)

# SETQUOTA: the administrator sets the other account's limit (KiB) and reads it back.
typ, data = m.setquota('"%s"' % other, "(STORAGE 1)")
check(typ == "OK" and data[0] is not None and b"STORAGE 0 1" in data[0], (typ, data))
typ, data = m.getquota('"%s"' % other)
check(typ == "OK" and b"STORAGE 0 1" in data[0], (typ, data))
typ, data = m.setquota('""', "(STORAGE 100000)")
check(typ == "OK" and b"STORAGE" in data[0], (typ, data))
m.logout()

# The other account: the limit holds, and SETQUOTA is refused.
b = imaplib.IMAP4_SSL(host, tls_port, ssl_context=ctx)
b.login(other, password)
typ, data = b.getquotaroot("INBOX")
check(typ == "OK" and b"STORAGE 0 1" in b" ".join(x for x in data[1] if x), data)
typ, data = b.setquota('""', "(STORAGE 100000)")
check(typ == "NO", (typ, data))
typ, data = b.append("INBOX", None, None, b"Subject: big\r\n\r\n" + b"x" * 2048 + b"\r\n")
check(typ == "NO", (typ, data))
typ, data = b.status("INBOX", "(MESSAGES)")
check(b"MESSAGES 0" in data[0], data)
b.logout()
print("imaplib extensions OK")
