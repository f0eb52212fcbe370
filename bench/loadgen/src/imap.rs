//! IMAP workloads: the command mix, mailbox filling with APPEND, a full-mailbox download, SEARCH TEXT
//! latency, many idle sessions in IDLE, and per-user message counts (STATUS). Literals in responses are
//! read by their announced length, so FETCH BODY[] of any size works on any server.

use crate::args::Args;
use crate::mem;
use crate::msg;
use crate::net::{Conn, Endpoint};
use crate::stats::Stats;
use anyhow::{Result, bail};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

pub struct Imap {
    c: Conn,
    next: u64,
    line: Vec<u8>,
    /// Untagged lines of the last command (without literal contents), when collecting.
    pub untagged: Vec<String>,
    collect: bool,
}

/// `{123}` or `{123+}` at the end of a line (before CRLF): the length of the literal that follows.
fn literal_len(line: &[u8]) -> Option<usize> {
    let body = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))?;
    let body = body.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = &body[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

impl Imap {
    pub async fn connect(ep: &Endpoint) -> Result<Imap> {
        let mut c = Conn::connect(ep).await?;
        let mut line = Vec::new();
        c.line(&mut line).await?;
        if !line.starts_with(b"* OK") && !line.starts_with(b"* PREAUTH") {
            bail!("greeting {:?}", String::from_utf8_lossy(&line).trim_end());
        }
        Ok(Imap {
            c,
            next: 0,
            line,
            untagged: Vec::new(),
            collect: false,
        })
    }

    fn tag(&mut self) -> String {
        self.next += 1;
        format!("b{}", self.next)
    }

    /// Reads until the tagged reply of `tag`; fails unless it is OK.
    async fn done(&mut self, tag: &str) -> Result<()> {
        self.untagged.clear();
        loop {
            self.c.line(&mut self.line).await?;
            let mut text = String::new();
            if self.collect {
                text.push_str(&String::from_utf8_lossy(&self.line));
            }
            while let Some(n) = literal_len(&self.line) {
                self.c.exact(n, None).await?;
                self.c.line(&mut self.line).await?;
                if self.collect {
                    text.push_str(&String::from_utf8_lossy(&self.line));
                }
            }
            if self.line.starts_with(tag.as_bytes()) && self.line.get(tag.len()) == Some(&b' ') {
                let rest = &self.line[tag.len() + 1..];
                if rest.starts_with(b"OK") {
                    return Ok(());
                }
                bail!("{}", String::from_utf8_lossy(&self.line).trim_end());
            }
            if self.collect && self.line.first() != Some(&b'+') {
                self.untagged.push(text);
            }
        }
    }

    /// Waits for a continuation request ("+ ...").
    async fn cont(&mut self, tag: &str) -> Result<()> {
        loop {
            self.c.line(&mut self.line).await?;
            if self.line.starts_with(b"+") {
                return Ok(());
            }
            if self.line.starts_with(tag.as_bytes()) {
                bail!("{}", String::from_utf8_lossy(&self.line).trim_end());
            }
            while let Some(n) = literal_len(&self.line) {
                self.c.exact(n, None).await?;
                self.c.line(&mut self.line).await?;
            }
        }
    }

    pub async fn cmd(&mut self, text: &str) -> Result<()> {
        let tag = self.tag();
        self.c.send(format!("{tag} {text}\r\n").as_bytes()).await?;
        self.done(&tag).await
    }

    /// Runs a command and returns its untagged lines.
    pub async fn cmd_lines(&mut self, text: &str) -> Result<Vec<String>> {
        self.collect = true;
        let r = self.cmd(text).await;
        self.collect = false;
        r?;
        Ok(std::mem::take(&mut self.untagged))
    }

    pub async fn login(&mut self, user: &str, pass: &str) -> Result<()> {
        self.cmd(&format!("LOGIN \"{user}\" \"{pass}\"")).await
    }

    /// SELECT INBOX; returns EXISTS.
    pub async fn select(&mut self) -> Result<u64> {
        let lines = self.cmd_lines("SELECT INBOX").await?;
        Ok(lines
            .iter()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let (_, n, word) = (f.next(), f.next(), f.next());
                (word == Some("EXISTS")).then(|| n.and_then(|n| n.parse().ok()))?
            })
            .next_back()
            .unwrap_or(0))
    }

    pub async fn append(&mut self, body: &[u8]) -> Result<()> {
        let tag = self.tag();
        self.c
            .send(format!("{tag} APPEND INBOX {{{}}}\r\n", body.len()).as_bytes())
            .await?;
        self.cont(&tag).await?;
        let mut data = body.to_vec();
        data.extend_from_slice(b"\r\n");
        self.c.send(&data).await?;
        self.done(&tag).await
    }

    /// Enters IDLE and returns once the server confirms it.
    pub async fn idle_start(&mut self) -> Result<String> {
        let tag = self.tag();
        self.c.send(format!("{tag} IDLE\r\n").as_bytes()).await?;
        self.cont(&tag).await?;
        Ok(tag)
    }

    pub async fn idle_done(&mut self, tag: &str) -> Result<()> {
        self.c.send(b"DONE\r\n").await?;
        self.done(tag).await
    }

    pub async fn logout(mut self) -> Result<()> {
        let tag = self.tag();
        self.c.send(format!("{tag} LOGOUT\r\n").as_bytes()).await?;
        self.done(&tag).await?;
        self.c.shutdown().await;
        Ok(())
    }

    pub fn received(&self) -> u64 {
        self.c.received
    }
}

