"""End-to-end run by tests/metadata.rs: METADATA (RFC 5464) with Python's imaplib over implicit
TLS against a live Wharf IMAP service on the embedded store. imaplib has no METADATA commands,
so they go as raw commands; a binary value goes inline as a LITERAL+ literal8 and comes back as
a literal8. Exits non-zero on the first wrong answer."""
import imaplib
import ssl
import sys

host = "127.0.0.1"
tls_port, cafile, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

# imaplib does not know the METADATA commands: tell it in which states they may be sent.
imaplib.Commands.setdefault("GETMETADATA", ("AUTH", "SELECTED"))
imaplib.Commands.setdefault("SETMETADATA", ("AUTH", "SELECTED"))

ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False


def check(cond, what):
    if not cond:
        print("FAILED:", what, file=sys.stderr)
        sys.exit(1)


m = imaplib.IMAP4_SSL(host, tls_port, ssl_context=ctx)
m.login(user, password)
typ, data = m.capability()
caps = data[0].split()
for c in (b"METADATA", b"METADATA-SERVER"):
    check(c in caps, (c, data))

binary = b"\x00\x01\xff"
typ, data = m._simple_command(
    "SETMETADATA", "INBOX",
    b'(/private/comment "hello there" /shared/vendor/example/bin ~{%d+}\r\n' % len(binary) + binary + b")",
)
check(typ == "OK", (typ, data))
typ, data = m._simple_command("SETMETADATA", '""', '(/shared/comment "server note")')
check(typ == "OK", (typ, data))

typ, data = m._simple_command("GETMETADATA", "(DEPTH infinity)", "INBOX", "(/private /shared)")
check(typ == "OK", (typ, data))
typ, meta = m._untagged_response(typ, data, "METADATA")
flat = b"".join(p if isinstance(p, bytes) else b"".join(p) for p in meta)
check(b'/private/comment "hello there"' in flat, meta)
check(binary in flat, meta)

typ, data = m._simple_command("GETMETADATA", '""', "/shared/comment")
typ, meta = m._untagged_response(typ, data, "METADATA")
check(meta == [b'"" (/shared/comment "server note")'], meta)

typ, data = m._simple_command("GETMETADATA", "(MAXSIZE 5)", "INBOX", "/private/comment")
check(typ == "OK" and b"[METADATA LONGENTRIES 11]" in data[-1], (typ, data))

try:
    m._simple_command("SETMETADATA", "INBOX", '(/private/* "x")')
    check(False, "BAD expected")
except imaplib.IMAP4.error:
    pass

typ, data = m._simple_command("SETMETADATA", "INBOX", "(/private/comment NIL)")
check(typ == "OK", (typ, data))
m.logout()
print("imaplib metadata OK")
