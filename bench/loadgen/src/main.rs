//! Load client for `bench/run`: drives any SMTP submission, IMAP or POP3 server by host, port, users and
//! password, and prints one JSON object of results on stdout. It knows nothing of Wharf, Dovecot or Postfix
//! beyond the protocols, so the same code measures every server.

mod args;
mod imap;
mod mem;
mod msg;
mod net;
mod pop3;
mod smtp;
mod stats;

use anyhow::{Result, bail};

const USAGE: &str = "usage: wharf-loadgen <submit|imap-mix|fill|maildir|download|search|idle|count|pop3|mem|sample> [--key value]...
common: --host 127.0.0.1 --port N --tls (implicit TLS) --user-fmt 'user{}@bench.test' --users N --password P
see bench/loadgen/src/*.rs and docs/benchmarks.md for each workload's options";

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let code = match run(argv) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("wharf-loadgen: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn run(argv: Vec<String>) -> Result<()> {
    let Some((cmd, rest)) = argv.split_first() else {
        bail!("{USAGE}");
    };
    let args = args::Args::parse(rest)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.num("threads", 2)?)
        .enable_all()
        .build()?;
    let out = rt.block_on(async {
        match cmd.as_str() {
            "submit" => smtp::submit(&args).await,
            "imap-mix" => imap::mix(&args).await,
            "fill" => imap::fill(&args).await,
            "download" => imap::download(&args).await,
            "search" => imap::search(&args).await,
            "idle" => imap::idle(&args).await,
            "count" => imap::count(&args).await,
            "pop3" => pop3::run(&args).await,
            "maildir" => msg::write_maildir(&args),
            "mem" => mem::once(&args),
            "sample" => mem::sample(&args).await,
            other => bail!("unknown workload {other:?}\n{USAGE}"),
        }
    })?;
    println!("{out}");
    Ok(())
}
