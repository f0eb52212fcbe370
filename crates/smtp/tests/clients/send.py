"""Sends one message with Python's smtplib: send.py MODE HOST PORT FROM TO[,TO..] MSGFILE [USER PASS] [OPTIONS]

MODE is plain, starttls or ssl. OPTIONS (comma-separated, last argument when it starts with '+'):
+utf8 adds SMTPUTF8 and BODY=8BITMIME to MAIL FROM. Prints 'OK' or 'ERR <code> <text>' and exits 0/2.
"""
import smtplib
import ssl
import sys

args = sys.argv[1:]
opts = []
if args and args[-1].startswith("+"):
    opts = args.pop()[1:].split(",")
mode, host, port, sender, rcpts, path = args[:6]
creds = args[6:8]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with open(path, "rb") as f:
    msg = f.read()
mail_options = ["SMTPUTF8", "BODY=8BITMIME"] if "utf8" in opts else []
try:
    if mode == "ssl":
        s = smtplib.SMTP_SSL(host, int(port), context=ctx, timeout=20)
    else:
        s = smtplib.SMTP(host, int(port), timeout=20)
    s.ehlo("client.test")
    if mode == "starttls":
        s.starttls(context=ctx)
        s.ehlo("client.test")
    if creds:
        s.login(creds[0], creds[1])
    refused = s.sendmail(sender, rcpts.split(","), msg, mail_options=mail_options)
    s.quit()
    if refused:
        print("REFUSED", refused)
        sys.exit(3)
    print("OK")
except smtplib.SMTPResponseException as e:
    print("ERR", e.smtp_code, e.smtp_error.decode("utf-8", "replace"))
    sys.exit(2)
except smtplib.SMTPRecipientsRefused as e:
    print("ERR", " ".join(str(v[0]) for v in e.recipients.values()))
    sys.exit(2)
