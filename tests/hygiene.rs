//! Key hygiene, tried as an attacker would: a bridge holding a decrypted file key, sent SIGABRT
//! with core dumps allowed, must write no core (it marks itself non-dumpable), and `--debug` says
//! what it did. A plain process started the same way in the same directory does write a core,
//! which shows that the machine would have kept the bridge's.

// Native Linux only: under qemu-user (the arm64 suite) the emulator, not the kernel, writes cores.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::fixture;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mcp-hygiene-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `cmd` with core dumps allowed (RLIMIT_CORE unlimited) and `dir` as its working directory.
fn spawn_dumpable(mut cmd: Command, dir: &Path) -> Child {
    cmd.current_dir(dir);
    // SAFETY: setrlimit is async-signal-safe and only changes the child's own limit.
    unsafe {
        cmd.pre_exec(|| {
            let unlimited = libc::rlimit {
                rlim_cur: libc::RLIM_INFINITY,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_CORE, &unlimited) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().expect("spawn")
}

fn abort_and_wait(child: &mut Child) {
    // SAFETY: kill() with a pid we own.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGABRT);
    }
    let _ = child.wait();
}

/// Core files the kernel wrote into `dir` (named `core` or `core.PID`).
fn cores(dir: &Path) -> Vec<(PathBuf, u64)> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("core"))
        .map(|e| (e.path(), e.metadata().map(|m| m.len()).unwrap_or(0)))
        .collect()
}

/// Whether the kernel writes cores as files in the crashing process's directory.
fn cores_land_in_cwd() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/core_pattern")
        .map(|p| {
            let p = p.trim();
            !p.starts_with('|') && !p.contains('/')
        })
        .unwrap_or(false)
}

#[test]
fn a_bridge_holding_a_key_writes_no_core_dump_and_says_so() {
    let dir = temp_dir("core");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-secure-remote"));
    cmd.args(["https://127.0.0.1:9/mcp", "--debug", "--tls-cert"])
        .arg(fixture("client-rsa.crt"))
        .arg("--tls-key")
        .arg(fixture("client-rsa.enc.key"))
        .args(["--tls-passphrase", "fixture-pass", "--tls-ca"])
        .arg(fixture("ca.crt"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env_remove("RUST_LOG");
    let mut bridge = spawn_dumpable(cmd, &dir);
    // Wait until the key is decrypted and loaded (the bridge then waits for stdin).
    let mut stderr = BufReader::new(bridge.stderr.take().unwrap());
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.contains("client key: file") && Instant::now() < deadline {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        seen.push_str(&line);
    }
    assert!(seen.contains("client key: file"), "{seen}");
    assert!(
        seen.contains(
            "key hygiene: process marked non-dumpable (prctl PR_SET_DUMPABLE 0, read back as 0)"
        ),
        "--debug says what it did: {seen}"
    );
    assert!(!seen.contains("fixture-pass"), "{seen}");
    abort_and_wait(&mut bridge);
    let left = cores(&dir);

    // The control: the same limits and directory, a process that did not opt out.
    let mut control = spawn_dumpable(
        {
            let mut c = Command::new("sleep");
            c.arg("30");
            c
        },
        &dir,
    );
    std::thread::sleep(Duration::from_millis(200));
    abort_and_wait(&mut control);
    let control_cores = cores(&dir);
    let _ = std::fs::remove_dir_all(&dir);

    assert!(left.is_empty(), "the bridge left a core dump: {left:?}");
    if cores_land_in_cwd() {
        assert!(
            !control_cores.is_empty(),
            "the control process wrote no core: the test cannot tell anything on this machine"
        );
    } else {
        eprintln!(
            "note: core_pattern sends cores elsewhere; only the bridge's non-dumpable flag was checked"
        );
    }
}
