"""Downloads every message with Python's poplib (STLS or implicit TLS) into OUTDIR/<n>.eml,
writes OUTDIR/uidl.txt, and with --delete marks everything deleted and QUITs."""
import os
import poplib
import ssl
import sys

mode, host, port, user, password, outdir = sys.argv[1:7]
delete = "--delete" in sys.argv[7:]
ctx = ssl._create_unverified_context()
if mode == "stls":
    p = poplib.POP3(host, int(port), timeout=30)
    caps = p.capa()
    assert "STLS" in caps, caps
    p.stls(context=ctx)
else:
    p = poplib.POP3_SSL(host, int(port), context=ctx, timeout=30)
caps = p.capa()
assert "UIDL" in caps and "TOP" in caps and "PIPELINING" in caps, caps
p.user(user)
p.pass_(password)
count, total = p.stat()
sizes = {}
for line in p.list()[1]:
    n, s = line.split()
    sizes[int(n)] = int(s)
with open(os.path.join(outdir, "uidl.txt"), "w") as f:
    for line in p.uidl()[1]:
        f.write(line.decode() + "\n")
for n in range(1, count + 1):
    resp, lines, octets = p.retr(n)
    body = b"".join(l + b"\r\n" for l in lines)
    assert len(body) == sizes[n], (n, len(body), sizes[n])
    assert resp.split()[1] == str(sizes[n]).encode(), resp
    with open(os.path.join(outdir, "%d.eml" % n), "wb") as f:
        f.write(body)
    if delete:
        p.dele(n)
assert sum(sizes.values()) == total
print(p.quit().decode())
