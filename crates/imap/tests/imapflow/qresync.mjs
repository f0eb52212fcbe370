// QRESYNC with a real client, run by crates/imap/tests/e2e_clients.rs: imapflow (qresync: true)
// reopens INBOX with the UIDVALIDITY and HIGHESTMODSEQ it saw, after another client changed
// flags and expunged, and must learn exactly those changes; then a UID FETCH (CHANGEDSINCE …
// VANISHED). Prints the octets the resync cost on the wire.
import { ImapFlow } from 'imapflow';
import fs from 'node:fs';

const [port, cafile, user, pass] = process.argv.slice(2);
const fail = (what) => { console.error('FAILED:', JSON.stringify(what, (k, v) => (typeof v === 'bigint' ? v.toString() : v instanceof Set ? [...v] : v))); process.exit(1); };
const check = (cond, what) => { if (!cond) fail(what); };
const client = (qresync) => new ImapFlow({
  host: '127.0.0.1',
  port: Number(port),
  secure: true,
  tls: { ca: [fs.readFileSync(cafile)], servername: 'localhost' },
  auth: { user, pass },
  logger: false,
  qresync,
});
const message = (i) => `From: q${i}@example.org\r\nTo: ${user}\r\nSubject: resync ${i}\r\n\r\nbody ${i}\r\n`;

// A client that knew the mailbox.
const a = client(true);
await a.connect();
check(a.enabled.has('QRESYNC'), [...a.enabled]);
for (let i = 1; i <= 200; i++) await a.append('INBOX', message(i));
const seen = await a.mailboxOpen('INBOX');
check(seen.exists === 200 && seen.highestModseq, seen);
const { uidValidity, highestModseq } = seen;
await a.logout();

// Another client, without QRESYNC, changes two messages and expunges three.
const b = client(false);
await b.connect();
await b.mailboxOpen('INBOX');
await b.messageFlagsAdd('30,70', ['\\Flagged'], { uid: true });
await b.messageDelete('50,90,110', { uid: true });
await b.logout();

// The first client comes back.
const c = client(true);
const vanished = [];
const changed = [];
c.on('expunge', (d) => vanished.push(d));
c.on('flags', (d) => changed.push(d));
await c.connect();
const compressed = !!c._deflate;
const before = c.socket.bytesRead;
const reopened = await c.mailboxOpen('INBOX', { uidValidity, changedSince: highestModseq });
const resyncBytes = c.socket.bytesRead - before;
check(reopened.exists === 197, reopened);
check(reopened.qresync === true, reopened);
check(JSON.stringify(vanished.map((d) => d.uid).sort((x, y) => x - y)) === '[50,90,110]', vanished);
check(vanished.every((d) => d.vanished && d.earlier), vanished);
check(JSON.stringify(changed.map((d) => d.uid).sort((x, y) => x - y)) === '[30,70]', changed);
check(changed.every((d) => d.flags.has('\\Flagged') && d.modseq > highestModseq), changed);

// Later changes, learned by UID FETCH (CHANGEDSINCE … VANISHED).
const since = reopened.highestModseq;
const d = client(false);
await d.connect();
await d.mailboxOpen('INBOX');
await d.messageFlagsAdd('120', ['$Label1'], { uid: true });
await d.messageDelete('130', { uid: true });
await d.logout();
vanished.length = 0;
const fetched = [];
for await (const m of c.fetch('1:*', { uid: true, flags: true }, { uid: true, changedSince: since })) fetched.push(m.uid);
check(JSON.stringify(fetched) === '[120]', fetched);
check(vanished.some((v) => v.uid === 130), vanished);

await c.logout();
console.log(`qresync resync of 200 messages with 5 changes: ${resyncBytes} octets on the wire (TLS, COMPRESS=DEFLATE: ${compressed})`);
console.log('imapflow qresync OK');
process.exit(0);
