//! POP3 download load: C clients at once, each logging in as its own user (USER/PASS) and retrieving up to
//! N messages with RETR, without deleting them.

use crate::args::Args;
use crate::net::{Conn, Endpoint};
use crate::stats::Stats;
use anyhow::{Result, bail};
use serde_json::{Value, json};
use std::time::Instant;

async fn ok(c: &mut Conn, line: &mut Vec<u8>) -> Result<()> {
    c.line(line).await?;
    if !line.starts_with(b"+OK") {
        bail!("POP3 error {:?}", String::from_utf8_lossy(line).trim_end());
    }
    Ok(())
}

async fn client(
    ep: Endpoint,
    user: String,
    pass: String,
    n: usize,
    st: &mut Stats,
) -> Result<usize> {
    let mut line = Vec::new();
    let t = Instant::now();
    let mut c = Conn::connect(&ep).await?;
    ok(&mut c, &mut line).await?;
    c.send(format!("USER {user}\r\n").as_bytes()).await?;
    ok(&mut c, &mut line).await?;
    c.send(format!("PASS {pass}\r\n").as_bytes()).await?;
    ok(&mut c, &mut line).await?;
    st.record("login", t.elapsed());
    c.send(b"STAT\r\n").await?;
    ok(&mut c, &mut line).await?;
    let count: usize = String::from_utf8_lossy(&line)
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut got = 0;
    for i in 1..=count.min(n) {
        let t = Instant::now();
        c.send(format!("RETR {i}\r\n").as_bytes()).await?;
        ok(&mut c, &mut line).await?;
        loop {
            c.line(&mut line).await?;
            if line == b".\r\n" {
                break;
            }
        }
        st.record("retr", t.elapsed());
        got += 1;
    }
    c.send(b"QUIT\r\n").await?;
    ok(&mut c, &mut line).await?;
    c.shutdown().await;
    Ok(got)
}

pub async fn run(args: &Args) -> Result<Value> {
    let clients: usize = args.num("clients", 50)?;
    let n: usize = args.num("messages", 100)?;
    let pass = args.required("password")?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let ep = args.endpoint()?;
        let user = args.user(i + 1);
        let pass = pass.clone();
        tasks.push(tokio::spawn(async move {
            let mut st = Stats::default();
            let got = match client(ep, user, pass, n, &mut st).await {
                Ok(g) => g,
                Err(e) => {
                    st.error(&e);
                    0
                }
            };
            (st, got)
        }));
    }
    let mut all = Stats::default();
    let mut total = 0;
    for t in tasks {
        let (st, got) = t.await?;
        all.merge(st);
        total += got;
    }
    let wall = start.elapsed();
    let mut out = all.summary(wall);
    out["messages"] = json!(total);
    out["messages_per_s"] = json!(total as f64 / wall.as_secs_f64());
    Ok(out)
}
