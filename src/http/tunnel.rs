//! An HTTP CONNECT tunnel opened by hand, for the one caller that needs a bare TLS handshake
//! rather than an HTTP exchange: `--list-identities <server-url>` reads the CA names of the
//! server's CertificateRequest and sends no request, so it cannot go through the agent (whose
//! connector chain does the same CONNECT for every request). Same request as ureq's: the target
//! by name, Basic credentials from the proxy URL.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use base64ct::{Base64, Encoding};
use ureq::Proxy;

/// The most a proxy's answer to CONNECT may take before the blank line (nginx's and Apache's own
/// header limit).
const MAX_HEAD: usize = 8 * 1024;

/// A TCP connection to `host:port` through `proxy`, ready for the TLS handshake. Every wait is
/// bounded by `timeout`. The error is one line naming the proxy (never its credentials).
pub fn open(proxy: &Proxy, host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let shown = format!("the HTTP proxy {}:{}", proxy.host(), proxy.port());
    let addr = (proxy.host(), proxy.port())
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {shown}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {shown}: no address"))?;
    let mut sock = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {shown}: {e}"))?;
    let _ = sock.set_read_timeout(Some(timeout));
    let _ = sock.set_write_timeout(Some(timeout));
    sock.write_all(connect_request(proxy, host, port).as_bytes())
        .map_err(|e| format!("{shown} closed the connection: {e}"))?;
    let head = read_head(&mut sock).map_err(|e| format!("{shown}: {e}"))?;
    let status = status_line(&head).map_err(|e| format!("{shown}: {e}"))?;
    if !status.starts_with("200") {
        return Err(format!(
            "{shown} refused to connect to {}: it answered {status}",
            authority(host, port)
        ));
    }
    Ok(sock)
}

/// `host:port`, with an IPv6 literal in brackets.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn connect_request(proxy: &Proxy, host: &str, port: u16) -> String {
    let target = authority(host, port);
    let mut request = format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: mcp-secure-remote/{}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if proxy.username().is_some() || proxy.password().is_some() {
        let credentials = format!(
            "{}:{}",
            proxy.username().unwrap_or_default(),
            proxy.password().unwrap_or_default()
        );
        request.push_str(&format!(
            "Proxy-Authorization: Basic {}\r\n",
            Base64::encode_string(credentials.as_bytes())
        ));
    }
    request.push_str("\r\n");
    request
}

/// The proxy's answer up to and including the blank line, and not a byte of the tunnel after it
/// (the server's first TLS record must stay in the socket): read one byte at a time, as the head
/// is short and read once.
fn read_head(sock: &mut impl Read) -> Result<Vec<u8>, String> {
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err(format!(
                "its answer to CONNECT exceeded {MAX_HEAD} bytes of header"
            ));
        }
        match sock.read(&mut byte) {
            Ok(0) => return Err("it closed the connection before answering CONNECT".into()),
            Ok(_) => head.push(byte[0]),
            Err(e) => return Err(format!("no answer to CONNECT: {e}")),
        }
    }
    Ok(head)
}

/// `200 Connection established` from `HTTP/1.1 200 Connection established\r\n…`.
fn status_line(head: &[u8]) -> Result<String, String> {
    let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = String::from_utf8_lossy(first).trim().to_string();
    match first.split_once(' ') {
        Some((version, status)) if version.starts_with("HTTP/1.") => Ok(status.to_string()),
        _ => Err(format!(
            "its answer to CONNECT is not HTTP: {:?}",
            first.chars().take(60).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_names_the_target_and_carries_the_proxy_credentials() {
        let proxy = Proxy::new("http://user:s3cret@127.0.0.1:3128").unwrap();
        let request = connect_request(&proxy, "mcp.example.com", 8443);
        assert!(request.starts_with(
            "CONNECT mcp.example.com:8443 HTTP/1.1\r\nHost: mcp.example.com:8443\r\n"
        ));
        assert!(request.contains("Proxy-Authorization: Basic dXNlcjpzM2NyZXQ=\r\n"));
        assert!(request.ends_with("\r\n\r\n"));
        let plain = Proxy::new("http://127.0.0.1:3128").unwrap();
        let request = connect_request(&plain, "::1", 8443);
        assert!(request.starts_with("CONNECT [::1]:8443 HTTP/1.1\r\n"));
        assert!(!request.contains("Proxy-Authorization"));
    }

    #[test]
    fn the_head_is_read_up_to_the_blank_line_and_no_further() {
        let mut answer: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03";
        let head = read_head(&mut answer).unwrap();
        assert_eq!(status_line(&head).unwrap(), "200 Connection established");
        assert_eq!(
            answer, b"\x16\x03\x03",
            "the tunnel's first bytes were consumed"
        );

        let mut refused: &[u8] = b"HTTP/1.0 407 Proxy Authentication Required\r\nX: y\r\n\r\n";
        let head = read_head(&mut refused).unwrap();
        assert_eq!(
            status_line(&head).unwrap(),
            "407 Proxy Authentication Required"
        );

        let mut cut: &[u8] = b"HTTP/1.1 200 OK\r\n";
        assert!(read_head(&mut cut).unwrap_err().contains("closed"));
        let endless = vec![b'a'; MAX_HEAD + 10];
        assert!(read_head(&mut endless.as_slice())
            .unwrap_err()
            .contains("exceeded"));
        assert!(status_line(b"SSH-2.0-OpenSSH\r\n\r\n")
            .unwrap_err()
            .contains("not HTTP"));
    }
}
