//! Running the real `cairn` binary: CLI invocations on a scratch data dir, and a server on a
//! free loopback port that is killed when the test ends.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn corpus_dir() -> PathBuf {
    root().join("tests/fixtures/corpus")
}

pub fn models_dir() -> PathBuf {
    let dir = std::env::var_os("CAIRN_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("models"));
    assert!(
        dir.join("minilm-l6/model.safetensors").exists(),
        "the embedding model is not installed in {}: run scripts/install-models",
        dir.display()
    );
    dir
}

/// A `cairn` command on `data_dir`, with the project's models and quiet logs.
pub fn cairn(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cairn"));
    c.arg("--data-dir")
        .arg(data_dir)
        .arg("--models-dir")
        .arg(models_dir());
    // Answers are extractive unless a test asks for a generator: `auto` would pick one on
    // a machine with a GPU or many cores.
    c.env_remove("CAIRN_CONFIG")
        .env_remove("RUST_LOG")
        .env("CAIRN_LOG", "warn")
        .env("CAIRN_GENERATE__BACKEND", "extractive");
    c.current_dir(root()); // no stray cairn.toml from elsewhere
    c
}

/// Runs a command and returns its output, failing the test with stderr when it fails.
pub fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn cairn");
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `cairn search --json` and the results' source file names, best first.
pub fn search_files(data: &Path, query: &str, mode: &str, k: usize) -> Vec<String> {
    let out = ok(cairn(data).args([
        "search",
        "--json",
        "--mode",
        mode,
        "-k",
        &k.to_string(),
        query,
    ]));
    json(&out)["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|h| file_name(h["source"].as_str().expect("source")))
        .collect()
}

pub fn file_name(source: &str) -> String {
    Path::new(source)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Copies the shipped corpus into `dir` (so tests can change files without touching it).
/// A scratch folder with the shipped corpus copied into `corpus/` and ingested into the
/// data dir `data/`; returns the folder (kept while it lives) and the data dir.
pub fn ingested() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (data, corpus) = (tmp.path().join("data"), tmp.path().join("corpus"));
    copy_corpus(&corpus);
    ok(cairn(&data).arg("ingest").arg(&corpus));
    (tmp, data)
}

pub fn copy_corpus(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for e in std::fs::read_dir(corpus_dir()).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        let n = name.to_string_lossy();
        if n.ends_with(".md") && n != "README.md" || n.ends_with(".txt") {
            std::fs::copy(e.path(), dir.join(&name)).unwrap();
        }
    }
}

/// A `cairn serve` process on a free loopback port, killed on drop.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    /// `cairn serve --no-auth`: requests without a key act as the default tenant's admin.
    pub fn start(data_dir: &Path, extra_env: &[(&str, &str)]) -> Server {
        Server::start_with(data_dir, &["--no-auth"], extra_env)
    }

    /// `cairn serve` with keys required.
    pub fn start_keyed(data_dir: &Path, extra_env: &[(&str, &str)]) -> Server {
        Server::start_with(data_dir, &[], extra_env)
    }

    pub fn start_with(data_dir: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Server {
        Server::spawn(data_dir, args, extra_env, Stdio::inherit())
    }

    /// `cairn serve` with keys required, its log (stderr) written to `log`, at info level.
    pub fn start_logged(data_dir: &Path, extra_env: &[(&str, &str)], log: &Path) -> Server {
        let file = std::fs::File::create(log).unwrap();
        let mut env = extra_env.to_vec();
        env.push(("CAIRN_LOG", "info"));
        Server::spawn(data_dir, &[], &env, Stdio::from(file))
    }

    fn spawn(data_dir: &Path, args: &[&str], extra_env: &[(&str, &str)], stderr: Stdio) -> Server {
        let mut cmd = cairn(data_dir);
        cmd.args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn cairn serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("cairn listening on ") {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(b) => b,
            Err(_) => {
                let _ = child.kill();
                panic!("cairn serve did not report its address");
            }
        };
        Server { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP agent that returns 4xx/5xx responses instead of failing on them.
pub fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// Sends a request and returns (status, JSON body).
pub fn send(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
    let mut resp = resp.expect("http request");
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// A multipart/form-data body with one part per file.
pub fn multipart(files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "cairn-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, data) in files {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends raw bytes and reads one response (the body is taken from its Content-Length).
pub fn raw_request(s: &Server, head: &str) -> (u16, Value) {
    use std::io::{BufRead, BufReader, Read, Write};
    let addr = s.base.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    // A server that refuses early may close before all of it is written.
    let _ = conn.write_all(head.as_bytes());
    let mut reader = BufReader::new(conn);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut len = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}
