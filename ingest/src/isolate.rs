//! Running a parser that may panic, loop or eat all memory without taking cairn down.
//!
//! Some parsers (PDF above all) fail badly on real files. This module owns the two ways
//! cairn contains them:
//!
//! - **A child process** ([`run_child`]): the binary registers itself once at start-up with
//!   [`set_isolation`]; parsers then re-run the same executable as a hidden worker
//!   (`cairn parse-worker pdf ...`), send the file on its standard input and read a JSON
//!   reply from its standard output. The parent kills the child when it runs past
//!   [`Isolation::timeout`]; the child caps its own address space with [`limit_memory`]
//!   before it parses, so a runaway allocation ends the child, never the server.
//! - **A watchdog thread** ([`run_with_watchdog`]), used when no isolation was set (the
//!   unit tests of this crate, library users): the parser runs on its own thread under
//!   `catch_unwind`, and the caller stops waiting after the time limit. A parser that loops
//!   forever is then *abandoned*: its thread keeps running (and holding its memory) until
//!   the process ends, because Rust cannot stop a thread. Only the child process can be
//!   killed for real, which is why the binary always sets isolation.
//!
//! The worker side lives here too ([`run_worker`]), so the binary's hidden command is a
//! thin wrapper.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use crate::parse::pdf::{
    Extractor, FailureKind, PdfFailure, PdfPages, extract_pdf, extract_pdf_with,
};

/// Default time one parse may take before it is killed, plus [`DEFAULT_PER_PAGE`] for
/// each page once the child has said how many there are.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default extra time per page (a release build reads a typical page in well under
/// 50 ms; this leaves room for slow pages and a busy machine).
pub const DEFAULT_PER_PAGE: Duration = Duration::from_millis(500);
/// Default ceiling on one parse, however many pages it has.
pub const DEFAULT_MAX_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// What a worker writes on its standard error, followed by a number and a newline, when
/// it knows how many pages (units of work) the file has.
pub const PAGES_MARKER: &str = "cairn-parse-pages ";
/// Default address-space limit of a parser process (2 GiB).
pub const DEFAULT_MAX_MEMORY_BYTES: u64 = 2 << 30;

/// How to start an isolated parser: `exe args... <format> <worker flags>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolation {
    /// The executable that runs the worker (the `cairn` binary itself).
    pub exe: PathBuf,
    /// Arguments that select the worker command, before the format (`["parse-worker"]`).
    pub args: Vec<String>,
    /// Wall-clock limit of one parse before the child says how many pages it has; the
    /// child is killed after it.
    pub timeout: Duration,
    /// Time added to `timeout` per page, once the child has announced its page count
    /// (see [`PAGES_MARKER`]).
    pub per_page: Duration,
    /// The limit never grows past this.
    pub max_timeout: Duration,
    /// Address-space limit (`RLIMIT_AS`) the child sets on itself before parsing.
    pub max_memory_bytes: u64,
}

impl Isolation {
    /// Isolation through this very executable's `parse-worker` command, with the default
    /// limits.
    pub fn current_exe() -> std::io::Result<Isolation> {
        Ok(Isolation {
            exe: std::env::current_exe()?,
            args: vec!["parse-worker".to_string()],
            timeout: DEFAULT_TIMEOUT,
            per_page: DEFAULT_PER_PAGE,
            max_timeout: DEFAULT_MAX_TIMEOUT,
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
        })
    }

    /// The time limit of a parse of a file with `pages` pages (0: not known yet).
    pub fn limit(&self, pages: u64) -> Duration {
        let extra = self
            .per_page
            .saturating_mul(u32::try_from(pages).unwrap_or(u32::MAX));
        self.timeout
            .saturating_add(extra)
            .min(self.max_timeout.max(self.timeout))
    }
}

static ISOLATION: OnceLock<Isolation> = OnceLock::new();

