//! Reading what the server answered: error bodies, certificate complaints of proxies, lost
//! sessions, backoff. Pure functions.

use std::time::Duration;

use crate::config::Config;
use crate::jsonrpc;
use crate::transport::renew::excerpt;

/// Whether an HTTP error body is a 2026-07-28 JSON-RPC error, which rules out the legacy fallback.
pub(super) fn is_modern_error(body: &[u8]) -> bool {
    matches!(
        jsonrpc::classify(body).ok().and_then(|i| i.error_code),
        Some(-32022..=-32020) | Some(-32601)
    )
}

/// TLS-terminating proxies (nginx: "400 No required SSL certificate was sent", "400 The SSL
/// certificate error") report client-certificate problems in an HTTP body after the handshake.
pub(super) fn proxy_certificate_complaint(body: &[u8], config: &Config) -> Option<String> {
    let host = config.tls.servername.as_deref().unwrap_or(&config.url.host);
    if let Some(why) = crate::http::late_certificate::from_error_body(body, host) {
        return Some(why); // Apache's 403 for a certificate asked for after the handshake
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]).to_ascii_lowercase();
    if text.contains("no required ssl certificate was sent") {
        let hint = if config.tls.has_identity() {
            "the certificate was not sent: check that it is signed by a CA the server asks for"
        } else {
            "set --tls-cert/--tls-key or --tls-pfx"
        };
        return Some(format!(
            "remote refused the connection: the server requires a client certificate (\"No required SSL certificate was sent\"); {hint}"
        ));
    }
    if text.contains("ssl certificate error") || text.contains("the ssl certificate error") {
        return Some(
            "remote refused the client certificate (\"The SSL certificate error\"): check that it is signed by a CA the server trusts, unexpired, with intermediates in --tls-cert".to_string(),
        );
    }
    None
}

/// "HTTP 503 from server: …" for an error frame built from an HTTP answer (whose message may
/// already say so, when the body was not JSON-RPC).
pub(super) fn http_error_message(status: u16, frame: &[u8]) -> String {
    let message = excerpt(frame);
    if message.starts_with("HTTP ") {
        message
    } else {
        format!("HTTP {status} from server: {message}")
    }
}

/// Exponential backoff with jitter, capped at 30 s.
pub(super) fn backoff(attempt: u32) -> Duration {
    let base = 250u64.saturating_mul(1 << attempt.min(7)).min(30_000);
    let jitter = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0),
    ) % (base / 4 + 1);
    Duration::from_millis(base - base / 8 + jitter)
}

/// 404 on a request that carried a session id means the session is gone (spec); the TypeScript
/// SDK answers 400 "No valid session ID provided" instead.
pub(super) fn is_session_gone(status: u16, body: &[u8]) -> bool {
    match status {
        404 => true,
        400 => {
            let text = String::from_utf8_lossy(&body[..body.len().min(2048)]).to_ascii_lowercase();
            text.contains("session")
                && (text.contains("no valid")
                    || text.contains("not found")
                    || text.contains("invalid"))
        }
        _ => false,
    }
}
