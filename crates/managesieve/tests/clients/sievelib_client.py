"""A real ManageSieve client (sievelib, from PyPI) against Wharf: STARTTLS or implicit TLS,
AUTHENTICATE PLAIN, then every script command. The certificate is trusted through
SSL_CERT_FILE. Prints what it saw; exits non-zero on the first surprise."""
import sys

from sievelib.managesieve import Client

mode, host, port, user, password = sys.argv[1:6]

c = Client(host, int(port))
ok = c.connect(user, password, starttls=(mode == "starttls"), ssl=(mode == "ssl"), authmech="PLAIN")
assert ok, c.errmsg
print("implementation", c.get_implementation())
print("sieve", " ".join(c.get_sieve_capabilities()))

script = 'require ["fileinto"];\nif header :contains "subject" "wharf" {\n  fileinto "Wharf";\n}\n'
assert c.havespace("main", len(script)), c.errmsg
assert c.putscript("main", script), c.errmsg
assert c.putscript("other", "keep;\n"), c.errmsg
active, scripts = c.listscripts()
assert active is None and sorted(scripts) == ["main", "other"], (active, scripts)
assert c.setactive("main"), c.errmsg
active, scripts = c.listscripts()
assert active == "main" and scripts == ["other"], (active, scripts)
got = c.getscript("main")
assert got is not None and got.split() == script.split(), repr(got)
print("getscript ok")

# A script with an error: refused, and the error says where.
assert not c.putscript("broken", "keep;\nif true {\n  bad;\n}\n")
print("putscript error:", c.errmsg.decode())
assert not c.checkscript("bad;")
print("checkscript error:", c.errmsg.decode())
assert c.checkscript("keep;\n"), c.errmsg

assert c.renamescript("main", "filters"), c.errmsg
active, scripts = c.listscripts()
assert active == "filters" and scripts == ["other"], (active, scripts)
assert not c.deletescript("filters")
print("delete active:", c.errcode.decode())
assert c.setactive(""), c.errmsg
assert c.deletescript("filters"), c.errmsg
assert not c.getscript("filters")
print("getscript missing:", c.errcode.decode())
assert c.setactive("other"), c.errmsg
active, scripts = c.listscripts()
assert active == "other" and scripts == [], (active, scripts)
c.logout()
print("done")
