//! One client connection: the TLS handshake (counted, client certificate CN noted), then the
//! keep-alive request loop that records each request and routes it to a transport.

use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::http::{reply, HttpConn, HttpError, Next, Request, Response, Wire};
use super::socket::Socket;
use super::state::State;
use super::{legacy, streamable, tls, RecordedRequest};

/// Serves a freshly accepted socket until the client leaves or the server stops.
pub(super) fn serve(
    state: Arc<State>,
    tls: Option<Arc<ServerConfig>>,
    sock: TcpStream,
    conn_id: u64,
) {
    let _ = sock.set_nodelay(true);
    let sock = match Socket::new(sock, Arc::clone(&state)) {
        Ok(sock) => sock,
        Err(_) => {
            state.untrack_socket(conn_id);
            return;
        }
    };
    if let Some(delay) = state.opts.handshake_delay {
        std::thread::sleep(delay);
    }
    let accepted = match tls {
        None => Some((Box::new(sock) as Box<dyn Wire>, None)),
        Some(config) => handshake(config, sock),
    };
    if let Some((wire, client_cert_cn)) = accepted {
        state.handshakes.fetch_add(1, Ordering::SeqCst);
        let mut http = HttpConn::new(wire);
        if let (Some(timeout), true) = (state.opts.keep_alive_timeout, state.opts.keep_alive_hint) {
            http.announce_keep_alive(timeout.as_secs());
        }
        request_loop(&state, http, client_cert_cn);
    }
    state.untrack_socket(conn_id);
}

/// Completes the TLS handshake; `None` if it failed (e.g. no or untrusted client certificate:
/// rustls then sends its alert and we hang up).
fn handshake(
    config: Arc<ServerConfig>,
    mut sock: Socket,
) -> Option<(Box<dyn Wire>, Option<String>)> {
    let mut conn = ServerConnection::new(config).ok()?;
    while conn.is_handshaking() {
        match conn.complete_io(&mut sock) {
            Ok((0, 0)) | Err(_) => {
                let _ = sock.tcp().shutdown(std::net::Shutdown::Both);
                return None;
            }
            Ok(_) => {}
        }
    }
    let cn = conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(tls::common_name);
    Some((Box::new(StreamOwned::new(conn, sock)), cn))
}

/// A connection idle this many keep-alive timeouts is closed. Well past the timeout: every
/// request between the two meets the deterministic drop, whichever pooled connection the client
/// picks. At 2× a loaded machine let a second pooled connection (idle since an earlier call) be
/// closed first, the client saw the close and opened a fresh one, and the "lost" call went through.
const IDLE_CLOSE_FACTOR: u32 = 5;

fn request_loop(state: &Arc<State>, mut http: HttpConn, client_cert_cn: Option<String>) {
    // Since the last response (the connection is idle between requests): counted from when its
    // final write began, which the client cannot precede, so that a thread scheduled late after
    // the write does not give the client extra idle time (a loaded machine let a call at 1.2 s
    // through a 1 s keep-alive).
    let mut idle_since: Option<std::time::Instant> = None;
    loop {
        if state.stopping() {
            break;
        }
        if let (Some(timeout), Some(_)) = (state.opts.keep_alive_timeout, idle_since) {
            if !http.wait_for_data(timeout * IDLE_CLOSE_FACTOR) {
                break;
            }
        }
        let req = match http.read_request() {
            Ok(Some(req)) => req,
            Ok(None) | Err(HttpError::Io(_)) => break,
            Err(HttpError::Malformed(status, why)) => {
                let _ = http.write_response(&Response::text(status, &why), true);
                break;
            }
        };
        if let (Some(timeout), Some(since)) = (state.opts.keep_alive_timeout, idle_since) {
            if since.elapsed() >= timeout {
                // Closed "before" it arrived: never read, never answered.
                http.abort();
                return;
            }
        }
        state.record(RecordedRequest {
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query.clone(),
            headers: req.headers.clone(),
            body: req.body.clone(),
            client_cert_cn: client_cert_cn.clone(),
            at: std::time::Instant::now(),
        });
        match route(state, &mut http, &req) {
            Next::KeepAlive => {
                idle_since = Some(
                    http.take_last_answer_began()
                        .unwrap_or_else(std::time::Instant::now),
                );
                continue;
            }
            Next::Close => break,
            Next::Drop => {
                http.abort();
                return;
            }
        }
    }
    http.close();
}

fn route(state: &Arc<State>, http: &mut HttpConn, req: &Request) -> Next {
    let opts = &state.opts;
    let endpoint = if opts.redirect_slash { "/mcp/" } else { "/mcp" };
    if opts.redirect_slash && req.path == "/mcp" {
        // Starlette's redirect_slashes: an absolute URL built from the Host header.
        let scheme = if opts.tls == super::TlsMode::PlainHttp {
            "http"
        } else {
            "https"
        };
        let default_host = format!("127.0.0.1:{}", state.port);
        let host = req.header("host").unwrap_or(&default_host);
        let location = format!("{scheme}://{host}/mcp/");
        return reply(http, req, Response::empty(307).header("Location", location));
    }
    if req.path == endpoint {
        if opts.legacy_get_on_mcp
            && opts.legacy_sse
            && req.method == "GET"
            && req.header("mcp-session-id").is_none()
        {
            return legacy::sse_stream(state, http, req);
        }
        if opts.streamable {
            return streamable::handle(state, http, req);
        }
        if req.method == "GET" && opts.legacy_sse {
            return legacy::sse_stream(state, http, req);
        }
        return reply(http, req, off_response(opts.streamable_off_status, req));
    }
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/sse") if opts.legacy_sse => legacy::sse_stream(state, http, req),
        ("POST", "/message") if opts.legacy_sse => legacy::message(state, http, req),
        // POSTing an initialize to the SSE URL is how clients probe for Streamable HTTP.
        (_, "/sse") if opts.legacy_sse => {
            reply(http, req, off_response(opts.streamable_off_status, req))
        }
        _ => reply(http, req, off_response(404, req)),
    }
}

/// The answer to a path or method the server does not serve, in the style of the real servers:
/// express's HTML 404, or Starlette's plain-text 405.
fn off_response(status: u16, req: &Request) -> Response {
    match status {
        404 => Response::with_body(
            404,
            "text/html; charset=utf-8",
            format!(
                "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>Cannot {} {}</pre>\n</body>\n</html>\n",
                req.method, req.path
            ),
        ),
        405 => Response::text(405, "Method Not Allowed").header("Allow", "GET"),
        other => Response::text(other, "Not served here"),
    }
}
