// End-to-end IMAP client run by crates/imap/tests/e2e_clients.rs: imapflow over implicit TLS
// against a live Wharf IMAP service. Exits non-zero on the first wrong answer.
import { ImapFlow } from 'imapflow';
import fs from 'node:fs';

const [port, cafile, user, pass] = process.argv.slice(2);
const fail = (what) => { console.error('FAILED:', what); process.exit(1); };
const check = (cond, what) => { if (!cond) fail(what); };

const client = new ImapFlow({
  host: '127.0.0.1',
  port: Number(port),
  secure: true,
  tls: { ca: [fs.readFileSync(cafile)], servername: 'localhost' },
  auth: { user, pass },
  logger: false,
});

await client.connect();
check(client.capabilities.has('IMAP4rev2') || client.capabilities.has('IMAP4REV2'), [...client.capabilities.keys()]);
// imapflow turns on COMPRESS=DEFLATE by itself when offered (RFC 4978): everything below runs
// compressed.
check(client.capabilities.has('COMPRESS=DEFLATE') && client._deflate, 'COMPRESS=DEFLATE not in use');

const list = await client.list();
const paths = list.map((m) => m.path);
for (const p of ['INBOX', 'Sent', 'Drafts', 'Trash', 'Junk', 'Archive']) check(paths.includes(p), paths);
check(list.find((m) => m.path === 'Sent').specialUse === '\\Sent', list);

const raw = 'From: Flow <flow@example.org>\r\nTo: alice@example.test\r\nSubject: =?UTF-8?Q?imapflow_=C3=BCber?=\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhej från imapflow\r\n';
const appended = await client.append('INBOX', raw, ['\\Flagged', '$Forwarded']);
check(appended.uid > 0 && appended.uidValidity, appended);

// A message larger than 4096 octets: LITERAL- makes the client use a synchronising literal.
const big = 'From: big@example.org\r\nSubject: big\r\n\r\n' + 'x'.repeat(76).concat('\r\n').repeat(300);
const bigRes = await client.append('Archive', big);
check(bigRes.uid > 0, bigRes);

const lock = await client.getMailboxLock('INBOX');
try {
  check(client.mailbox.exists >= 1, client.mailbox);
  const msg = await client.fetchOne(String(appended.uid), { uid: true, envelope: true, flags: true, bodyStructure: true, source: true, internalDate: true, size: true }, { uid: true });
  check(msg.envelope.subject === 'imapflow über', msg.envelope);
  check(msg.flags.has('\\Flagged') && msg.flags.has('$Forwarded'), msg.flags);
  check(msg.source.toString('utf8') === raw, msg.source.toString());
  check(msg.bodyStructure.type === 'text/plain', msg.bodyStructure);
  check(msg.size === Buffer.byteLength(raw), msg.size);

  const found = await client.search({ subject: 'imapflow' }, { uid: true });
  check(found.includes(appended.uid), found);
  const unseen = await client.search({ seen: false }, { uid: true });
  check(unseen.includes(appended.uid), unseen);

  await client.messageFlagsAdd(String(appended.uid), ['\\Seen'], { uid: true });
  const after = await client.fetchOne(String(appended.uid), { flags: true }, { uid: true });
  check(after.flags.has('\\Seen'), after.flags);

  const dl = await client.download(String(appended.uid), '1', { uid: true });
  const chunks = [];
  for await (const c of dl.content) chunks.push(c);
  check(Buffer.concat(chunks).toString('utf8').includes('hej från imapflow'), Buffer.concat(chunks).toString());

  const copied = await client.messageCopy(String(appended.uid), 'Archive', { uid: true });
  check(copied && copied.uidMap && copied.uidMap.size === 1, copied);
  const moved = await client.messageMove(String(appended.uid), 'Trash', { uid: true });
  check(moved && moved.uidMap && moved.uidMap.size === 1, moved);
} finally {
  lock.release();
}

const status = await client.status('Trash', { messages: true, uidNext: true, unseen: true });
check(status.messages === 1, status);
const archived = await client.status('Archive', { messages: true });
check(archived.messages === 2, archived);

await client.mailboxCreate(['Projects', 'Wharf']);
await client.mailboxRename('Projects', 'Work');
const list2 = await client.list();
check(list2.some((m) => m.path === 'Work/Wharf'), list2.map((m) => m.path));
await client.mailboxDelete('Work/Wharf');

// IDLE: an append from a second connection wakes the first.
await client.mailboxOpen('INBOX');
const before = client.mailbox.exists;
const woke = new Promise((resolve) => client.on('exists', (d) => resolve(d)));
const idling = client.idle();
await new Promise((r) => setTimeout(r, 200));
const other = new ImapFlow({ host: '127.0.0.1', port: Number(port), secure: true, tls: { ca: [fs.readFileSync(cafile)], servername: 'localhost' }, auth: { user, pass }, logger: false });
await other.connect();
await other.append('INBOX', raw);
await other.logout();
const ev = await Promise.race([woke, new Promise((_, rej) => setTimeout(() => rej(new Error('no EXISTS during IDLE')), 10000))]);
check(ev.count === before + 1, ev);
await client.logout(); // ends the IDLE with DONE first
await idling.catch(() => {});
console.log('imapflow OK');
process.exit(0); // the IDLE watchdog timer would keep node alive
