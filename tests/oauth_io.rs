//! The I/O building blocks of MCP authorization, driven for real: the loopback redirect listener
//! over 127.0.0.1 and ::1 sockets, a browser command that is a real script, the file and kernel
//! keyring token stores, and the per-server lock held by a second process that is then killed.
//!
//! The second process is this test binary itself, started again on one test with a role in
//! [`ROLE_VAR`]: the test runs the role instead of its own body.

mod support;

use mcp_secure_remote::oauth::lock::{lock_path, lock_waiting_at, try_lock_at, LockError};
use mcp_secure_remote::oauth::loopback::{Listener, LoopbackError};
use mcp_secure_remote::oauth::store::{FileStore, TokenStore};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Set in a re-executed copy of this binary: which role to play (see [`child_role`]).
const ROLE_VAR: &str = "MCP_OAUTH_IO_TEST_ROLE";
/// The role's directory and key.
const DIR_VAR: &str = "MCP_OAUTH_IO_TEST_DIR";
const KEY_VAR: &str = "MCP_OAUTH_IO_TEST_KEY";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mcp-oauth-io-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test directory");
    dir
}

fn never() -> bool {
    false
}

// ---- loopback redirect listener -------------------------------------------------------------

/// One HTTP/1.1 request over a fresh connection; the whole response.
fn http(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the listener");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream
        .write_all(request.as_bytes())
        .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    response
}

fn get(addr: SocketAddr, target: &str) -> String {
    http(
        addr,
        &format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: test\r\n\r\n"),
    )
}

fn v4(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn status(response: &str) -> &str {
    response.lines().next().unwrap_or_default()
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .map(|addr| addr.port())
        .expect("an ephemeral port")
}

#[test]
fn listener_returns_the_callback_query_after_a_preconnect_and_a_favicon() {
    let listener = Listener::ephemeral().expect("listen");
    let uri = listener.redirect_uri().to_owned();
    let port = listener.port();
    assert_eq!(uri, format!("http://127.0.0.1:{port}/callback"));
    assert_ne!(port, 0);

    let browser = std::thread::spawn(move || {
        // Chrome's speculative connection: open, send nothing, keep it open meanwhile.
        let idle = TcpStream::connect(v4(port)).expect("preconnect");
        let favicon = get(v4(port), "/favicon.ico");
        let page = get(
            v4(port),
            "/callback?code=c%2Bd&state=s-1&iss=https%3A%2F%2Fas.test",
        );
        drop(idle);
        (favicon, page)
    });
    let callback = listener
        .wait(Instant::now() + Duration::from_secs(20), &never)
        .expect("the callback");
    let (favicon, page) = browser.join().expect("browser thread");

    assert_eq!(status(&favicon), "HTTP/1.1 404 Not Found", "{favicon}");
    assert_eq!(status(&page), "HTTP/1.1 200 OK", "{page}");
    assert!(page.contains("You can close this tab."), "{page}");
    assert!(page.contains("Cache-Control: no-store"), "{page}");
    assert!(
        !page.contains("c+d"),
        "the page must not echo the code: {page}"
    );
    assert_eq!(callback.get("code"), Some("c+d"));
    assert_eq!(callback.get("state"), Some("s-1"));
    assert_eq!(callback.get("iss"), Some("https://as.test"));
}

#[test]
fn listener_times_out_at_the_deadline() {
    let listener = Listener::ephemeral().expect("listen");
    let started = Instant::now();
    let result = listener.wait(started + Duration::from_millis(300), &never);
    let elapsed = started.elapsed();
    assert!(matches!(result, Err(LoopbackError::TimedOut)), "{result:?}");
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    let message = result.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("did not finish in time"), "{message}");
}

