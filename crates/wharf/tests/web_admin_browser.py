"""Drives Wharf's web pages in headless Chromium (selenium + chromedriver) for
crates/wharf/tests/web_admin.rs.

usage: web_admin_browser.py BASE_URL IMAPS_PORT ADMIN PASSWORD NEW_USER NEW_PASSWORD [SHOT_DIR]

1. The admin signs in, sees the dashboard, adds NEW_USER on the accounts page.
2. NEW_USER signs in (self-service page), creates an app password, which then
   works for IMAP LOGIN (imaplib) but not for the web sign-in; revoking it on
   the page makes IMAP refuse it.
Screenshots of the dashboard and the accounts page go to SHOT_DIR when given.
Prints one line per step; exits non-zero on the first failure.
"""

import imaplib
import os
import shutil
import ssl
import sys

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

base, imaps_port, admin, password, new_user, new_password = sys.argv[1:7]
shot_dir = sys.argv[7] if len(sys.argv) > 7 else None


def imap_ok(user, secret):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4_SSL("127.0.0.1", int(imaps_port), ssl_context=ctx)
    try:
        m.login(user, secret)
    except imaplib.IMAP4.error:
        return False
    typ, _ = m.select("INBOX")
    assert typ == "OK", typ
    m.logout()
    return True


def step(msg):
    print(msg, flush=True)


opts = webdriver.ChromeOptions()
for a in [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--ignore-certificate-errors",
    "--window-size=1280,900",
]:
    opts.add_argument(a)
for path in ["/usr/bin/chromium", "/usr/bin/chromium-browser"]:
    if os.path.exists(path):
        opts.binary_location = path
        break
driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
d = webdriver.Chrome(service=Service(driver_path), options=opts)
d.set_page_load_timeout(30)


def click(el):
    """Clicks a submit button or link and waits for the next page."""
    old = d.find_element(By.TAG_NAME, "html")
    el.click()

    def navigated(_):
        # While the old document is being torn down, Chromium can answer an element query with
        # "Node with given id does not belong to the document" instead of a stale-element error:
        # that also means the old page is gone.
        try:
            old.is_enabled()
            return False
        except WebDriverException:
            return True

    WebDriverWait(d, 20).until(navigated)


def h1():
    return d.find_element(By.TAG_NAME, "h1").text


def flash():
    els = d.find_elements(By.CSS_SELECTOR, ".flash")
    return els[0].text if els else ""


def sign_in(user, secret):
    d.get(base + "/web/login")
    d.find_element(By.ID, "username").send_keys(user)
    d.find_element(By.ID, "password").send_keys(secret)
    click(d.find_element(By.ID, "sign-in"))


def sign_out():
    click(d.find_element(By.XPATH, "//header//button[text()='Sign out']"))
    assert d.current_url.endswith("/web/login"), d.current_url


try:
    # ---- admin: sign in, dashboard, add an account
    d.get(base + "/web/")
    assert d.current_url.endswith("/web/login"), d.current_url
    sign_in(admin, password)
    assert d.current_url.endswith("/web/"), d.current_url
    assert h1() == "Dashboard", h1()
    summary = d.find_element(By.ID, "summary").text
    assert "messages in the queue" in summary, summary
    assert "accounts" in summary, summary
    checks = d.find_element(By.ID, "checks").text
    assert "certificate" in checks, checks
    step("admin signed in; dashboard shown")
    if shot_dir:
        d.save_screenshot(os.path.join(shot_dir, "web-dashboard.png"))

    click(d.find_element(By.LINK_TEXT, "Accounts"))
    assert h1() == "Accounts", h1()
    d.find_element(By.ID, "address").send_keys(new_user)
    d.find_element(By.ID, "password").send_keys(new_password)
    click(d.find_element(By.ID, "add-account-submit"))
    assert f"Account {new_user} added." in flash(), flash()
    table = d.find_element(By.ID, "accounts").text
    assert new_user in table, table
    step(f"account {new_user} added through the accounts page")
    if shot_dir:
        d.save_screenshot(os.path.join(shot_dir, "web-accounts.png"))

    # A weak password is refused with the operation's own message.
    d.find_element(By.ID, "address").send_keys("weak@" + new_user.split("@")[1])
    d.find_element(By.ID, "password").send_keys("x")
    click(d.find_element(By.ID, "add-account-submit"))
    assert "password refused" in flash(), flash()
    step("weak password refused")

    # An admin-only page is refused to a plain user (checked below), shown to the admin.
    d.get(base + "/web/domains")
    assert h1() == "Domains", h1()
    click(d.find_element(By.LINK_TEXT, new_user.split("@")[1]))
    records = d.find_element(By.ID, "dns-records").text
    assert "MX" in records, records
    step("domain page shows its DNS records")
    sign_out()

    # ---- the new user: self-service, app passwords
    sign_in(new_user, new_password)
    assert d.current_url.endswith("/web/me"), d.current_url
    assert h1() == "My account", h1()
    nav = d.find_element(By.TAG_NAME, "header").text
    assert "Accounts" not in nav, nav
    d.get(base + "/web/accounts")
    assert "administrators" in d.page_source, d.page_source[:500]
    d.get(base + "/web/me")
    d.find_element(By.ID, "label").send_keys("phone")
    click(d.find_element(By.ID, "create-app-password"))
    secret = d.find_element(By.ID, "app-password").text.strip()
    assert len(secret) == 34, secret
    table = d.find_element(By.ID, "app-passwords").text
    assert "phone" in table and "never" in table, table
    step("app password created")
    d.refresh()
    assert not d.find_elements(By.ID, "app-password"), "secret shown twice"

    assert imap_ok(new_user, secret), "app password refused by IMAP"
    step("app password works for IMAP LOGIN")
    d.refresh()
    table = d.find_element(By.ID, "app-passwords").text
    assert "never" not in table, table
    step("last use recorded")

    # It is not a web password.
    sign_out()
    sign_in(new_user, secret)
    assert d.current_url.endswith("/web/login"), d.current_url
    assert "Wrong email address or password" in d.page_source
    step("app password refused by the web sign-in")

    sign_in(new_user, new_password)
    click(d.find_element(By.XPATH, "//table[@id='app-passwords']//button[text()='Revoke']"))
    assert "revoked" in flash(), flash()
    assert "phone" not in d.find_element(By.ID, "app-passwords").text
    assert not imap_ok(new_user, secret), "revoked app password still works"
    assert imap_ok(new_user, new_password), "account password stopped working"
    step("revoked app password refused by IMAP")

    # Vacation through the self-service form (ops::rules).
    d.find_element(By.ID, "subject").send_keys("Away")
    d.find_element(By.ID, "vbody").send_keys("Back on Monday.")
    click(d.find_element(By.XPATH, "//form[@action='/web/me/vacation']//button[@value='on']"))
    assert "Vacation reply is on." in flash(), flash()
    step("vacation reply set")
    print("DONE", flush=True)
finally:
    d.quit()
