-- IMAP ACL (RFC 4314): rights other accounts hold on a mailbox. `grantee_account` NULL is the
-- identifier "anyone" (every account of the server). The owner holds every right and has no
-- row. `rights` are the standard rights letters (lrswipkxtea), never empty: removing the last
-- right removes the row. A mailbox's rows go with it, and a grantee's with the grantee.
CREATE TABLE mailbox_acl (
    mailbox_id      INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    grantee_account INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
    rights          TEXT NOT NULL
);
CREATE UNIQUE INDEX mailbox_acl_key ON mailbox_acl(mailbox_id, COALESCE(grantee_account, 0));
CREATE INDEX mailbox_acl_grantee ON mailbox_acl(grantee_account);
