//! SMTP submission load: S sessions over implicit TLS, each authenticating with AUTH PLAIN as one user and
//! sending messages (MAIL, RCPT, DATA, no pipelining) to random users until the shared count is used up.

use crate::args::Args;
use crate::msg;
use crate::net::{Conn, Endpoint};
use crate::stats::Stats;
use anyhow::{Result, bail};
use base64::Engine;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

async fn reply(c: &mut Conn, line: &mut Vec<u8>) -> Result<u16> {
    loop {
        c.line(line).await?;
        if line.len() < 4 {
            bail!("short SMTP reply {:?}", String::from_utf8_lossy(line));
        }
        if line[3] != b'-' {
            let code = std::str::from_utf8(&line[..3])?.parse()?;
            return Ok(code);
        }
    }
}

async fn expect(c: &mut Conn, line: &mut Vec<u8>, want: u16) -> Result<()> {
    let got = reply(c, line).await?;
    if got != want {
        bail!(
            "expected {want}, got {:?}",
            String::from_utf8_lossy(line).trim_end()
        );
    }
    Ok(())
}

struct Job {
    ep: Endpoint,
    user: String,
    password: String,
    users: usize,
    size: usize,
    user_fmt: String,
}

async fn session(job: &Job, left: &AtomicI64, seq0: u64, st: &mut Stats) -> Result<()> {
    let mut line = Vec::new();
    let mut c = Conn::connect(&job.ep).await?;
    expect(&mut c, &mut line, 220).await?;
    c.send(b"EHLO loadgen.bench.test\r\n").await?;
    expect(&mut c, &mut line, 250).await?;
    let t = Instant::now();
    let token = base64::engine::general_purpose::STANDARD
        .encode(format!("\0{}\0{}", job.user, job.password));
    c.send(format!("AUTH PLAIN {token}\r\n").as_bytes()).await?;
    expect(&mut c, &mut line, 235).await?;
    st.record("auth", t.elapsed());
    let mut seq = seq0;
    while left.fetch_sub(1, Ordering::Relaxed) > 0 {
        seq += 1;
        let rcpt = job
            .user_fmt
            .replace("{}", &((seq as usize % job.users) + 1).to_string());
        let body = msg::message(seq, &job.user, &rcpt, job.size);
        let t = Instant::now();
        c.send(format!("MAIL FROM:<{}>\r\n", job.user).as_bytes())
            .await?;
        expect(&mut c, &mut line, 250).await?;
        c.send(format!("RCPT TO:<{rcpt}>\r\n").as_bytes()).await?;
        expect(&mut c, &mut line, 250).await?;
        c.send(b"DATA\r\n").await?;
        expect(&mut c, &mut line, 354).await?;
        let mut data = body;
        data.extend_from_slice(b".\r\n");
        c.send(&data).await?;
        expect(&mut c, &mut line, 250).await?;
        st.record("message", t.elapsed());
    }
    c.send(b"QUIT\r\n").await?;
    let _ = reply(&mut c, &mut line).await;
    c.shutdown().await;
    Ok(())
}

pub async fn submit(args: &Args) -> Result<Value> {
    let sessions: usize = args.num("sessions", 20)?;
    let total: i64 = args.num("messages", 1000)?;
    let users: usize = args.num("users", 100)?;
    let size: usize = args.num("size", 4096)?;
    let password = args.required("password")?;
    let left = Arc::new(AtomicI64::new(total));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..sessions {
        let job = Job {
            ep: args.endpoint()?,
            user: args.user(s % users + 1),
            password: password.clone(),
            users,
            size,
            user_fmt: args.str("user-fmt", "user{}@bench.test"),
        };
        let left = left.clone();
        tasks.push(tokio::spawn(async move {
            let mut st = Stats::default();
            if let Err(e) = session(&job, &left, (s as u64) << 32, &mut st).await {
                st.error(&e);
            }
            st
        }));
    }
    let mut all = Stats::default();
    for t in tasks {
        all.merge(t.await?);
    }
    let wall = start.elapsed();
    let sent = all.count("message");
    let mut out = all.summary(wall);
    out["messages"] = json!(sent);
    out["messages_per_s"] = json!(sent as f64 / wall.as_secs_f64());
    Ok(out)
}
