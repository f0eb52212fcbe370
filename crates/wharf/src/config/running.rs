//! `<data_dir>/listeners.json`: the addresses a running `wharf serve` actually bound (after
//! `--listen`, `--port-offset`, and ports the system chose for port 0), written atomically once
//! every listener is bound and removed on a clean stop, so that `wharf doctor` probes the ports
//! the server really uses. A file left by a process that is gone is ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file's name inside the data folder.
pub const FILE: &str = "listeners.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Running {
    /// The `wharf serve` process that wrote it.
    pub pid: u32,
    pub listeners: Vec<BoundListener>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundListener {
    pub name: String,
    pub protocol: String,
    pub tls: String,
    pub address: SocketAddr,
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// Writes the file through a temporary name and a rename, so readers never see half of it.
pub fn write(data_dir: &Path, running: &Running) -> std::io::Result<()> {
    let final_path = path(data_dir);
    let tmp = data_dir.join(format!(".{FILE}.{}", running.pid));
    let text = serde_json::to_vec_pretty(running).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &final_path)
}

/// Removes the file if it is still ours (a newer server may have replaced it).
pub fn remove(data_dir: &Path, pid: u32) {
    if read(data_dir).is_some_and(|r| r.pid == pid) {
        let _ = std::fs::remove_file(path(data_dir));
    }
}

/// The file of a server that is still running; `None` when there is none or its process is gone.
pub fn read_live(data_dir: &Path) -> Option<Running> {
    read(data_dir).filter(|r| process_alive(r.pid))
}

fn read(data_dir: &Path) -> Option<Running> {
    let text = std::fs::read(path(data_dir)).ok()?;
    serde_json::from_slice(&text).ok()
}

#[allow(
    unsafe_code,
    reason = "kill(2) with signal 0 has no safe wrapper; see SAFETY"
)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is delivered.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_stale_files() {
        let dir = tempfile::tempdir().unwrap();
        let r = Running {
            pid: std::process::id(),
            listeners: vec![BoundListener {
                name: "imap".into(),
                protocol: "imap".into(),
                tls: "starttls".into(),
                address: "127.0.0.1:10143".parse().unwrap(),
            }],
        };
        write(dir.path(), &r).unwrap();
        assert_eq!(read_live(dir.path()), Some(r.clone()));
        remove(dir.path(), r.pid + 1);
        assert!(path(dir.path()).exists(), "another pid's file stays");
        remove(dir.path(), r.pid);
        assert!(read_live(dir.path()).is_none());
        // A process that is gone: ignored.
        let stale = Running {
            pid: i32::MAX as u32,
            ..r
        };
        write(dir.path(), &stale).unwrap();
        assert!(read_live(dir.path()).is_none());
    }
}