#[test]
fn listener_stops_soon_after_stopped_turns_true() {
    let listener = Listener::ephemeral().expect("listen");
    let stop = Arc::new(AtomicBool::new(false));
    let stopped_at = Arc::new(Mutex::new(None::<Instant>));
    let stopper = {
        let (stop, stopped_at) = (stop.clone(), stopped_at.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            *stopped_at.lock().expect("lock") = Some(Instant::now());
            stop.store(true, Ordering::SeqCst);
        })
    };
    // A client that dribbles a request without ever finishing it must not hold the stop up.
    let port = listener.port();
    let dribbler = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(v4(port)).expect("connect");
        let _ = stream.write_all(b"GET /callback?code=");
        std::thread::sleep(Duration::from_secs(2));
    });
    let result = listener.wait(Instant::now() + Duration::from_secs(30), &|| {
        stop.load(Ordering::SeqCst)
    });
    let returned = Instant::now();
    stopper.join().expect("stopper");
    assert!(matches!(result, Err(LoopbackError::Stopped)), "{result:?}");
    let stopped_at = stopped_at.lock().expect("lock").expect("stop time");
    // The listener looks every 20 ms; the bound leaves room for a loaded 2-core machine.
    let delay = returned - stopped_at;
    assert!(delay < Duration::from_millis(500), "{delay:?}");
    dribbler.join().expect("dribbler");
}