/// Sets how parsers are isolated, once per process (at start-up). Returns the isolation
/// back if one was already set.
pub fn set_isolation(isolation: Isolation) -> Result<(), Isolation> {
    ISOLATION.set(isolation)
}

/// The isolation set at start-up, if any.
pub fn isolation() -> Option<&'static Isolation> {
    ISOLATION.get()
}

/// How a child parser process ended.
#[derive(Debug)]
pub enum ChildOutcome {
    /// It exited (or was killed by a signal other than ours).
    Exited {
        status: ExitStatus,
        stdout: Vec<u8>,
        /// The last bytes it wrote to standard error, for the failure reason.
        stderr_tail: String,
    },
    /// It ran past its time limit (given) and was killed.
    TimedOut { after: Duration },
}

/// Bytes of a child's standard error kept for the failure reason.
const STDERR_TAIL: usize = 2000;

/// Runs `iso.exe iso.args... extra...` with `input` on its standard input, waiting at
/// most [`Isolation::limit`] for the page count the child announces on its standard
/// error (none: `iso.timeout`). Fails only when the process cannot be started or waited
/// for.
pub fn run_child(iso: &Isolation, extra: &[String], input: &[u8]) -> std::io::Result<ChildOutcome> {
    use std::os::unix::process::CommandExt;
    // Its own process group, so that a kill reaches anything it started too (whose open
    // pipes would otherwise keep us waiting).
    let mut child = Command::new(&iso.exe)
        .process_group(0)
        .args(&iso.args)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let started = Instant::now();
    let pages = AtomicU64::new(0);
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(std::io::Error::other("the child's pipes are missing"));
    };
    std::thread::scope(|s| {
        // A child that exits early closes its end: the write then fails, which is fine.
        s.spawn(move || {
            let _ = stdin.write_all(input);
        });
        let out = s.spawn(move || {
            let mut buf = Vec::new();
            let _ = stdout.read_to_end(&mut buf);
            buf
        });
        let pages = &pages;
        let err = s.spawn(move || read_stderr(&mut stderr, pages));
        let mut pause = Duration::from_millis(2);
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Ok(status);
            }
            let limit = iso.limit(pages.load(Ordering::Relaxed));
            if started.elapsed() >= limit {
                if let Ok(pid) = libc::pid_t::try_from(child.id()) {
                    // SAFETY: kill(2) on the process group we created; no memory involved.
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                }
                let _ = child.kill();
                let _ = child.wait();
                break Err(limit);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        };
        let stdout = out.join().unwrap_or_default();
        let stderr_tail = err.join().unwrap_or_default();
        Ok(match status {
            Ok(status) => ChildOutcome::Exited {
                status,
                stdout,
                stderr_tail,
            },
            Err(after) => ChildOutcome::TimedOut { after },
        })
    })
}

/// Reads a child's standard error to its end: page announcements go to `pages`, the
/// last [`STDERR_TAIL`] bytes of everything else are returned.
fn read_stderr(stderr: &mut impl Read, pages: &AtomicU64) -> String {
    let mut kept = Vec::new();
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    let take = |line: &mut Vec<u8>, kept: &mut Vec<u8>| {
        let announced = std::str::from_utf8(line)
            .ok()
            .and_then(|l| l.trim_end().strip_prefix(PAGES_MARKER))
            .and_then(|n| n.parse::<u64>().ok());
        match announced {
            Some(n) => pages.store(n, Ordering::Relaxed),
            None => {
                kept.extend_from_slice(line);
                let from = kept.len().saturating_sub(STDERR_TAIL);
                kept.drain(..from);
            }
        }
        line.clear();
    };
    loop {
        let n = match stderr.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            line.push(b);
            if b == b'\n' || line.len() >= STDERR_TAIL {
                take(&mut line, &mut kept);
            }
        }
    }
    take(&mut line, &mut kept);
    String::from_utf8_lossy(&kept).into_owned()
}

