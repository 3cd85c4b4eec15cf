//! How a command reaches the `cairn serve` that holds its data dir.
//!
//! The embedded store has one owner per data dir. While `cairn serve` runs, `cairn
//! reindex` (the nightly cron job) cannot open the store itself, so it hands the run to the
//! server instead. On start-up the server writes `<data dir>/serve.json` (readable by its
//! owner only) with its address and a fresh random token; the administrative routes
//! require that token, so only someone who can read the data dir can drive them. The file
//! is removed when the server stops; a stale one (after a crash) is harmless, as the
//! commands only use it while the data-dir lock says a server is running.

use anyhow::Context;
use cairn_core::ErrorKind;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Name of the hand-off file inside a data dir.
pub const SERVE_FILE: &str = "serve.json";

/// What a running server publishes about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServeInfo {
    /// Base URL to reach it from this machine, e.g. `http://127.0.0.1:7700`.
    pub url: String,
    /// Bearer token of the administrative routes.
    pub token: String,
    pub pid: u32,
}

/// A random token (256 bits, hex) from the operating system.
pub fn new_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read random bytes for the admin token")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The URL that reaches a server listening on `addr` from this machine (a wildcard
/// address is reached through loopback).
pub fn local_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// Writes `info` into `data_dir` (mode 0600, replaced atomically). Returns the path.
pub fn publish(data_dir: &Path, info: &ServeInfo) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join(SERVE_FILE);
    let tmp = data_dir.join(format!("{SERVE_FILE}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(&serde_json::to_vec_pretty(info)?)?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Removes the hand-off file if it is still the one `info` wrote.
pub fn withdraw(data_dir: &Path, info: &ServeInfo) {
    if find(data_dir).as_ref() == Some(info) {
        let _ = std::fs::remove_file(data_dir.join(SERVE_FILE));
    }
}

/// The server published in `data_dir`, if any.
pub fn find(data_dir: &Path) -> Option<ServeInfo> {
    let text = std::fs::read(data_dir.join(SERVE_FILE)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The server that holds `data_dir`, if one does; `None` when the data dir is free (the
/// caller opens it itself). Another process that is not a server holding it is the lock's
/// `Conflict` error.
pub fn held_by_server(data_dir: &Path) -> anyhow::Result<Option<ServeInfo>> {
    match cairn_index::DataDirLock::acquire(data_dir) {
        Ok(lock) => {
            drop(lock);
            Ok(None)
        }
        Err(e) if e.kind == ErrorKind::Conflict => match find(data_dir) {
            Some(server) => Ok(Some(server)),
            None => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}

/// POSTs `body` to `route` of the server and decodes its JSON answer; see [`call`].
pub fn post<B: Serialize, T: serde::de::DeserializeOwned>(
    info: &ServeInfo,
    route: &str,
    body: &B,
) -> anyhow::Result<T> {
    call(info, "POST", route, Some(body))
}

/// Sends a request to `route` of the server with the data dir's token and decodes its
/// JSON answer. An error answer becomes a [`cairn_core::Error`] of the matching kind (so
/// exit codes follow it) with the server's message.
pub fn call<B: Serialize, T: serde::de::DeserializeOwned>(
    info: &ServeInfo,
    method: &str,
    route: &str,
    body: Option<&B>,
) -> anyhow::Result<T> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}{route}", info.url);
    let auth = format!("Bearer {}", info.token);
    let sent = match (method, body) {
        ("POST", Some(b)) => agent.post(&url).header("authorization", &auth).send_json(b),
        ("DELETE", _) => agent.delete(&url).header("authorization", &auth).call(),
        _ => agent.get(&url).header("authorization", &auth).call(),
    };
    let mut resp = sent.with_context(|| format!("cannot reach cairn serve at {}", info.url))?;
    let status = resp.status();
    let text = resp
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_to_string()
        .with_context(|| format!("cannot read the answer of {url}"))?;
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or(text);
        let kind = match status.as_u16() {
            400 | 413 => ErrorKind::User,
            401 => ErrorKind::Unauthenticated,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            503 => ErrorKind::Transient,
            _ => ErrorKind::Internal,
        };
        return Err(cairn_core::Error::new(
            kind,
            format!("cairn serve answered {status}: {message}"),
        )
        .into());
    }
    serde_json::from_str(&text).with_context(|| format!("unexpected answer from {url}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_info_is_private_and_withdrawn() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let info = ServeInfo {
            url: local_url("0.0.0.0:7700".parse().unwrap()),
            token: new_token().unwrap(),
            pid: 7,
        };
        assert_eq!(info.url, "http://127.0.0.1:7700");
        assert_eq!(info.token.len(), 64);
        assert_ne!(info.token, new_token().unwrap());
        let path = publish(dir.path(), &info).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(find(dir.path()), Some(info.clone()));
        // Another server's file is left alone.
        let other = ServeInfo {
            pid: 8,
            ..info.clone()
        };
        withdraw(dir.path(), &other);
        assert!(find(dir.path()).is_some());
        withdraw(dir.path(), &info);
        assert_eq!(find(dir.path()), None);
        assert_eq!(local_url("[::]:80".parse().unwrap()), "http://[::1]:80");
    }
}
