"""Runs an SMTP transcript over a real socket, with STARTTLS or implicit TLS when asked.

transcript.py HOST PORT [ssl] < steps.json, where steps is a list of
  {"send": "text"}         bytes to write as-is (UTF-8)
  {"expect": 250}          read one reply, its code must match
  {"contains": "text"}     the last reply must contain this text
  {"lacks": "text"}        the last reply must not contain this text
  {"starttls": true}       wrap the socket in TLS (after the 220 to STARTTLS)
  {"closed": true}         the server must close the connection
Prints the replies; exits 1 at the first mismatch.
"""
import json
import socket
import ssl
import sys

host, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
sock = socket.create_connection((host, port), timeout=20)
if len(sys.argv) > 3 and sys.argv[3] == "ssl":
    sock = ctx.wrap_socket(sock)
buf = b""
last = ""


def reply():
    global buf
    lines = []
    while True:
        while b"\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise SystemExit("FAIL: connection closed, replies so far: %r" % lines)
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        line = line.decode("utf-8", "replace").rstrip("\r")
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return int(line[:3]), "\n".join(lines)


steps = json.load(sys.stdin)
code, last = reply()
print(last)
if code != 220:
    raise SystemExit("FAIL: greeting %s" % last)
for step in steps:
    if "send" in step:
        sock.sendall(step["send"].encode("utf-8"))
    elif "expect" in step:
        code, last = reply()
        print(last)
        if code != step["expect"]:
            raise SystemExit("FAIL: expected %d, got %s" % (step["expect"], last))
    elif "contains" in step:
        if step["contains"] not in last:
            raise SystemExit("FAIL: %r not in %s" % (step["contains"], last))
    elif "lacks" in step:
        if step["lacks"] in last:
            raise SystemExit("FAIL: %r in %s" % (step["lacks"], last))
    elif "starttls" in step:
        sock = ctx.wrap_socket(sock)
        buf = b""
    elif "closed" in step:
        try:
            data = sock.recv(1)
        except (ConnectionError, ssl.SSLError):
            data = b""
        if data:
            raise SystemExit("FAIL: connection still open")
print("PASS")
