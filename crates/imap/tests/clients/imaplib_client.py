"""End-to-end IMAP client run by tests/e2e_clients.rs: Python's imaplib over STARTTLS and
implicit TLS against a live Wharf IMAP service. Exits non-zero on the first wrong answer."""
import imaplib
import ssl
import sys

host = "127.0.0.1"
plain_port, tls_port, cafile, user, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]

ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False  # the certificate names "localhost"; we connect by address


def check(cond, what):
    if not cond:
        print("FAILED:", what, file=sys.stderr)
        sys.exit(1)


# STARTTLS on the plaintext port: LOGIN refused first, accepted after the upgrade.
m = imaplib.IMAP4(host, plain_port)
check("LOGINDISABLED" in m.capabilities and "STARTTLS" in m.capabilities, m.capabilities)
try:
    m.login(user, password)
    check(False, "plaintext LOGIN accepted")
except imaplib.IMAP4.error as e:
    check("PRIVACYREQUIRED" in str(e), str(e))
m.starttls(ssl_context=ctx)
typ, _ = m.login(user, password)
check(typ == "OK", "login after STARTTLS")
typ, data = m.select("INBOX")
check(typ == "OK", data)
msg = b"From: Py <py@example.org>\r\nTo: alice@example.test\r\nSubject: from imaplib\r\n\r\nhello from python\r\n"
typ, data = m.append("INBOX", "(\\Flagged)", imaplib.Time2Internaldate(1700000000), msg)
check(typ == "OK" and b"APPENDUID" in data[0], data)
m.noop()
typ, data = m.search(None, "SUBJECT", "imaplib")
check(typ == "OK" and data[0].split() != [], data)
num = data[0].split()[-1]
typ, data = m.fetch(num, "(FLAGS RFC822.SIZE BODY.PEEK[])")
check(typ == "OK" and data[0][1] == msg, data)
typ, data = m.fetch(num, "(ENVELOPE BODYSTRUCTURE)")
check(typ == "OK" and b"from imaplib" in data[0], data)
typ, data = m.store(num, "+FLAGS", "(\\Seen $Forwarded)")
check(typ == "OK" and b"$Forwarded" in data[0], data)
typ, data = m.copy(num, "Archive")
check(typ == "OK", data)
typ, data = m.uid("SEARCH", None, "ALL")
check(typ == "OK", data)
typ, data = m.list()
check(typ == "OK" and any(b"Archive" in d for d in data), data)
typ, data = m.status("Archive", "(MESSAGES UIDNEXT)")
check(typ == "OK" and b"MESSAGES 1" in data[0], data)
m.store(num, "+FLAGS", "\\Deleted")
typ, data = m.expunge()
check(typ == "OK", data)
m.logout()

# Implicit TLS.
s = imaplib.IMAP4_SSL(host, tls_port, ssl_context=ctx)
check("LOGINDISABLED" not in s.capabilities and "AUTH=PLAIN" in s.capabilities, s.capabilities)
s.login(user, password)
typ, data = s.select("Archive", readonly=True)
check(typ == "OK" and data[0] == b"1", data)
typ, data = s.fetch("1", "(BODY[TEXT])")
check(typ == "OK" and data[0][1] == b"hello from python\r\n", data)
typ, data = s.create("Py/Sub")
check(typ == "OK", data)
typ, data = s.rename("Py", "Python")
check(typ == "OK", data)
typ, data = s.list(pattern="Python/*")
check(typ == "OK" and b"Python/Sub" in data[0], data)
typ, data = s.delete("Python/Sub")
check(typ == "OK", data)
s.logout()

# AUTHENTICATE SCRAM-SHA-256 (no initial response; the server-final arrives as a last challenge).
import scramp

sc = scramp.ScramClient(["SCRAM-SHA-256"], user, password)
steps = []


def scram(challenge):
    steps.append(challenge)
    if len(steps) == 1:
        return sc.get_client_first()
    if len(steps) == 2:
        sc.set_server_first(challenge.decode())
        return sc.get_client_final()
    sc.set_server_final(challenge.decode())  # raises unless the server proved it knows the key
    return b""


s = imaplib.IMAP4_SSL(host, tls_port, ssl_context=ctx)
check("AUTH=SCRAM-SHA-256" in s.capabilities, s.capabilities)
typ, data = s.authenticate("SCRAM-SHA-256", scram)
check(typ == "OK" and len(steps) == 3, (typ, data, steps))
typ, data = s.select("INBOX")
check(typ == "OK", data)
s.logout()

# A wrong password fails with AUTHENTICATIONFAILED.
s = imaplib.IMAP4_SSL(host, tls_port, ssl_context=ctx)
try:
    s.login(user, "not the password")
    check(False, "wrong password accepted")
except imaplib.IMAP4.error as e:
    check("AUTHENTICATIONFAILED" in str(e), str(e))
s.logout()
# STARTTLS command injection (CVE-2011-0411 class): a command pipelined in plaintext behind
# STARTTLS must never run after the upgrade.
import socket

raw = socket.create_connection((host, plain_port))
raw.settimeout(10)
f = raw.makefile("rb")
check(f.readline().startswith(b"* OK"), "greeting")
raw.sendall(b"a STARTTLS\r\nb CAPABILITY\r\n")
line = f.readline()
check(line.startswith(b"a OK"), line)
tls = ctx.wrap_socket(raw, server_hostname="localhost")
tf = tls.makefile("rb")
tls.sendall(b"c NOOP\r\n")
line = tf.readline()
check(line == b"c OK NOOP completed\r\n", line)
tls.sendall(b"d LOGOUT\r\n")
tls.close()
print("imaplib OK")
