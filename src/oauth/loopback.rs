//! STUB (replaced by the oauthio branch): a minimal RFC 8252 loopback listener.
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub enum LoopbackError {
    Bind(String),
    TimedOut,
    Stopped,
}
impl std::fmt::Display for LoopbackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoopbackError::Bind(m) => f.write_str(m),
            LoopbackError::TimedOut => f.write_str("timed out"),
            LoopbackError::Stopped => f.write_str("stopped"),
        }
    }
}
pub struct Callback {
    pub params: Vec<(String, String)>,
}
impl Callback {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}
pub struct Listener {
    socket: TcpListener,
    uri: String,
    path: String,
}
impl Listener {
    pub fn ephemeral() -> Result<Listener, LoopbackError> {
        let socket = TcpListener::bind("127.0.0.1:0").map_err(|e| LoopbackError::Bind(e.to_string()))?;
        let port = socket.local_addr().map_err(|e| LoopbackError::Bind(e.to_string()))?.port();
        Ok(Listener { socket, uri: format!("http://127.0.0.1:{port}/callback"), path: "/callback".into() })
    }
    pub fn for_redirect_uri(uri: &str) -> Result<Listener, LoopbackError> {
        let parsed = url::Url::parse(uri).map_err(|e| LoopbackError::Bind(e.to_string()))?;
        let port = parsed.port().unwrap_or(80);
        let socket = TcpListener::bind(("127.0.0.1", port)).map_err(|e| LoopbackError::Bind(format!("port {port}: {e} (--oauth-redirect-uri)")))?;
        Ok(Listener { socket, uri: uri.to_string(), path: parsed.path().to_string() })
    }
    pub fn redirect_uri(&self) -> &str {
        &self.uri
    }
    pub fn wait(&self, deadline: Instant, stopped: &dyn Fn() -> bool) -> Result<Callback, LoopbackError> {
        self.socket.set_nonblocking(true).map_err(|e| LoopbackError::Bind(e.to_string()))?;
        loop {
            if stopped() { return Err(LoopbackError::Stopped); }
            if Instant::now() >= deadline { return Err(LoopbackError::TimedOut); }
            match self.socket.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut reader = BufReader::new(&stream);
                    let mut line = String::new();
                    let _ = reader.read_line(&mut line);
                    let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                    let mut out = &stream;
                    if path != self.path {
                        let _ = out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                        continue;
                    }
                    let _ = out.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\nConnection: close\r\n\r\nclose the tab");
                    let params = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
                    return Ok(Callback { params });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}
