//! A private Garage (a real distributed S3-compatible store, https://garagehq.deuxfleurs.fr) for
//! the S3 blob store's tests: one node, SQLite metadata, in a temp folder, RPC and S3 API on
//! loopback ports picked at start, with one bucket and one key allowed on it. Stopped (killed)
//! and started again on the same ports and data by `stop` / `start`, killed on drop.
//!
//! The `garage` binary comes from `WHARF_GARAGE`, the `PATH` or `~/.cargo/bin` (`.ci/run`
//! installs it: `cargo install garage --locked --no-default-features --features
//! bundled-libs,sqlite`). Without it the test fails, saying how to install it: these tests
//! are not skipped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wharf_store::blob_s3::{S3BlobStore, S3Config};

pub const BUCKET: &str = "wharf-test";
const KEY_NAME: &str = "wharf-test-key";

pub struct Garage {
    dir: tempfile::TempDir,
    binary: PathBuf,
    config: PathBuf,
    child: Option<Child>,
    s3_port: u16,
    key_id: String,
    secret: String,
}

/// The `garage` binary, or a panic that says how to get one.
pub fn garage_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("WHARF_GARAGE") {
        return PathBuf::from(p);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("garage");
            if p.is_file() {
                return p;
            }
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        let p = Path::new(&home).join(".cargo/bin/garage");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "\n\n*** the S3 tests need the `garage` binary (a real S3 server), and found none ***\n\
         install it once with\n    \
         cargo install garage --locked --no-default-features --features bundled-libs,sqlite\n\
         (.ci/run does), or point WHARF_GARAGE at one.\n"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Garage {
    /// Starts a fresh node, lays it out, creates the bucket and the key, and waits until the
    /// S3 API answers.
    pub fn start_new() -> Garage {
        let binary = garage_binary();
        let dir = tempfile::tempdir().expect("a temp folder");
        let rpc_port = free_port();
        let s3_port = free_port();
        let secret: [u8; 32] = rand::random();
        let rpc_secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let config = dir.path().join("garage.toml");
        std::fs::write(
            &config,
            format!(
                "metadata_dir = \"{meta}\"\n\
                 data_dir = \"{data}\"\n\
                 db_engine = \"sqlite\"\n\
                 replication_factor = 1\n\
                 rpc_bind_addr = \"127.0.0.1:{rpc_port}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc_port}\"\n\
                 rpc_secret = \"{rpc_secret}\"\n\
                 [s3_api]\n\
                 s3_region = \"garage\"\n\
                 api_bind_addr = \"127.0.0.1:{s3_port}\"\n",
                meta = dir.path().join("meta").display(),
                data = dir.path().join("data").display(),
            ),
        )
        .expect("writing garage.toml");
        let mut g = Garage {
            dir,
            binary,
            config,
            child: None,
            s3_port,
            key_id: String::new(),
            secret: String::new(),
        };
        g.start();
        let node = g.cli_retrying(&["node", "id", "-q"]);
        let node = node
            .trim()
            .split('@')
            .next()
            .unwrap_or_default()
            .to_string();
        assert!(!node.is_empty(), "garage node id printed nothing");
        g.cli_retrying(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        g.cli(&["layout", "apply", "--version", "1"]);
        g.cli(&["bucket", "create", BUCKET]);
        let created = g.cli(&["key", "create", KEY_NAME]);
        for line in created.lines() {
            let value = line.split_whitespace().last().unwrap_or_default();
            let lower = line.to_ascii_lowercase();
            if lower.contains("key id") {
                g.key_id = value.to_string();
            } else if lower.contains("secret key") {
                g.secret = value.to_string();
            }
        }
        assert!(
            !g.key_id.is_empty() && !g.secret.is_empty(),
            "no key in the output of garage key create:\n{created}"
        );
        g.cli(&[
            "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", KEY_NAME,
        ]);
        g.wait_ready();
        g
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The bucket under `prefix`, with short time limits so a test of an outage ends quickly.
    pub fn s3_config(&self, prefix: &str) -> S3Config {
        S3Config {
            bucket: BUCKET.into(),
            prefix: prefix.into(),
            endpoint: Some(self.endpoint()),
            region: Some("garage".into()),
            path_style: true,
            access_key_id: Some(self.key_id.clone()),
            secret_access_key: Some(self.secret.clone()),
            timeout: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        }
    }

    /// The `[store.s3]` table of a wharf.toml for this bucket under `prefix`.
    pub fn toml(&self, prefix: &str) -> String {
        format!(
            "[store.s3]\nbucket = \"{BUCKET}\"\nprefix = \"{prefix}\"\nendpoint = \"{}\"\n\
             region = \"garage\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\n\
             retry_secs = 2\n",
            self.endpoint(),
            self.key_id,
            self.secret
        )
    }

    /// Starts the server process (again), on the same ports and data.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "garage is running already");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("garage.log"))
            .expect("garage.log");
        let err = log.try_clone().expect("garage.log");
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.binary.display()));
        self.child = Some(child);
        if !self.key_id.is_empty() {
            self.wait_ready();
        }
    }

    /// Kills the server process (the S3 API stops answering at once).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What the server logged, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default()
    }

    /// Waits until the bucket answers S3 requests.
    fn wait_ready(&self) {
        let store = S3BlobStore::open(&self.s3_config("")).expect("an S3 client");
        let absent = "0".repeat(64);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match store.size_of(&absent) {
                Ok(_) => return,
                Err(e) if Instant::now() > deadline => {
                    panic!("garage's S3 API never answered: {e}\n{}", self.log())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .env("RUST_LOG", "garage=warn")
            .output()
            .map_err(|e| format!("running garage: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "garage {} failed ({}):\n{}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Runs a CLI command against the node; panics with its output when it fails.
    pub fn cli(&self, args: &[&str]) -> String {
        self.run(args)
            .unwrap_or_else(|e| panic!("{e}\n{}", self.log()))
    }

    /// `cli`, retried for a while: the first command waits for the server to listen.
    fn cli_retrying(&self, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.run(args) {
                Ok(out) => return out,
                Err(e) if Instant::now() > deadline => panic!("{e}\n{}", self.log()),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}