/// Words for how a child that did not exit cleanly ended.
pub fn describe_exit(status: ExitStatus, stderr_tail: &str, max_memory_bytes: u64) -> String {
    use std::os::unix::process::ExitStatusExt;
    let oom = stderr_tail.contains("memory allocation of")
        || stderr_tail.contains("out of memory")
        || stderr_tail.contains("capacity overflow");
    if oom {
        return format!("out of memory, limit {} MiB", max_memory_bytes >> 20);
    }
    if stderr_tail.contains("has overflowed its stack") {
        return "stack overflow".to_string();
    }
    match (status.code(), status.signal()) {
        (_, Some(libc::SIGABRT)) => "aborted".to_string(),
        (_, Some(libc::SIGSEGV)) => "segmentation fault".to_string(),
        (_, Some(libc::SIGKILL)) => "killed".to_string(),
        (_, Some(sig)) => format!("killed by signal {sig}"),
        (Some(code), None) => {
            let last = stderr_tail.lines().rev().find(|l| !l.trim().is_empty());
            match last {
                Some(line) => format!("exit status {code}: {}", line.trim()),
                None => format!("exit status {code}"),
            }
        }
        (None, None) => "ended abnormally".to_string(),
    }
}

/// Why a watched in-process run gave no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchdogError {
    /// It ran past the limit; its thread was abandoned (see the module docs).
    TimedOut,
    /// It panicked; the panic message.
    Panicked(String),
}

/// Runs `f` on its own thread under `catch_unwind`, waiting at most `timeout` for it.
///
/// On a time-out the thread is abandoned, not stopped: it runs on until `f` returns or
/// the process ends.
pub fn run_with_watchdog<T, F>(f: F, timeout: Duration) -> Result<T, WatchdogError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("cairn-parse".to_string())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                .map_err(|p| cairn_core::panic_message(p.as_ref()));
            let _ = tx.send(result);
        });
    if let Err(e) = spawned {
        return Err(WatchdogError::Panicked(format!(
            "cannot start a parser thread: {e}"
        )));
    }
    match rx.recv_timeout(timeout) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(msg)) => Err(WatchdogError::Panicked(msg)),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(WatchdogError::TimedOut),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(WatchdogError::Panicked(
            "the parser thread ended without a result".to_string(),
        )),
    }
}

