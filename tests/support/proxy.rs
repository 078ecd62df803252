//! A minimal HTTP CONNECT proxy on 127.0.0.1 for the proxy tests: it records the request line of
//! each CONNECT and relays bytes both ways, so TLS runs end to end with the server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

/// A minimal CONNECT proxy on 127.0.0.1; records the targets it was asked for.
pub fn connect_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let log = Arc::clone(&log);
            thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
                        break;
                    }
                }
                let target = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                log.lock().unwrap().push(request_line.trim().to_string());
                let Ok(upstream) = TcpStream::connect(&target) else {
                    return;
                };
                let mut client_w = client;
                client_w
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .unwrap();
                let mut up_r = upstream.try_clone().unwrap();
                let mut up_w = upstream;
                let mut client_r = reader;
                let t = thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = client_r.read(&mut buf) {
                        if n == 0 || up_w.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = up_w.shutdown(std::net::Shutdown::Write);
                });
                let mut buf = [0u8; 16384];
                while let Ok(n) = up_r.read(&mut buf) {
                    if n == 0 || client_w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = client_w.shutdown(std::net::Shutdown::Write);
                let _ = t.join();
            });
        }
    });
    (port, seen)
}
