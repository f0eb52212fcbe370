"""End-to-end run by tests/multisearch.rs: ESEARCH over several mailboxes (RFC 7377 MULTISEARCH)
with Python's imaplib over implicit TLS against a live Wharf IMAP service on the embedded store,
in the authenticated state and with a mailbox selected. imaplib has no ESEARCH command, so it
goes as a raw command; the untagged ESEARCH responses are parsed here. Exits non-zero on the
first wrong answer."""
import imaplib
import re
import ssl
import sys

host = "127.0.0.1"
tls_port, cafile, user, other, password = (
    int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5],
)

# imaplib does not know ESEARCH: tell it in which states it may be sent.
imaplib.Commands.setdefault("ESEARCH", ("AUTH", "SELECTED"))

ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False


def check(cond, what):
    if not cond:
        print("FAILED:", what, file=sys.stderr)
        sys.exit(1)


def message(sender, subject, body):
    return (
        "From: %s <%s@example.org>\r\nTo: %s\r\nSubject: %s\r\n\r\n%s\r\n"
        % (sender, sender, user, subject, body)
    ).encode()


ESEARCH = re.compile(
    rb'^\(TAG "([^"]+)" MAILBOX "([^"]+)" UIDVALIDITY (\d+)\) UID (.*)$'
)


def esearch(m, *args):
    """Runs ESEARCH; {mailbox: (uidvalidity, result data)} of its untagged responses."""
    typ, data = m._simple_command("ESEARCH", *args)
    check(typ == "OK", (args, typ, data))
    typ, lines = m._untagged_response(typ, data, "ESEARCH")
    out = {}
    for line in lines:
        if line is None:
            continue
        found = ESEARCH.match(line)
        check(found, line)
        tag, mailbox, validity, rest = found.groups()
        out[mailbox.decode()] = (int(validity), rest.decode())
    return out


# bob has the same words in mailboxes of the same names: never in alice's answers.
b = imaplib.IMAP4_SSL(host, tls_port, ssl_context=ctx)
b.login(other, password)
b.create("Projects")
for mb in ("INBOX", "Projects"):
    b.append(mb, None, None, message("ann", "budget", "quarterly numbers"))
b.logout()

m = imaplib.IMAP4_SSL(host, tls_port, ssl_context=ctx)
m.login(user, password)
typ, data = m.capability()
check(b"MULTISEARCH" in data[0].split(), data)
for mb in ("Projects", "Projects/2024", "Archive/Old"):
    typ, data = m.create(mb)
    check(typ == "OK", (mb, typ, data))
m.append("INBOX", None, None, message("ann", "budget", "quarterly numbers"))
m.append("INBOX", None, None, message("bob", "lunch", "pizza"))
m.append("Projects", None, None, message("carol", "plan", "roadmap"))
m.append("Projects", None, None, message("ann", "budget 2024", "more numbers"))
m.append("Projects/2024", None, None, message("ann", "q1", "numbers again"))

validity = {}
for mb in ("INBOX", "Projects", "Projects/2024"):
    typ, data = m.status(mb, "(UIDVALIDITY)")
    validity[mb] = int(re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1))

# Authenticated state, every mailbox.
got = esearch(m, "IN", "(personal)", "TEXT", "numbers")
check(got == {
    "INBOX": (validity["INBOX"], "ALL 1"),
    "Projects": (validity["Projects"], "ALL 2"),
    "Projects/2024": (validity["Projects/2024"], "ALL 1"),
}, got)

# A subtree, with result options.
got = esearch(m, "IN", "(subtree-one Projects)", "RETURN", "(MIN MAX COUNT)", "ALL")
check(got == {
    "Projects": (validity["Projects"], "MIN 1 MAX 2 COUNT 2"),
    "Projects/2024": (validity["Projects/2024"], "MIN 1 MAX 1 COUNT 1"),
}, got)

# No match: only the tagged OK.
check(esearch(m, "IN", "(personal)", "FROM", "nobody") == {}, "no match")

# A mailbox that does not exist: NO [NONEXISTENT].
typ, data = m._simple_command("ESEARCH", "IN", "(mailboxes Nope)", "ALL")
check(typ == "NO" and b"[NONEXISTENT]" in data[-1], (typ, data))

# SAVE with other mailboxes is BAD (imaplib raises on BAD).
try:
    m._simple_command("ESEARCH", "IN", "(personal)", "RETURN", "(SAVE)", "ALL")
    check(False, "BAD expected for SAVE with personal")
except imaplib.IMAP4.error:
    pass

# Selected state: no source options searches the selected mailbox; SAVE and $ work there.
m.select("INBOX")
got = esearch(m, "FROM", "bob")
check(got == {"INBOX": (validity["INBOX"], "ALL 2")}, got)
typ, data = m._simple_command("ESEARCH", "IN", "(selected)", "RETURN", "(SAVE)", "FROM", "ann")
check(typ == "OK", (typ, data))
typ, data = m.fetch("$", "(UID)")
check(typ == "OK" and data == [b"1 (UID 1)"], data)
got = esearch(m, "IN", "(selected mailboxes Projects)", "SUBJECT", "budget")
check(got == {
    "INBOX": (validity["INBOX"], "ALL 1"),
    "Projects": (validity["Projects"], "ALL 2"),
}, got)
m.logout()
print("imaplib multisearch OK")