/// Caps this process's address space (`RLIMIT_AS`) at `bytes`, soft and hard limit both,
/// so that a runaway allocation fails (and aborts the process) instead of exhausting the
/// machine. Meant for worker processes; it cannot be raised again.
pub fn limit_memory(bytes: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we pass and touches no memory of ours.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The worker side of `cairn parse-worker pdf`: caps memory, reads the PDF from `input`,
/// extracts its text in this process with `extractor` and writes one JSON reply to
/// `output`: `{"pages": [...], "title": ..., "extractor": ...}` or
/// `{"error": {"kind": ..., "message": ...}}`. Returns the process exit code: 0 when a
/// reply was written (also for a PDF that could not be read), 1 when the worker itself
/// failed (no input, no output).
pub fn run_worker(
    extractor: Extractor,
    max_memory_bytes: Option<u64>,
    mut input: impl Read,
    mut output: impl Write,
) -> u8 {
    // Panics are caught and reported in the reply; keep standard error for real crashes.
    std::panic::set_hook(Box::new(|_| {}));
    if let Some(bytes) = max_memory_bytes
        && let Err(e) = limit_memory(bytes)
    {
        eprintln!("parse-worker: cannot limit memory: {e}");
        return 1;
    }
    let mut bytes = Vec::new();
    if let Err(e) = input.read_to_end(&mut bytes) {
        eprintln!("parse-worker: cannot read the input: {e}");
        return 1;
    }
    let reply = crate::parse::pdf::worker_reply(&bytes, extractor, &mut |n| {
        eprintln!("{PAGES_MARKER}{n}");
    });
    match output
        .write_all(reply.as_bytes())
        .and_then(|()| output.flush())
    {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("parse-worker: cannot write the reply: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_returns_values_and_catches_panics() {
        assert_eq!(run_with_watchdog(|| 41 + 1, Duration::from_secs(5)), Ok(42));
        let r: Result<(), _> = run_with_watchdog(|| panic!("boom"), Duration::from_secs(5));
        assert_eq!(r, Err(WatchdogError::Panicked("boom".to_string())));
    }

    #[test]
    fn watchdog_stops_waiting_for_a_loop() {
        let started = Instant::now();
        let r = run_with_watchdog(
            || std::thread::sleep(Duration::from_secs(30)),
            Duration::from_millis(100),
        );
        assert_eq!(r, Err(WatchdogError::TimedOut));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    fn shell(script: &str, timeout: Duration) -> Isolation {
        Isolation {
            exe: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            timeout,
            per_page: Duration::ZERO,
            max_timeout: DEFAULT_MAX_TIMEOUT,
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
        }
    }

    #[test]
    fn child_gets_input_and_returns_output() {
        let iso = shell("tr a-z A-Z", Duration::from_secs(10));
        match run_child(&iso, &[], b"hello").unwrap() {
            ChildOutcome::Exited { status, stdout, .. } => {
                assert!(status.success());
                assert_eq!(stdout, b"HELLO");
            }
            ChildOutcome::TimedOut { .. } => panic!("timed out"),
        }
    }

    #[test]
    fn child_is_killed_after_the_timeout() {
        let iso = shell("sleep 30", Duration::from_millis(200));
        let started = Instant::now();
        assert!(matches!(
            run_child(&iso, &[], b"").unwrap(),
            ChildOutcome::TimedOut { after } if after == Duration::from_millis(200)
        ));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn announced_pages_extend_the_limit_up_to_the_ceiling() {
        // Announces 8 pages, then works for 1 s: over the 300 ms base limit, within the
        // 300 ms + 8 x 200 ms the pages earn. The announcement stays out of the tail.
        let mut iso = shell(
            "echo 'cairn-parse-pages 8' >&2; echo warming >&2; sleep 1; echo done",
            Duration::from_millis(300),
        );
        iso.per_page = Duration::from_millis(200);
        match run_child(&iso, &[], b"").unwrap() {
            ChildOutcome::Exited {
                status,
                stdout,
                stderr_tail,
            } => {
                assert!(status.success());
                assert_eq!(stdout, b"done\n");
                assert_eq!(stderr_tail, "warming\n");
            }
            ChildOutcome::TimedOut { after } => panic!("timed out after {after:?}"),
        }
        // The same work with a ceiling below it is cut off at the ceiling.
        iso.max_timeout = Duration::from_millis(500);
        assert_eq!(iso.limit(8), Duration::from_millis(500));
        assert!(matches!(
            run_child(&iso, &[], b"").unwrap(),
            ChildOutcome::TimedOut { after } if after == Duration::from_millis(500)
        ));
        assert_eq!(iso.limit(0), Duration::from_millis(300));
    }

    #[test]
    fn crashes_are_described() {
        let iso = shell(
            "echo 'memory allocation of 99 bytes failed' >&2; kill -ABRT $$",
            Duration::from_secs(10),
        );
        let ChildOutcome::Exited {
            status,
            stderr_tail,
            ..
        } = run_child(&iso, &[], b"").unwrap()
        else {
            panic!("timed out")
        };
        assert!(!status.success());
        assert_eq!(
            describe_exit(status, &stderr_tail, 1 << 30),
            "out of memory, limit 1024 MiB"
        );
        let iso = shell("kill -SEGV $$", Duration::from_secs(10));
        let ChildOutcome::Exited {
            status,
            stderr_tail,
            ..
        } = run_child(&iso, &[], b"").unwrap()
        else {
            panic!("timed out")
        };
        assert_eq!(
            describe_exit(status, &stderr_tail, 1 << 30),
            "segmentation fault"
        );
    }
}