#[test]
fn listener_answers_oversized_and_wrong_requests_and_keeps_waiting() {
    let listener = Listener::ephemeral().expect("listen");
    let port = listener.port();
    let browser = std::thread::spawn(move || {
        let huge = format!(
            "GET /callback?code=x HTTP/1.1\r\nX-Big: {}\r\n\r\n",
            "a".repeat(20_000)
        );
        let oversized = http(v4(port), &huge);
        let post = http(
            v4(port),
            "POST /callback?code=x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        );
        let garbage = http(v4(port), "HELLO\r\n\r\n");
        let refused = get(v4(port), "/callback?error=access_denied&state=s");
        (oversized, post, garbage, refused)
    });
    let callback = listener
        .wait(Instant::now() + Duration::from_secs(20), &never)
        .expect("the callback");
    let (oversized, post, garbage, refused) = browser.join().expect("browser thread");
    assert_eq!(
        status(&oversized),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    assert_eq!(status(&post), "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(status(&garbage), "HTTP/1.1 400 Bad Request");
    assert_eq!(status(&refused), "HTTP/1.1 200 OK");
    assert!(refused.contains("reported an error"), "{refused}");
    assert_eq!(callback.get("error"), Some("access_denied"));
    assert_eq!(callback.get("code"), None);
}

#[test]
fn listener_can_wait_again_after_the_caller_rejects_a_callback() {
    let listener = Listener::ephemeral().expect("listen");
    let port = listener.port();
    let browser = std::thread::spawn(move || {
        get(v4(port), "/callback?code=forged&state=wrong");
        get(v4(port), "/callback?code=real&state=right");
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = listener.wait(deadline, &never).expect("first");
    let second = listener.wait(deadline, &never).expect("second");
    browser.join().expect("browser thread");
    assert_eq!(first.get("state"), Some("wrong"));
    assert_eq!(second.get("code"), Some("real"));
}

#[test]
fn a_busy_registered_port_is_an_error_naming_the_port_and_the_flag() {
    let squatter = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = squatter.local_addr().expect("addr").port();
    let uri = format!("http://127.0.0.1:{port}/cb");
    let error = match Listener::for_redirect_uri(&uri) {
        Err(error) => error,
        Ok(_) => panic!("listened on a busy port"),
    };
    assert!(
        matches!(error, LoopbackError::PortInUse { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(&format!("port {port} ")), "{message}");
    assert!(message.contains("--oauth-redirect-uri"), "{message}");
    assert!(message.contains(&uri), "{message}");
}

#[test]
fn a_registered_localhost_uri_is_kept_verbatim_and_served_on_both_loopback_addresses() {
    let port = free_port();
    let uri = format!("http://localhost:{port}/oauth/done");
    let listener = Listener::for_redirect_uri(&uri).expect("listen");
    assert_eq!(listener.redirect_uri(), uri);
    let deadline = Instant::now() + Duration::from_secs(20);
    for (addr, code) in [
        (
            SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port)),
            "over-v6",
        ),
        (v4(port), "over-v4"),
    ] {
        let browser = std::thread::spawn(move || {
            assert_eq!(
                status(&get(addr, "/callback?code=wrong-path")),
                "HTTP/1.1 404 Not Found"
            );
            get(addr, &format!("/oauth/done?code={code}"))
        });
        let callback = listener.wait(deadline, &never).expect("the callback");
        let page = browser.join().expect("browser thread");
        assert_eq!(status(&page), "HTTP/1.1 200 OK");
        assert_eq!(callback.get("code"), Some(code));
    }
}

// ---- browser launcher -----------------------------------------------------------------------

#[cfg(target_os = "linux")]
mod browser {
    use super::*;
    use mcp_secure_remote::oauth::browser::{open, Opener};
    use std::os::unix::fs::PermissionsExt;

    /// A browser command that records its arguments, its stdio, its process group and its pid,
    /// writes to stdout (which must go nowhere), and outlives the call by a second.
    const SCRIPT: &str = r#"#!/bin/sh
out=$1
shift
fd0=$(readlink /proc/$$/fd/0) fd1=$(readlink /proc/$$/fd/1) fd2=$(readlink /proc/$$/fd/2)
{
  for arg in "$@"; do printf 'arg=%s\n' "$arg"; done
  printf 'fd0=%s\nfd1=%s\nfd2=%s\n' "$fd0" "$fd1" "$fd2"
  printf 'pid=%s\npgid=%s\n' "$$" "$(cut -d' ' -f5 /proc/$$/stat)"
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "this line must not reach the bridge's stdout"
sleep 1
"#;

    fn wait_for(path: &Path, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(text) = std::fs::read_to_string(path) {
                return text;
            }
            assert!(Instant::now() < deadline, "{what} never appeared");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn command_opener_appends_the_url_detaches_stdio_and_reaps_the_child() {
        let dir = temp_dir("browser");
        let script = dir.join("browser.sh");
        std::fs::write(&script, SCRIPT).expect("write the script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let record = dir.join("record.txt");
        let opener = Opener::parse(&format!("{} {}", script.display(), record.display()))
            .expect("parse the command");
        // Characters a shell or `cmd /c start` would take apart.
        let url = "https://as.test/authorize?a=1&b='x' y;z|$(w)";

        let started = Instant::now();
        assert_eq!(open(&opener, url), Ok(true));
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "open waited for the child: {:?}",
            started.elapsed()
        );

        let text = wait_for(&record, "the script's record");
        let field = |name: &str| -> Vec<&str> {
            text.lines()
                .filter_map(|line| line.strip_prefix(name))
                .collect()
        };
        assert_eq!(field("arg="), vec![url], "{text}");
        for fd in ["fd0=", "fd1=", "fd2="] {
            assert_eq!(field(fd), vec!["/dev/null"], "{fd} {text}");
        }
        let pid = field("pid=")
            .first()
            .copied()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            field("pgid="),
            vec![pid.as_str()],
            "own process group: {text}"
        );

        // Reaped: once the script ends, its /proc entry goes (a zombie would keep it, state Z).
        let stat = PathBuf::from(format!("/proc/{pid}/stat"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Ok(state) = std::fs::read_to_string(&stat) {
            assert!(Instant::now() < deadline, "not reaped: {state}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

// ---- token stores ---------------------------------------------------------------------------

#[test]
fn file_store_keeps_every_key_in_one_private_file_across_instances() {
    let dir = temp_dir("file-store");
    let path = dir.join("tokens.json");
    let store = FileStore::new(path.clone());
    assert!(store.persistent());
    assert_eq!(store.describe(), format!("file {}", path.display()));
    assert_eq!(store.load("a"), Ok(None));
    assert_eq!(store.delete("a"), Ok(()));
    assert!(!path.exists(), "deleting from no file creates none");

    store
        .save("a", b"{\"refresh_token\":\"r1\"}")
        .expect("save a");
    store.save("b", &[0, 255, 10, 13]).expect("save b");
    store.save("empty", b"").expect("save empty");
    store
        .save("a", b"{\"refresh_token\":\"r2\"}")
        .expect("replace a");

    // A restart: a new instance reads what the first wrote.
    let again = FileStore::new(path.clone());
    assert_eq!(
        again.load("a"),
        Ok(Some(b"{\"refresh_token\":\"r2\"}".to_vec()))
    );
    assert_eq!(again.load("b"), Ok(Some(vec![0, 255, 10, 13])));
    assert_eq!(again.load("empty"), Ok(Some(Vec::new())));
    again.delete("a").expect("delete a");
    assert_eq!(store.load("a"), Ok(None));
    assert_eq!(store.load("b"), Ok(Some(vec![0, 255, 10, 13])));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }
    // Nothing but the file and its lock: no temporary file left behind.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("list")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["tokens.json", "tokens.json.lock"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn file_store_writers_in_separate_instances_lose_no_entry() {
    let dir = temp_dir("file-store-race");
    let path = dir.join("tokens.json");
    // Separate instances share no in-process mutex: only the OS lock on tokens.json.lock orders
    // them, as it orders separate processes.
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let path = path.clone();
            std::thread::spawn(move || {
                let store = FileStore::new(path);
                for round in 0..5 {
                    let key = format!("w{writer}-{round}");
                    store.save(&key, key.as_bytes()).expect("save");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer");
    }
    let store = FileStore::new(path);
    for writer in 0..8 {
        for round in 0..5 {
            let key = format!("w{writer}-{round}");
            assert_eq!(
                store.load(&key),
                Ok(Some(key.clone().into_bytes())),
                "{key}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn file_store_leaves_a_foreign_file_alone() {
    let dir = temp_dir("file-store-foreign");
    let path = dir.join("notes.json");
    std::fs::write(&path, "{\"my\": \"notes\"}").expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let store = FileStore::new(path.clone());
    let error = store
        .save("a", b"x")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        error.contains("is not a token file written by mcp-secure-remote"),
        "{error}"
    );
    assert!(
        error.starts_with("cannot save the sign-in tokens in the file "),
        "{error}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).ok().as_deref(),
        Some("{\"my\": \"notes\"}")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn file_store_refuses_a_file_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("file-store-mode");
    let path = dir.join("tokens.json");
    let store = FileStore::new(path.clone());
    store.save("a", b"secret").expect("save");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let error = store
        .load("a")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        error.contains("mode 0644") && error.contains("chmod 600"),
        "{error}"
    );
    assert!(!error.contains("secret"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether this kernel lets us use keyrings at all, asked by a direct system call. qemu-user (the
/// arm64 suite of `make test-cross`) answers ENOSYS to every key system call; container seccomp
/// profiles often EPERM.
#[cfg(target_os = "linux")]
fn kernel_has_keyrings() -> bool {
    // SAFETY: plain integers: KEYCTL_GET_KEYRING_ID (0) of the user keyring (-4), not creating it.
    let result = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            0 as libc::c_long,
            -4 as libc::c_long,
            0 as libc::c_long,
        )
    };
    let errno = std::io::Error::last_os_error().raw_os_error();
    !(result < 0 && matches!(errno, Some(libc::ENOSYS | libc::EPERM)))
}

/// The kernel keyring keeps a key after the process that saved it has exited, and another
/// process reads it: what "survives a restart" means. This machine kind's kernel allows
/// keyrings, so `auto` is the kernel keyring here, with no warning; where keyrings are denied
/// (qemu-user), `auto` must fall back to memory and say why, once.
#[cfg(target_os = "linux")]
#[test]
fn kernel_keyring_entry_outlives_the_process_that_saved_it_or_auto_warns_where_denied() {
    use mcp_secure_remote::oauth::store::{open, StoreChoice};
    if child_role().is_some() {
        return;
    }
    let (store, warning) = open(&StoreChoice::Auto);
    if !kernel_has_keyrings() {
        assert_eq!(store.describe(), "memory");
        assert!(!store.persistent());
        let warning = warning.unwrap_or_default();
        assert!(
            warning.contains("the kernel keyring is not available"),
            "{warning}"
        );
        assert!(warning.contains("will not survive a restart"), "{warning}");
        return;
    }
    assert_eq!(warning, None);
    assert_eq!(store.describe(), "Linux kernel keyring");
    assert!(store.persistent());

    let key = format!("oauth-io-test-{}", std::process::id());
    let saved = run_role(
        "keyring-save",
        "kernel_keyring_entry_outlives_the_process_that_saved_it_or_auto_warns_where_denied",
        Path::new("."),
        &key,
    )
    .wait()
    .expect("wait for the saver");
    assert!(saved.success(), "the saving process failed: {saved}");
    let loaded = store.load(&key);
    let _ = store.delete(&key);
    assert_eq!(loaded, Ok(Some(format!("saved by {key}").into_bytes())));
    assert_eq!(store.load(&key), Ok(None));
}

// ---- the per-server lock --------------------------------------------------------------------

/// Start this test binary again, running only `test` in role `role`.
fn run_role(role: &str, test: &str, dir: &Path, key: &str) -> Child {
    let exe = std::env::current_exe().expect("this test binary");
    support::command(&exe.to_string_lossy())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE_VAR, role)
        .env(DIR_VAR, dir)
        .env(KEY_VAR, key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the second process")
}

/// The role of a re-executed copy, if this is one: then the test plays it instead.
fn child_role() -> Option<()> {
    let role = std::env::var(ROLE_VAR).ok()?;
    let dir = PathBuf::from(std::env::var_os(DIR_VAR)?);
    let key = std::env::var(KEY_VAR).ok()?;
    match role.as_str() {
        "hold" | "hold-then-exit" => {
            let lock = try_lock_at(&dir, &key)
                .expect("lock")
                .expect("the lock is free");
            std::fs::write(dir.join("holding"), std::process::id().to_string()).expect("mark");
            let hold = if role == "hold" { 60 } else { 1 };
            std::thread::sleep(Duration::from_secs(hold));
            drop(lock);
        }
        #[cfg(target_os = "linux")]
        "keyring-save" => {
            use mcp_secure_remote::oauth::store::{open, StoreChoice};
            let (store, _) = open(&StoreChoice::Auto);
            store
                .save(&key, format!("saved by {key}").as_bytes())
                .expect("save in the kernel keyring");
        }
        other => panic!("unknown role {other}"),
    }
    Some(())
}

/// Wait until the holder has marked that it holds the lock.
fn wait_until_held(dir: &Path, holder: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.join("holding").exists() {
        if let Ok(Some(status)) = holder.try_wait() {
            panic!("the holder ended before taking the lock: {status}");
        }
        assert!(Instant::now() < deadline, "the holder never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_waiting_process_gets_the_lock_when_the_holder_is_killed() {
    if child_role().is_some() {
        return;
    }
    let dir = temp_dir("lock-kill");
    let key = "https://mcp.test/mcp|https://as.test";
    let mut holder = run_role(
        "hold",
        "a_waiting_process_gets_the_lock_when_the_holder_is_killed",
        &dir,
        key,
    );
    wait_until_held(&dir, &mut holder);
    assert!(
        try_lock_at(&dir, key).expect("try").is_none(),
        "the lock is held by the other process"
    );
    // Another server's lock is independent.
    assert!(try_lock_at(&dir, "https://other.test|https://as.test")
        .expect("try")
        .is_some());

    let killed_at = Arc::new(Mutex::new(None::<Instant>));
    let mut polls = 0;
    let started = Instant::now();
    let lock = lock_waiting_at(
        &dir,
        key,
        started + Duration::from_secs(30),
        &never,
        &mut || {
            polls += 1;
            if polls == 2 {
                // SIGKILL on Unix, TerminateProcess on Windows: no chance to clean up.
                holder.kill().expect("kill the holder");
                let _ = holder.wait();
                *killed_at.lock().expect("lock") = Some(Instant::now());
            }
            false
        },
    )
    .expect("wait for the lock");
    assert!(lock.is_some(), "acquired");
    let killed_at = killed_at
        .lock()
        .expect("lock")
        .expect("the holder was killed");
    // The pauses grow from 200 ms to 2 s: the lock is taken at the next attempt after the kill.
    let after_kill = killed_at.elapsed();
    assert!(after_kill < Duration::from_secs(3), "{after_kill:?}");
    assert_eq!(
        lock.as_ref().map(|lock| lock.path().to_path_buf()),
        Some(lock_path(&dir, key))
    );
    drop(lock);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_waiting_process_gets_the_lock_when_the_holder_exits() {
    if child_role().is_some() {
        return;
    }
    let dir = temp_dir("lock-exit");
    let key = "server-key";
    let mut holder = run_role(
        "hold-then-exit",
        "a_waiting_process_gets_the_lock_when_the_holder_exits",
        &dir,
        key,
    );
    wait_until_held(&dir, &mut holder);
    let mut polls = 0;
    let lock = lock_waiting_at(
        &dir,
        key,
        Instant::now() + Duration::from_secs(30),
        &never,
        &mut || {
            polls += 1;
            false
        },
    )
    .expect("wait for the lock");
    assert!(lock.is_some());
    assert!(
        polls >= 1,
        "the holder held it for a second: at least one failed attempt"
    );
    let status = holder.wait().expect("holder status");
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lock_waiting_ends_when_the_store_has_tokens_at_the_deadline_or_when_stopped() {
    let dir = temp_dir("lock-ends");
    let key = "server-key";
    let held = try_lock_at(&dir, key).expect("try").expect("free");

    // Another process finished the login: `between` finds tokens and ends the wait.
    let mut looks = 0;
    let result = lock_waiting_at(
        &dir,
        key,
        Instant::now() + Duration::from_secs(30),
        &never,
        &mut || {
            looks += 1;
            looks == 3
        },
    );
    assert!(matches!(result, Ok(None)), "{result:?}");
    assert_eq!(looks, 3);

    let started = Instant::now();
    let result = lock_waiting_at(
        &dir,
        key,
        started + Duration::from_millis(500),
        &never,
        &mut || false,
    );
    let elapsed = started.elapsed();
    assert!(
        matches!(result, Err(LockError::TimedOut { .. })),
        "{result:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    let message = result.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("another bridge process is still signing in"),
        "{message}"
    );

    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let result = lock_waiting_at(
        &dir,
        key,
        started + Duration::from_secs(30),
        &|| stop.load(Ordering::SeqCst),
        &mut || {
            stop.store(true, Ordering::SeqCst);
            false
        },
    );
    assert!(matches!(result, Err(LockError::Stopped)), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );

    drop(held);
    assert!(
        try_lock_at(&dir, key).expect("try").is_some(),
        "free once dropped"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn lock_files_and_their_directory_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("lock-mode");
    let state = dir.join("state");
    let lock = try_lock_at(&state, "k").expect("try").expect("free");
    let mode = |path: &Path| std::fs::metadata(path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(lock.path()), 0o600);
    assert_eq!(mode(&state.join("oauth")), 0o700);
    drop(lock);
    let _ = std::fs::remove_dir_all(&dir);
}
