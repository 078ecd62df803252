//! The release bridge as a child process, driven over stdio as an MCP client drives it: JSON lines
//! in, JSON lines out. A reader thread timestamps each stdout line the moment it is complete, so
//! that latencies do not include the channel hop to the measuring thread.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{BenchError, Result};
use crate::messages;

/// How long any single answer may take before the run is abandoned.
const ANSWER_WAIT: Duration = Duration::from_secs(30);
/// How long the bridge may take to exit after stdin EOF before it is killed.
const EXIT_WAIT: Duration = Duration::from_secs(10);
/// Keep only the end of the bridge's stderr, for error messages.
const STDERR_TAIL: usize = 4096;

/// One stdout line and the moment the reader thread had all of it.
pub struct Line {
    pub at: Instant,
    pub text: String,
}

/// Resident memory of a process, from /proc/<pid>/status, in KiB.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// VmHWM: the peak resident set size so far.
    pub peak_kib: u64,
    /// VmRSS: the resident set size now.
    pub current_kib: u64,
    /// Threads: how many the process has now.
    pub threads: u64,
}

pub struct BridgeProcess {
    child: Option<Child>,
    pid: u32,
    stdin: Option<ChildStdin>,
    lines: Receiver<Line>,
    /// Responses read while waiting for another id.
    stash: HashMap<i64, Line>,
    stderr: Arc<Mutex<String>>,
    /// While set, the reader thread stops reading stdout: the pipe fills and the bridge's writes
    /// block, as with a client that stopped reading.
    stdout_paused: Arc<AtomicBool>,
}

/// How a bridge is asked to leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Close its stdin (the client left).
    Eof,
    /// SIGTERM with stdin still open (what a client sends when EOF was not enough).
    Sigterm,
}

/// What became of a bridge asked to leave.
#[derive(Debug, Clone, Copy)]
pub enum Exit {
    /// It exited this long after being asked.
    After(Duration),
    /// It was still running after this long and was killed.
    Killed(Duration),
}

/// The flags every bridge gets: the RSA client identity and the test CA.
pub fn mtls_args(fixtures: &Path) -> Vec<String> {
    let path = |name: &str| fixtures.join(name).display().to_string();
    vec![
        "--tls-cert".into(),
        path("client-rsa.crt"),
        "--tls-key".into(),
        path("client-rsa.key"),
        "--tls-ca".into(),
        path("ca.crt"),
    ]
}

impl BridgeProcess {
    /// Start `binary` for `url`. Returns once the process exists; nothing has been sent yet.
    pub fn spawn(binary: &Path, url: &str, fixtures: &Path) -> Result<BridgeProcess> {
        BridgeProcess::spawn_with(binary, url, fixtures, &[], &[])
    }