fn timed<T>(st: &mut Stats, op: &'static str, t: Instant, r: Result<T>) -> Result<T> {
    if r.is_ok() {
        st.record(op, t.elapsed());
    }
    r
}

struct MixJob {
    ep: Endpoint,
    user: String,
    pass: String,
    inner: usize,
    size: usize,
    seed: u64,
}

/// One session of the mix: LOGIN, SELECT, FETCH 1:* (FLAGS UID), then `inner` rounds of
/// 2 × FETCH n BODY.PEEK[], STORE +FLAGS, SEARCH UNSEEN, then APPEND, an IDLE round trip and LOGOUT.
async fn mix_session(j: &MixJob, round: u64, st: &mut Stats) -> Result<()> {
    let t = Instant::now();
    let mut s = Imap::connect(&j.ep).await?;
    timed(st, "connect", t, Ok(()))?;
    let t = Instant::now();
    let r = s.login(&j.user, &j.pass).await;
    timed(st, "login", t, r)?;
    let t = Instant::now();
    let r = s.select().await;
    let exists = timed(st, "select", t, r)?;
    let t = Instant::now();
    let r = s.cmd("FETCH 1:* (FLAGS UID)").await;
    timed(st, "fetch_flags", t, r)?;
    let mut x = j.seed.wrapping_add(round.wrapping_mul(7919)) | 1;
    let mut pick = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % exists.max(1) + 1
    };
    for _ in 0..j.inner {
        if exists > 0 {
            for _ in 0..2 {
                let n = pick();
                let t = Instant::now();
                let r = s.cmd(&format!("FETCH {n} BODY.PEEK[]")).await;
                timed(st, "fetch_body", t, r)?;
            }
            let n = pick();
            let flag = if n.is_multiple_of(2) {
                "\\Seen"
            } else {
                "\\Flagged"
            };
            let t = Instant::now();
            let r = s.cmd(&format!("STORE {n} +FLAGS ({flag})")).await;
            timed(st, "store", t, r)?;
        }
        let t = Instant::now();
        let r = s.cmd("SEARCH UNSEEN").await;
        timed(st, "search_unseen", t, r)?;
    }
    let body = msg::message(j.seed ^ round, &j.user, &j.user, j.size);
    let t = Instant::now();
    let r = s.append(&body).await;
    timed(st, "append", t, r)?;
    let t = Instant::now();
    let r = async {
        let tag = s.idle_start().await?;
        s.idle_done(&tag).await
    }
    .await;
    timed(st, "idle", t, r)?;
    let t = Instant::now();
    let r = s.logout().await;
    timed(st, "logout", t, r)?;
    Ok(())
}

