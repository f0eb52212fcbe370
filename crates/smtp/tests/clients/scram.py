"""AUTH SCRAM-SHA-256 (RFC 5802 / RFC 7677) over SMTP_SSL, then one message.

scram.py HOST PORT USER PASSWORD RCPT MSGFILE. Prints 'OK', or 'AUTHFAIL <code>' and exits 2.
The server signature is verified, so a server that skips the final step fails here.
"""
import base64
import hashlib
import hmac
import os
import smtplib
import ssl
import sys

host, port, user, password, rcpt, path = sys.argv[1:7]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def b64(b):
    return base64.b64encode(b if isinstance(b, bytes) else b.encode()).decode()


s = smtplib.SMTP_SSL(host, int(port), context=ctx, timeout=20)
s.ehlo("client.test")
nonce = b64(os.urandom(18))
name = user.replace("=", "=3D").replace(",", "=2C")
first_bare = "n=%s,r=%s" % (name, nonce)
code, resp = s.docmd("AUTH", "SCRAM-SHA-256 " + b64("n,," + first_bare))
if code != 334:
    print("AUTHFAIL", code)
    sys.exit(2)
server_first = base64.b64decode(resp).decode()
attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
assert attrs["r"].startswith(nonce), server_first
salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
client_key = hmac.new(salted, b"Client Key", "sha256").digest()
stored_key = hashlib.sha256(client_key).digest()
without_proof = "c=biws,r=%s" % attrs["r"]
auth_msg = ("%s,%s,%s" % (first_bare, server_first, without_proof)).encode()
signature = hmac.new(stored_key, auth_msg, "sha256").digest()
proof = bytes(a ^ b for a, b in zip(client_key, signature))
code, resp = s.docmd(b64("%s,p=%s" % (without_proof, b64(proof))))
if code != 334:
    print("AUTHFAIL", code)
    sys.exit(2)
server_final = base64.b64decode(resp).decode()
server_key = hmac.new(salted, b"Server Key", "sha256").digest()
expected = "v=" + b64(hmac.new(server_key, auth_msg, "sha256").digest())
assert server_final == expected, (server_final, expected)
code, resp = s.docmd("")
if code != 235:
    print("AUTHFAIL", code)
    sys.exit(2)
with open(path, "rb") as f:
    s.sendmail(user, [rcpt], f.read())
s.quit()
print("OK")
