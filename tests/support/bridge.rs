//! Drive the real `mcp-secure-remote` binary over its stdio, as an MCP client would.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::fixture;

/// Generous bound for anything the tests wait for; a hang fails the test instead of blocking CI.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct Bridge {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    /// Ends at the bridge's exit, once its last stderr line is in `stderr`.
    stderr_reader: Option<thread::JoinHandle<()>>,
    /// While set, the stdout reader stops reading: the pipe fills and the bridge's writes block,
    /// as with a client that stopped reading.
    stdout_paused: Arc<AtomicBool>,
}

/// The usual mTLS flags with the RSA client identity and the test CA.
pub fn mtls_args() -> Vec<String> {
    vec![
        "--tls-cert".into(),
        fixture("client-rsa.crt").display().to_string(),
        "--tls-key".into(),
        fixture("client-rsa.key").display().to_string(),
        "--tls-ca".into(),
        fixture("ca.crt").display().to_string(),
    ]
}

impl Bridge {
    /// Spawn the bridge for `url` with the standard mTLS flags plus `extra`.
    pub fn start(url: &str, extra: &[&str]) -> Bridge {
        let mut args = vec![url.to_string()];
        args.extend(mtls_args());
        args.extend(extra.iter().map(|s| s.to_string()));
        Bridge::spawn(&args, &[])
    }

    /// Spawn the bridge with exactly these arguments and extra environment variables.
    pub fn spawn(args: &[String], env: &[(&str, &str)]) -> Bridge {
        let mut cmd = super::command(env!("CARGO_BIN_EXE_mcp-secure-remote"));
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("RUST_LOG")
            .env_remove("HTTPS_PROXY")
            .env_remove("HTTP_PROXY")
            .env_remove("ALL_PROXY");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn mcp-secure-remote");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        let stdout_paused = Arc::new(AtomicBool::new(false));
        let paused = Arc::clone(&stdout_paused);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                while paused.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(5));
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let log = Arc::new(Mutex::new(String::new()));
        let log_writer = Arc::clone(&log);
        let stderr_reader = thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("BRIDGE_STDERR").is_some() {
                    eprintln!("[bridge] {line}");
                }
                let mut l = log_writer.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Bridge {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr: log,
            stderr_reader: Some(stderr_reader),
            stdout_paused,
        }
    }

    /// Stop reading the bridge's stdout (a client that stopped reading); `resume_stdout` reads on.
    /// At most one line already read is held back meanwhile.
    pub fn pause_stdout(&self) {
        self.stdout_paused.store(true, Ordering::SeqCst);
    }

    pub fn resume_stdout(&self) {
        self.stdout_paused.store(false, Ordering::SeqCst);
    }

    /// The bridge's resident memory (VmRSS of /proc/<pid>/status) in bytes; None once it exited,
    /// and None off Linux. Under wine a Windows build would read the host's /proc through drive Z:
    /// with a Windows process id, which is some other Linux process (a 225 MiB one failed a run).
    #[cfg(not(target_os = "linux"))]
    pub fn rss_bytes(&self) -> Option<u64> {
        None
    }

    /// The bridge's resident memory (VmRSS of /proc/<pid>/status) in bytes; None once it exited.
    #[cfg(target_os = "linux")]
    pub fn rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    }

    /// Send SIGTERM, as an MCP client does 2 s after closing stdin.
    #[cfg(unix)]
    pub fn terminate(&self) {
        let pid = libc::pid_t::try_from(self.pid()).expect("pid fits pid_t");
        // SAFETY: kill(2) with a pid we spawned and have not reaped (Drop reaps it).
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) failed");
    }

    /// True while the process has not exited.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Write one line (a JSON value or raw text) to the bridge's stdin.
    pub fn send_raw(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    pub fn send(&mut self, msg: &Value) {
        self.send_raw(&msg.to_string());
    }

    /// The next stdout line, parsed; panics (with stderr) if none comes within `WAIT`.
    pub fn recv(&mut self) -> Value {
        self.recv_within(WAIT)
            .unwrap_or_else(|| panic!("no output from the bridge; stderr:\n{}", self.stderr()))
    }

    pub fn recv_within(&mut self, wait: Duration) -> Option<Value> {
        match self.lines.recv_timeout(wait) {
            Ok(line) => Some(
                serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:?}")),
            ),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// The raw next stdout line.
    pub fn recv_line(&mut self) -> String {
        self.lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("no output; stderr:\n{}", self.stderr()))
    }

    /// Read messages until the response with `id` arrives; returns (response, messages before it).
    pub fn recv_response(&mut self, id: &Value) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let msg = self.recv();
            if msg.get("id") == Some(id)
                && (msg.get("result").is_some() || msg.get("error").is_some())
            {
                return (msg, before);
            }
            before.push(msg);
        }
    }

    /// Send a request and wait for its response.
    pub fn call(&mut self, id: Value, method: &str, params: Value) -> Value {
        self.send(&serde_json::json!({"jsonrpc":"2.0","id":id,"method":method,"params":params}));
        self.recv_response(&id).0
    }

    /// initialize + notifications/initialized; returns the initialize response.
    pub fn initialize(&mut self) -> Value {
        let resp = self.call(
            Value::from(0),
            "initialize",
            serde_json::json!({"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test","version":"1"}}),
        );
        assert!(resp.get("result").is_some(), "initialize failed: {resp}");
        self.send(&serde_json::json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        resp
    }

    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Wait for exit; None if it did not exit within `wait`.
    pub fn wait_exit(&mut self, wait: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The process is gone: let the reader take its last stderr lines first.
                if let Some(reader) = self.stderr_reader.take() {
                    let _ = reader.join();
                }
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