/// One logged-in session that never logs out (imaptest's `logout=0`): LOGIN once, then rounds of
/// SELECT, FETCH 1:* (FLAGS UID), `inner` × (2 × FETCH n BODY.PEEK[], STORE +FLAGS, SEARCH UNSEEN),
/// STATUS, an APPEND and the EXPUNGE of the oldest message (the mailbox keeps its size), until the
/// deadline. Every latency goes to `st` and to the shared
/// interval bucket that `--report-every` prints.
async fn steady_session(
    j: &MixJob,
    deadline: Instant,
    st: &mut Stats,
    bucket: &std::sync::Mutex<Stats>,
) -> Result<()> {
    let mut s = Imap::connect(&j.ep).await?;
    s.login(&j.user, &j.pass).await?;
    let mut round = 0u64;
    let record = |st: &mut Stats, op: &'static str, t: Instant| {
        st.record(op, t.elapsed());
        if let Ok(mut b) = bucket.lock() {
            b.record(op, t.elapsed());
        }
    };
    while Instant::now() < deadline {
        round += 1;
        let t = Instant::now();
        let exists = s.select().await?;
        record(st, "select", t);
        let t = Instant::now();
        s.cmd("FETCH 1:* (FLAGS UID)").await?;
        record(st, "fetch_flags", t);
        let mut x = j.seed.wrapping_add(round.wrapping_mul(7919)) | 1;
        let mut pick = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % exists.max(1) + 1
        };
        for _ in 0..j.inner {
            if exists > 0 {
                for _ in 0..2 {
                    let n = pick();
                    let t = Instant::now();
                    s.cmd(&format!("FETCH {n} BODY.PEEK[]")).await?;
                    record(st, "fetch_body", t);
                }
                let n = pick();
                let flag = if n.is_multiple_of(2) {
                    "\\Seen"
                } else {
                    "\\Flagged"
                };
                let op = if round.is_multiple_of(2) { "+" } else { "-" };
                let t = Instant::now();
                s.cmd(&format!("STORE {n} {op}FLAGS ({flag})")).await?;
                record(st, "store", t);
            }
            let t = Instant::now();
            s.cmd("SEARCH UNSEEN").await?;
            record(st, "search_unseen", t);
        }
        let t = Instant::now();
        s.cmd("STATUS INBOX (MESSAGES UNSEEN UIDNEXT)").await?;
        record(st, "status", t);
        let body = msg::message(j.seed ^ round, &j.user, &j.user, j.size);
        let t = Instant::now();
        s.append(&body).await?;
        record(st, "append", t);
        // Expunge the oldest message, so the mailbox keeps its size and a drift in latency over
        // a long run is the server's, not a growing mailbox's.
        let t = Instant::now();
        s.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)").await?;
        s.cmd("EXPUNGE").await?;
        record(st, "expunge", t);
    }
    s.logout().await
}