    /// Like `spawn`, with extra flags after the mTLS ones and extra environment variables.
    pub fn spawn_with(
        binary: &Path,
        url: &str,
        fixtures: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<BridgeProcess> {
        let mut child = Command::new(binary)
            .arg(url)
            .args(mtls_args(fixtures))
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("RUST_LOG")
            .spawn()
            .map_err(|e| BenchError::Spawn(binary.to_path_buf(), e))?;
        let (tx, lines) = mpsc::channel();
        let stdout_paused = Arc::new(AtomicBool::new(false));
        if let Some(stdout) = child.stdout.take() {
            let paused = Arc::clone(&stdout_paused);
            thread::spawn(move || {
                let mut reader = BufReader::with_capacity(64 * 1024, stdout);
                loop {
                    while paused.load(Ordering::Relaxed) {
                        thread::sleep(Duration::from_millis(5));
                    }
                    let mut text = String::new();
                    match reader.read_line(&mut text) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let at = Instant::now();
                            text.truncate(text.trim_end().len());
                            if tx.send(Line { at, text }).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(pipe) = child.stderr.take() {
            let tail = Arc::clone(&stderr);
            thread::spawn(move || keep_tail(pipe, &tail));
        }
        Ok(BridgeProcess {
            pid: child.id(),
            stdin: child.stdin.take(),
            child: Some(child),
            lines,
            stash: HashMap::new(),
            stderr,
            stdout_paused,
        })
    }

    /// Stop reading stdout (at most the line being read and the reader's buffer get through);
    /// `resume_stdout` reads on.
    pub fn pause_stdout(&self) {
        self.stdout_paused.store(true, Ordering::Relaxed);
    }

    pub fn resume_stdout(&self) {
        self.stdout_paused.store(false, Ordering::Relaxed);
    }

    /// The next stdout line of any kind, or None if none comes within `wait`.
    pub fn next_line(&mut self, wait: Duration) -> Option<Line> {
        self.lines.recv_timeout(wait).ok()
    }

    /// Write one or more complete lines; returns the moment just before the write.
    pub fn send(&mut self, lines: &str) -> Result<Instant> {
        let tail = self.stderr_tail();
        let Some(stdin) = self.stdin.as_mut() else {
            let closed = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
            return Err(BenchError::BridgeStdin(closed, tail));
        };
        let start = Instant::now();
        stdin
            .write_all(lines.as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| BenchError::BridgeStdin(e, tail))?;
        Ok(start)
    }

    /// The next response (any id); notifications and server requests are skipped.
    pub fn next_response(&mut self) -> Result<(i64, Line)> {
        if let Some(id) = self.stash.keys().next().copied() {
            if let Some(line) = self.stash.remove(&id) {
                return Ok((id, line));
            }
        }
        self.read_response()
    }

    /// The next response read from stdout (never from the stash).
    fn read_response(&mut self) -> Result<(i64, Line)> {
        loop {
            let line =
                self.lines
                    .recv_timeout(ANSWER_WAIT)
                    .map_err(|_| BenchError::BridgeSilent {
                        waited: ANSWER_WAIT,
                        stderr: self.stderr_tail(),
                    })?;
            if let Some(id) = messages::response_id(&line.text)? {
                return Ok((id, line));
            }
        }
    }

    /// The response to `id`, keeping any other response for later.
    pub fn response(&mut self, id: i64) -> Result<Line> {
        if let Some(line) = self.stash.remove(&id) {
            return Ok(line);
        }
        loop {
            // Not next_response: it would hand back what this loop has just stashed, for ever.
            let (got, line) = self.read_response()?;
            if got == id {
                return Ok(line);
            }
            self.stash.insert(got, line);
        }
    }

    /// Send one request line and time it until its response is complete on stdout.
    pub fn call(&mut self, id: i64, request: &str) -> Result<(Duration, Line)> {
        let start = self.send(&format!("{request}\n"))?;
        let line = self.response(id)?;
        Ok((line.at.duration_since(start), line))
    }

    /// initialize (timed from `since`) then notifications/initialized.
    pub fn initialize(&mut self, since: Instant) -> Result<Duration> {
        self.send(&format!("{}\n", messages::initialize(0)))?;
        let line = self.response(0)?;
        let elapsed = line.at.duration_since(since);
        self.send(&format!("{}\n", messages::initialized()))?;
        Ok(elapsed)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn memory(&self) -> Result<Memory> {
        read_memory(self.pid)
    }

    /// Close stdin and time the exit. A bridge that does not exit is killed and reported.
    pub fn close_and_time_exit(mut self) -> Result<Duration> {
        let Some(mut child) = self.child.take() else {
            return Err(BenchError::BridgeHung(Duration::ZERO));
        };
        let (tx, exited) = mpsc::channel();
        let waiter = thread::spawn(move || {
            let _ = child.wait();
            let _ = tx.send(Instant::now());
        });
        let start = Instant::now();
        self.stdin.take();
        let result = match exited.recv_timeout(EXIT_WAIT) {
            Ok(at) => Ok(at.duration_since(start)),
            Err(_) => {
                kill(self.pid);
                Err(BenchError::BridgeHung(EXIT_WAIT))
            }
        };
        let _ = waiter.join();
        result
    }

    /// Ask the bridge to leave and time its exit; kill it if it is still running after `cap`.
    /// With `Sigterm` stdin stays open until the process is gone.
    pub fn end(mut self, how: Ending, cap: Duration) -> Exit {
        let Some(mut child) = self.child.take() else {
            return Exit::Killed(Duration::ZERO);
        };
        let (tx, exited) = mpsc::channel();
        let waiter = thread::spawn(move || {
            let _ = child.wait();
            let _ = tx.send(Instant::now());
        });
        let start = Instant::now();
        match how {
            Ending::Eof => drop(self.stdin.take()),
            Ending::Sigterm => signal(self.pid, libc::SIGTERM),
        }
        let exit = match exited.recv_timeout(cap) {
            Ok(at) => Exit::After(at.duration_since(start)),
            Err(_) => {
                kill(self.pid);
                Exit::Killed(cap)
            }
        };
        let _ = waiter.join();
        exit
    }

    fn stderr_tail(&self) -> String {
        self.stderr
            .lock()
            .map(|tail| tail.clone())
            .unwrap_or_default()
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn kill(pid: u32) {
    signal(pid, libc::SIGKILL);
}

fn signal(pid: u32, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) on a child we spawned and have not yet reaped.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

fn keep_tail(pipe: impl Read, tail: &Mutex<String>) {
    for line in BufReader::new(pipe).lines() {
        let Ok(line) = line else { break };
        let Ok(mut tail) = tail.lock() else { break };
        tail.push_str(&line);
        tail.push('\n');
        if tail.len() > STDERR_TAIL {
            let mut cut = tail.len() - STDERR_TAIL;
            while !tail.is_char_boundary(cut) {
                cut += 1;
            }
            tail.drain(..cut);
        }
    }
}

/// VmHWM and VmRSS of `pid`.
pub fn read_memory(pid: u32) -> Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| BenchError::Proc(pid, e.to_string()))?;
    let field = |name: &str| -> Result<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| BenchError::Proc(pid, format!("no {name} line in /proc/{pid}/status")))
    };
    Ok(Memory {
        peak_kib: field("VmHWM:")?,
        current_kib: field("VmRSS:")?,
        threads: field("Threads:")?,
    })
}
