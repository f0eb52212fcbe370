"""AUTH over STLS with PLAIN (with and without initial response), LOGIN and SCRAM-SHA-256
(RFC 5034 / 7677), verifying the server's SCRAM signature. Prints one line per mechanism."""
import base64
import hashlib
import hmac
import os
import poplib
import ssl
import sys

host, port, user, password = sys.argv[1:5]
ctx = ssl._create_unverified_context()
b64 = lambda b: base64.b64encode(b).decode()


def session():
    p = poplib.POP3(host, int(port), timeout=30)
    p.stls(context=ctx)
    return p


def finish(p, name):
    count, _ = p.stat()
    print(name, "ok", count)
    p.quit()


# PLAIN with initial response
p = session()
sasl = [l for l in p.capa().get("SASL", [])]
assert set(["PLAIN", "LOGIN", "SCRAM-SHA-256"]) <= set(sasl), sasl
r = p._shortcmd("AUTH PLAIN " + b64(b"\0" + user.encode() + b"\0" + password.encode()))
assert r.startswith(b"+OK"), r
finish(p, "PLAIN-IR")

# PLAIN without initial response
p = session()
r = p._shortcmd("AUTH PLAIN")
assert r.startswith(b"+ "), r
r = p._shortcmd(b64(b"\0" + user.encode() + b"\0" + password.encode()))
assert r.startswith(b"+OK"), r
finish(p, "PLAIN")

# LOGIN
p = session()
r = p._shortcmd("AUTH LOGIN")
assert r.startswith(b"+ "), r
r = p._shortcmd(b64(user.encode()))
assert r.startswith(b"+ "), r
r = p._shortcmd(b64(password.encode()))
assert r.startswith(b"+OK"), r
finish(p, "LOGIN")

# SCRAM-SHA-256
p = session()
cnonce = b64(os.urandom(18))
bare = "n=%s,r=%s" % (user, cnonce)
r = p._shortcmd("AUTH SCRAM-SHA-256 " + b64(("n,," + bare).encode()))
assert r.startswith(b"+ "), r
server_first = base64.b64decode(r[2:]).decode()
attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
assert attrs["r"].startswith(cnonce)
salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
client_key = hmac.new(salted, b"Client Key", "sha256").digest()
stored_key = hashlib.sha256(client_key).digest()
without_proof = "c=biws,r=" + attrs["r"]
auth_msg = ",".join([bare, server_first, without_proof]).encode()
sig = hmac.new(stored_key, auth_msg, "sha256").digest()
proof = bytes(a ^ b for a, b in zip(client_key, sig))
r = p._shortcmd(b64((without_proof + ",p=" + b64(proof)).encode()))
assert r.startswith(b"+ "), r
server_final = base64.b64decode(r[2:]).decode()
server_key = hmac.new(salted, b"Server Key", "sha256").digest()
expected = "v=" + b64(hmac.new(server_key, auth_msg, "sha256").digest())
assert server_final == expected, (server_final, expected)
r = p._shortcmd("")
assert r.startswith(b"+OK"), r
finish(p, "SCRAM-SHA-256")

# Wrong SCRAM proof: -ERR [AUTH]
p = session()
r = p._shortcmd("AUTH SCRAM-SHA-256 " + b64(("n,," + bare).encode()))
server_first = base64.b64decode(r[2:]).decode()
attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
try:
    p._shortcmd(b64(("c=biws,r=" + attrs["r"] + ",p=" + b64(b"\0" * 32)).encode()))
    print("bad proof accepted")
except poplib.error_proto as e:
    print("bad proof:", e.args[0].decode())