/// `imap-mix --logout 0`: `--clients` sessions that stay logged in for `--duration` seconds
/// (`steady_session`). With `--report-every S`, one JSON line per S seconds on stderr with that
/// interval's latencies, so a long run shows whether they drift.
async fn mix_steady(args: &Args) -> Result<Value> {
    let clients: usize = args.num("clients", 50)?;
    let users: usize = args.num("users", 100)?;
    let duration = Duration::from_secs_f64(args.num("duration", 10.0)?);
    let every = args.num("report-every", 0.0f64)?;
    let pass = args.required("password")?;
    let inner: usize = args.num("inner", 5)?;
    let size: usize = args.num("size", 4096)?;
    let start = Instant::now();
    let deadline = start + duration;
    let bucket = Arc::new(std::sync::Mutex::new(Stats::default()));
    let reporter = (every > 0.0).then(|| {
        let bucket = bucket.clone();
        tokio::spawn(async move {
            let period = Duration::from_secs_f64(every);
            let mut next = start + period;
            loop {
                tokio::time::sleep_until(tokio::time::Instant::from_std(next)).await;
                let mut got = match bucket.lock() {
                    Ok(mut b) => std::mem::take(&mut *b),
                    Err(_) => return,
                };
                let mut line = got.summary(period);
                line["t_s"] = json!(start.elapsed().as_secs_f64().round());
                eprintln!("{line}");
                next += period;
            }
        })
    });
    let mut tasks = Vec::new();
    for i in 0..clients {
        let job = MixJob {
            ep: args.endpoint()?,
            user: args.user(i % users + 1),
            pass: pass.clone(),
            inner,
            size,
            seed: 0x5eed_0000 + i as u64,
        };
        let bucket = bucket.clone();
        tasks.push(tokio::spawn(async move {
            let mut st = Stats::default();
            while Instant::now() < deadline {
                if let Err(e) = steady_session(&job, deadline, &mut st, &bucket).await {
                    st.error(&e);
                    // A refusing server must not turn this into a busy loop.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            st
        }));
    }
    let mut all = Stats::default();
    for t in tasks {
        all.merge(t.await?);
    }
    if let Some(r) = reporter {
        r.abort();
    }
    Ok(all.summary(start.elapsed()))
}

pub async fn mix(args: &Args) -> Result<Value> {
    if args.num("logout", 1u8)? == 0 {
        return mix_steady(args).await;
    }
    let clients: usize = args.num("clients", 50)?;
    let users: usize = args.num("users", 100)?;
    let duration = Duration::from_secs_f64(args.num("duration", 10.0)?);
    let pass = args.required("password")?;
    let inner: usize = args.num("inner", 5)?;
    let size: usize = args.num("size", 4096)?;
    // Sessions per second over all clients (0: each client starts its next session at once).
    // A fixed rate offers two servers the same load, so their latencies compare like with like.
    let rate: f64 = args.num("rate", 0.0)?;
    let start = Instant::now();
    let deadline = start + duration;
    let tickets = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..clients {
        let tickets = tickets.clone();
        let job = MixJob {
            ep: args.endpoint()?,
            user: args.user(i % users + 1),
            pass: pass.clone(),
            inner,
            size,
            seed: 0x5eed_0000 + i as u64,
        };
        tasks.push(tokio::spawn(async move {
            let mut st = Stats::default();
            let mut round = 0;
            while Instant::now() < deadline {
                if rate > 0.0 {
                    let k = tickets.fetch_add(1, Ordering::Relaxed);
                    let at = start + Duration::from_secs_f64(k as f64 / rate);
                    if at >= deadline {
                        break;
                    }
                    tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                }
                round += 1;
                if let Err(e) = mix_session(&job, round, &mut st).await {
                    st.error(&e);
                    // A refusing server must not turn this into a busy loop.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            st
        }));
    }
    let mut all = Stats::default();
    for t in tasks {
        all.merge(t.await?);
    }
    let wall = start.elapsed();
    Ok(all.summary(wall))
}

/// APPENDs `--messages` messages of `--size` bytes to the INBOX of each user in `--from`..=`--to`,
/// over `--conns` connections at once; the generator's sequence numbers start at `--first`
/// (default 0), so a mailbox can be grown with new messages rather than copies.
pub async fn fill(args: &Args) -> Result<Value> {
    let from: usize = args.num("from", 1)?;
    let to: usize = args.num("to", 1)?;
    let per_user: u64 = args.num("messages", 100)?;
    let size: usize = args.num("size", 4096)?;
    let conns: usize = args.num("conns", 4)?;
    let first: u64 = args.num("first", 0)?;
    let pass = args.required("password")?;
    let total = (to + 1 - from) as u64 * per_user;
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let next = next.clone();
        let ep = args.endpoint()?;
        let pass = pass.clone();
        let users: Vec<String> = (from..=to).map(|n| args.user(n)).collect();
        tasks.push(tokio::spawn(async move {
            let mut st = Stats::default();
            let mut cur: Option<(usize, Imap)> = None;
            let mut failing = 0;
            // A server that keeps refusing ends the fill instead of spinning through the whole count.
            while failing < 10 {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= total {
                    break;
                }
                let u = (k / per_user) as usize;
                let r: Result<()> = async {
                    if cur.as_ref().map(|c| c.0) != Some(u) {
                        if let Some((_, old)) = cur.take() {
                            old.logout().await?;
                        }
                        let mut s = Imap::connect(&ep).await?;
                        s.login(&users[u], &pass).await?;
                        cur = Some((u, s));
                    }
                    let body = msg::message(first + k, &users[u], &users[u], size);
                    if let Some((_, s)) = cur.as_mut() {
                        let t = Instant::now();
                        s.append(&body).await?;
                        st.record("append", t.elapsed());
                    }
                    Ok(())
                }
                .await;
                match r {
                    Ok(()) => failing = 0,
                    Err(e) => {
                        st.error(&e);
                        cur = None;
                        failing += 1;
                    }
                }
            }
            if let Some((_, s)) = cur {
                let _ = s.logout().await;
            }
            st
        }));
    }
    let mut all = Stats::default();
    for t in tasks {
        all.merge(t.await?);
    }
    let wall = start.elapsed();
    let n = all.count("append");
    let mut out = all.summary(wall);
    out["messages"] = json!(n);
    out["messages_per_s"] = json!(n as f64 / wall.as_secs_f64());
    Ok(out)
}

/// Downloads a whole mailbox with one FETCH 1:* BODY.PEEK[] after a fresh login.
pub async fn download(args: &Args) -> Result<Value> {
    let user = args.user(args.num("user", 1)?);
    let pass = args.required("password")?;
    let start = Instant::now();
    let mut s = Imap::connect(&args.endpoint()?).await?;
    s.login(&user, &pass).await?;
    let exists = s.select().await?;
    let before = s.received();
    let t = Instant::now();
    s.cmd("FETCH 1:* (UID FLAGS BODY.PEEK[])").await?;
    let took = t.elapsed();
    let bytes = s.received() - before;
    s.logout().await?;
    Ok(json!({
        "messages": exists,
        "bytes": bytes,
        "fetch_s": took.as_secs_f64(),
        "wall_s": start.elapsed().as_secs_f64(),
        "messages_per_s": exists as f64 / took.as_secs_f64().max(1e-9),
        "mib_per_s": bytes as f64 / 1048576.0 / took.as_secs_f64().max(1e-9),
    }))
}

/// SEARCH latency: `--repeat` searches `--key` (default `TEXT`; `"FUZZY TEXT"` for word search,
/// RFC 6203) for `--text` (the generator's rare marker word by default).
pub async fn search(args: &Args) -> Result<Value> {
    let user = args.user(args.num("user", 1)?);
    let pass = args.required("password")?;
    let text = args.str("text", msg::MARKER);
    let key = args.str("key", "TEXT");
    let repeat: usize = args.num("repeat", 5)?;
    let mut s = Imap::connect(&args.endpoint()?).await?;
    s.login(&user, &pass).await?;
    let exists = s.select().await?;
    let mut st = Stats::default();
    let mut first_ms = 0.0;
    let mut hits = 0;
    let start = Instant::now();
    for i in 0..repeat {
        let t = Instant::now();
        let lines = s.cmd_lines(&format!("SEARCH {key} \"{text}\"")).await?;
        let took = t.elapsed();
        if i == 0 {
            first_ms = took.as_secs_f64() * 1000.0;
        }
        st.record("search_text", took);
        hits = lines
            .iter()
            .filter(|l| l.starts_with("* SEARCH"))
            .map(|l| l.split_whitespace().count().saturating_sub(2))
            .sum::<usize>();
    }
    let wall = start.elapsed();
    s.logout().await?;
    let mut out = st.summary(wall);
    out["messages"] = json!(exists);
    out["hits"] = json!(hits);
    out["first_ms"] = json!(first_ms);
    Ok(out)
}

/// Opens `--sessions` TLS sessions (LOGIN, SELECT INBOX, IDLE), `--parallel` handshakes at a time, then
/// measures the server's memory (`--pid`, process trees) against the baseline before the first connect.
pub async fn idle(args: &Args) -> Result<Value> {
    let n: usize = args.num("sessions", 100)?;
    let users: usize = args.num("users", 100)?;
    let parallel: usize = args.num("parallel", 64)?;
    let hold = Duration::from_secs_f64(args.num("hold", 2.0)?);
    let pass = args.required("password")?;
    let pids = mem::pids(args)?;
    let base = mem::measure(&pids);
    let sem = Arc::new(Semaphore::new(parallel));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let ep = args.endpoint()?;
        let user = args.user(i % users + 1);
        let pass = pass.clone();
        let sem = sem.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await?;
            let mut s = Imap::connect(&ep).await?;
            s.login(&user, &pass).await?;
            s.select().await?;
            let tag = s.idle_start().await?;
            Ok::<_, anyhow::Error>((s, tag))
        }));
    }
    let mut open = Vec::new();
    let mut errors = 0u64;
    let mut last_error = None;
    for t in tasks {
        match t.await? {
            Ok(s) => open.push(s),
            Err(e) => {
                errors += 1;
                last_error = Some(format!("{e:#}"));
            }
        }
    }
    let setup = start.elapsed();
    // Let the server settle (lazy allocations, login processes exiting) before measuring.
    tokio::time::sleep(hold).await;
    let loaded = mem::measure(&pids);
    let ok = open.len().max(1) as f64;
    let per_rss = loaded.rss_kb.saturating_sub(base.rss_kb) as f64 / ok;
    let per_pss = loaded.pss_kb.saturating_sub(base.pss_kb) as f64 / ok;
    let established = open.len();
    // Leave IDLE politely on a sample, then drop everything at once.
    for (s, tag) in open.iter_mut().take(10) {
        let _ = s.idle_done(tag).await;
    }
    drop(open);
    Ok(json!({
        "sessions": established,
        "errors": errors,
        "last_error": last_error,
        "setup_s": setup.as_secs_f64(),
        "sessions_per_s": established as f64 / setup.as_secs_f64().max(1e-9),
        "baseline": base.json(),
        "loaded": loaded.json(),
        "rss_kib_per_session": per_rss,
        "pss_kib_per_session": per_pss,
    }))
}

/// Total INBOX messages of users 1..=`--users` (STATUS INBOX (MESSAGES)).
pub async fn count(args: &Args) -> Result<Value> {
    let users: usize = args.num("users", 100)?;
    let pass = args.required("password")?;
    let ep = args.endpoint()?;
    let mut total = 0u64;
    for u in 1..=users {
        let mut s = Imap::connect(&ep).await?;
        s.login(&args.user(u), &pass).await?;
        let lines = s.cmd_lines("STATUS INBOX (MESSAGES)").await?;
        for l in lines {
            if let Some(i) = l.find("MESSAGES ") {
                total += l[i + 9..]
                    .trim_start()
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        s.logout().await?;
    }
    Ok(json!({"messages": total}))
}

#[cfg(test)]
mod tests {
    use super::literal_len;

    #[test]
    fn literal_lengths() {
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {123}\r\n"), Some(123));
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {7+}\r\n"), Some(7));
        assert_eq!(literal_len(b"* 1 FETCH (FLAGS (\\Seen))\r\n"), None);
        assert_eq!(literal_len(b"* OK {x}\r\n"), None);
    }
}
