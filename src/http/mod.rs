//! HTTP: the ureq agent with our TLS connector, and the diagnosis of failed exchanges.

pub mod agent;
pub mod cancel;
pub mod connector;
pub mod diagnose;
pub mod encoding;
pub mod keepalive;
pub mod late_certificate;
pub mod resolve;
pub mod response;
pub mod rotation;
pub mod stage;
pub mod tls_words;
pub mod tunnel;

pub use agent::{build, Http, MAX_IN_FLIGHT};

/// RFC 9110 `tchar`: the characters of a header name (and of other tokens).
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
