//! HTTP: the ureq agent with our TLS connector, and the diagnosis of failed exchanges.

pub mod agent;
pub mod cancel;
pub mod connector;
pub mod diagnose;
pub mod encoding;
pub mod response;
pub mod rotation;
pub mod stage;
pub mod tls_words;

pub use agent::{build, Http, MAX_IN_FLIGHT};
