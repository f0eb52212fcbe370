#!/usr/bin/env python3
"""Helpers of crates/wharf/tests/e2e_http.rs. Each command reads a document on stdin (or drives
mail clients against 127.0.0.1), checks it, and prints what it found as JSON for the Rust test.

  http_check.py autoconfig XSD     validate Thunderbird autoconfig XML against XSD (lxml)
  http_check.py autodiscover       parse an Autodiscover v1 POX response (namespace-aware)
  http_check.py metrics            parse Prometheus text format (prometheus_client)
  http_check.py traffic k=v ...    SMTP (MX and submission) then IMAP logins and a fetch

Needs python3 with lxml and prometheus_client (.ci/run installs them).
"""

import imaplib
import json
import smtplib
import ssl
import sys

HOST = "127.0.0.1"
TIMEOUT = 30


def autoconfig(xsd_path):
    from lxml import etree

    schema = etree.XMLSchema(etree.parse(xsd_path))
    doc = etree.fromstring(sys.stdin.buffer.read())
    if not schema.validate(doc):
        print(f"autoconfig XML is not valid: {schema.error_log}", file=sys.stderr)
        sys.exit(1)
    servers = []
    for s in doc.iter("incomingServer", "outgoingServer"):
        servers.append(
            {
                "kind": s.tag,
                "type": s.get("type"),
                "hostname": s.findtext("hostname"),
                "port": int(s.findtext("port")),
                "socketType": s.findtext("socketType"),
                "username": s.findtext("username"),
                "authentication": [a.text for a in s.findall("authentication")],
            }
        )
    domains = [d.text for d in doc.iter("domain")]
    print(json.dumps({"domains": domains, "servers": servers}))


def autodiscover():
    from lxml import etree

    doc = etree.fromstring(sys.stdin.buffer.read())
    top = "{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}Autodiscover"
    assert doc.tag == top, doc.tag
    r = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"
    account = doc.find(f"{r}Response/{r}Account")
    assert account is not None, "no Response/Account in the outlook 2006a namespace"
    protocols = [
        {child.tag.replace(r, ""): child.text for child in p} for p in account.iter(f"{r}Protocol")
    ]
    print(
        json.dumps(
            {
                "AccountType": account.findtext(f"{r}AccountType"),
                "Action": account.findtext(f"{r}Action"),
                "protocols": protocols,
            }
        )
    )


def metrics():
    from prometheus_client.parser import text_string_to_metric_families

    out = []
    for family in text_string_to_metric_families(sys.stdin.read()):
        for s in family.samples:
            out.append(
                {
                    "family": family.name,
                    "type": family.type,
                    "name": s.name,
                    "labels": s.labels,
                    "value": s.value,
                }
            )
    print(json.dumps(out))


def traffic(kv):
    """2 messages over port-25 SMTP, 1 over submission with STARTTLS + AUTH, then an IMAPS
    login + SELECT + FETCH of all three, and an IMAPS login with a wrong password."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    reader, sender, password = kv["reader"], kv["sender"], kv["password"]
    for i in range(2):
        s = smtplib.SMTP(HOST, int(kv["smtp"]), timeout=TIMEOUT)
        s.ehlo("client.example.org")
        msg = f"From: carol@remote.example.org\r\nTo: {reader}\r\nSubject: mx {i}\r\n\r\nhello {i}\r\n"
        s.sendmail("carol@remote.example.org", [reader], msg.encode())
        s.quit()
    s = smtplib.SMTP(HOST, int(kv["submission"]), timeout=TIMEOUT)
    s.ehlo("client.example.org")
    s.starttls(context=ctx)
    s.ehlo("client.example.org")
    s.login(sender, password)
    msg = f"From: {sender}\r\nTo: {reader}\r\nSubject: sub\r\n\r\nhello\r\n"
    s.sendmail(sender, [reader], msg.encode())
    s.quit()

    m = imaplib.IMAP4_SSL(HOST, int(kv["imaps"]), ssl_context=ctx, timeout=TIMEOUT)
    m.login(reader, password)
    typ, data = m.select("INBOX")
    assert typ == "OK" and int(data[0]) == 3, (typ, data)
    typ, data = m.fetch("1:*", "(RFC822)")
    fetched = [d for d in data if isinstance(d, tuple)]
    assert typ == "OK" and len(fetched) == 3, (typ, data)
    m.logout()

    m = imaplib.IMAP4_SSL(HOST, int(kv["imaps"]), ssl_context=ctx, timeout=TIMEOUT)
    try:
        m.login(reader, "not the password")
    except imaplib.IMAP4.error:
        pass
    else:
        raise AssertionError("a wrong password was accepted")
    m.logout()
    print(json.dumps({"sent": 3, "fetched": 3}))


def main():
    cmd = sys.argv[1]
    if cmd == "autoconfig":
        autoconfig(sys.argv[2])
    elif cmd == "autodiscover":
        autodiscover()
    elif cmd == "metrics":
        metrics()
    elif cmd == "traffic":
        traffic(dict(a.split("=", 1) for a in sys.argv[2:]))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
