//! Small readers of an HTTP response that every exchange needs.

use std::io::Read;

use serde_json::value::RawValue;
use ureq::http::Response;
use ureq::Body;

use crate::jsonrpc::{self, Id};

/// The part of an error body that is read (for its message); the rest is dropped.
pub const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// The `Content-Type`, trimmed and lower-cased.
pub fn content_type(resp: &Response<Body>) -> Option<String> {
    resp.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
}

/// Whether the response is an event stream.
pub fn is_event_stream(resp: &Response<Body>) -> bool {
    content_type(resp).is_some_and(|ct| ct.starts_with("text/event-stream"))
}

/// Read a short body (an error page, a 202's "Accepted") to its end, at most
/// [`ERROR_BODY_LIMIT`] bytes (decoded, if a proxy compressed it). Reading a short body whole
/// also lets its connection be reused.
pub fn read_short_body(resp: Response<Body>) -> Vec<u8> {
    let mut body = Vec::new();
    let _ = super::encoding::decoded_body(resp)
        .take(ERROR_BODY_LIMIT)
        .read_to_end(&mut body);
    body
}

/// The `WWW-Authenticate` challenge of an answer (the first one, trimmed).
pub fn www_authenticate(resp: &Response<Body>) -> Option<String> {
    resp.headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Longest challenge quoted in a message (they can carry long `resource_metadata` URLs).
const CHALLENGE_CHARS: usize = 160;

/// The JSON-RPC error frame for an HTTP error answer: [`jsonrpc::error_from_http`], except that a
/// 401 whose `WWW-Authenticate` asks for a bearer token (an OAuth-protected server) says so, true
/// to what was sent (`token_sent`: the user's own `Authorization` header): the body of such an
/// answer is usually empty or OAuth JSON. (With OAuth on, the bridge answers such a 401 itself.)
pub fn error_frame(
    id: &Id,
    status: u16,
    content_type: Option<&str>,
    www_authenticate: Option<&str>,
    body: &[u8],
    token_sent: bool,
) -> Vec<u8> {
    match www_authenticate
        .filter(|_| status == 401)
        .and_then(|c| bearer_message(c, token_sent))
    {
        Some(message) => {
            let data = serde_json::json!({
                "httpStatus": status,
                "wwwAuthenticate": www_authenticate.unwrap_or_default(),
            });
            let data = RawValue::from_string(data.to_string()).ok();
            jsonrpc::error_response(Some(id), jsonrpc::HTTP_ERROR, &message, data.as_deref())
        }
        None => jsonrpc::error_from_http(id, status, content_type, body),
    }
}

/// The message for a 401 with a `Bearer` challenge, `None` for other schemes.
fn bearer_message(challenge: &str, token_sent: bool) -> Option<String> {
    let (scheme, params) = challenge
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((challenge, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let shown: String = challenge
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(CHALLENGE_CHARS)
        .collect();
    let ellipsis = if challenge.chars().count() > CHALLENGE_CHARS {
        "…"
    } else {
        ""
    };
    // RFC 6750 §3.1: `invalid_token` means the token sent was refused (expired, revoked, wrong).
    let _ = params;
    let (what, todo) = if token_sent {
        (
            "the server refused the Authorization header sent with --header",
            "pass a valid token, or drop the header so that the bridge logs in (OAuth)",
        )
    } else {
        (
            "the server wants an OAuth bearer token, and OAuth is off (--oauth off)",
            "remove --oauth off (or MCP_REMOTE_OAUTH=off) so that the bridge logs in, or pass a token with --header \"Authorization: Bearer ${TOKEN}\"",
        )
    };
    Some(format!(
        "HTTP 401 from server: {what} (WWW-Authenticate: {shown}{ellipsis}); {todo}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(frame: &[u8]) -> String {
        let v: serde_json::Value = serde_json::from_slice(frame).unwrap();
        v["error"]["message"].as_str().unwrap().to_string()
    }

    #[test]
    fn a_bearer_challenge_asks_for_a_token_and_shows_the_flag() {
        let challenge = r#"Bearer realm="mcp", resource_metadata="https://a.example/.well-known/oauth-protected-resource""#;
        let frame = error_frame(&Id::Num(3), 401, None, Some(challenge), b"", false);
        let v: serde_json::Value = serde_json::from_slice(&frame).unwrap();
        assert_eq!(v["id"], 3);
        assert_eq!(v["error"]["code"], jsonrpc::HTTP_ERROR);
        assert_eq!(v["error"]["data"]["httpStatus"], 401);
        assert_eq!(v["error"]["data"]["wwwAuthenticate"], challenge);
        assert_eq!(
            message(&frame),
            format!(
                "HTTP 401 from server: the server wants an OAuth bearer token, and OAuth is off \
                 (--oauth off) (WWW-Authenticate: {challenge}); remove --oauth off (or \
                 MCP_REMOTE_OAUTH=off) so that the bridge logs in, or pass a token with --header \
                 \"Authorization: Bearer ${{TOKEN}}\""
            )
        );
    }

    #[test]
    fn a_refused_header_token_is_named_only_when_one_was_sent() {
        let challenge = r#"bearer error="invalid_token", error_description="expired""#;
        let frame = error_frame(
            &Id::Num(1),
            401,
            Some("application/json"),
            Some(challenge),
            b"{}",
            true,
        );
        assert!(message(&frame).starts_with(
            "HTTP 401 from server: the server refused the Authorization header sent with --header"
        ));
        let none_sent = error_frame(&Id::Num(1), 401, None, Some(challenge), b"{}", false);
        assert!(
            !message(&none_sent).contains("refused"),
            "{}",
            message(&none_sent)
        );
    }

    #[test]
    fn other_challenges_and_statuses_keep_the_plain_mapping() {
        let basic = error_frame(
            &Id::Num(1),
            401,
            None,
            Some("Basic realm=\"x\""),
            b"",
            false,
        );
        assert_eq!(message(&basic), "HTTP 401 from server (empty body)");
        let forbidden = error_frame(&Id::Num(1), 403, None, Some("Bearer"), b"no", false);
        assert_eq!(message(&forbidden), "HTTP 403 from server: no");
        let long = format!("Bearer realm=\"{}\"", "r".repeat(500));
        let frame = error_frame(&Id::Num(1), 401, None, Some(&long), b"", false);
        assert!(message(&frame).contains("rrr…); remove --oauth off"));
    }
}
