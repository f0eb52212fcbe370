"""End-to-end run by tests/shared.rs: a mailbox shared between two accounts (RFC 4314 ACL,
RFC 2342 NAMESPACE) with Python's imaplib, whose setacl/getacl/myrights/namespace commands are
used as they are, over implicit TLS against a live Wharf IMAP service on the embedded store.
Exits non-zero on the first wrong answer."""
import imaplib
import ssl
import sys

host = "127.0.0.1"
tls_port, cafile, owner, grantee, password = (
    int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])

ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False


def check(cond, what):
    if not cond:
        print("FAILED:", what, file=sys.stderr)
        sys.exit(1)


a = imaplib.IMAP4_SSL(host, tls_port, ssl_context=ctx)
a.login(owner, password)
typ, data = a.capability()
check(b"ACL" in data[0].split() and b"RIGHTS=texk" in data[0].split(), data)
check(a.create("Team")[0] == "OK", "create")
msg = b"From: a@example.org\r\nSubject: shared hello\r\n\r\nbody of the shared message\r\n"
check(a.append("Team", None, None, msg)[0] == "OK", "append")
typ, data = a.setacl("Team", grantee, "lrs")
check(typ == "OK", (typ, data))
typ, data = a.getacl("Team")
check(typ == "OK" and (grantee + " lrs").encode() in data[0], data)

b = imaplib.IMAP4_SSL(host, tls_port, ssl_context=ctx)
b.login(grantee, password)
typ, data = b.namespace()
check(typ == "OK" and b'(("Other Users/" "/"))' in data[0], data)
shared = '"Other Users/%s/Team"' % owner
typ, data = b.list('""', '"Other Users/*"')
check(typ == "OK" and any(b"Other Users/" + owner.encode() + b"/Team" in l for l in data), data)
typ, data = b.myrights(shared)
check(typ == "OK" and data[0].endswith(b" lrs"), data)
typ, data = b.select(shared)
check(typ == "OK" and data[0] == b"1", (typ, data))
typ, data = b.fetch("1", "(BODY.PEEK[TEXT])")
check(typ == "OK" and b"body of the shared message" in data[0][1], data)
# s allows \Seen; \Flagged needs w and is left off.
typ, data = b.store("1", "+FLAGS", "(\\Seen \\Flagged)")
check(typ == "OK" and b"\\Seen" in data[0] and b"\\Flagged" not in data[0], data)
typ, data = b.expunge()
check(typ == "NO", ("expunge needs e", typ, data))
# The grantee's copy is its own.
typ, data = b.copy("1", "INBOX")
check(typ == "OK", (typ, data))
b.logout()

# Revoked: the mailbox is gone for the grantee.
typ, data = a.deleteacl("Team", grantee)
check(typ == "OK", (typ, data))
b = imaplib.IMAP4_SSL(host, tls_port, ssl_context=ctx)
b.login(grantee, password)
typ, data = b.select(shared)
check(typ == "NO" and b"NONEXISTENT" in data[0], (typ, data))
typ, data = b.status("INBOX", "(MESSAGES)")
check(typ == "OK" and b"MESSAGES 1" in data[0], data)
b.logout()
a.logout()
print("imaplib acl OK")
