//! The one HTTP agent the bridge and the test client use, with ureq's risky defaults overridden.
//!
//! ureq 3 follows redirects (even https→http), has no timeouts, turns 4xx/5xx into errors and keeps
//! only 3 idle connections per host. We turn redirects off (same-origin ones are followed by the
//! transport code, which can check the origin), set a connect timeout, read every status ourselves
//! and size the idle pool for the number of requests we allow in flight.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::pki_types::ServerName;
use ureq::unversioned::transport::{ConnectProxyConnector, Connector};
use ureq::{Agent, Proxy};

use super::connector::{HandshakeLog, MtlsConnector};
use super::keepalive::{self, Hints};
use super::resolve::LiteralFirst;
use super::rotation::{ConfigSlot, Rotation};
use crate::config::{redact_userinfo, Config, ProxySetting};
use crate::tls::ClientTls;

/// Requests the bridge lets run at once; the idle pool is sized to match so that a burst of
/// concurrent calls reuses its connections instead of handshaking again.
pub const MAX_IN_FLIGHT: usize = 256;

/// Each connection's input buffer, which also bounds the response head.
const INPUT_BUFFER: usize = 16 * 1024;

/// An agent plus the handles that outlive its construction.
#[derive(Clone)]
pub struct Http {
    pub agent: Agent,
    /// Replace the `ClientConfig` here and new connections use it (certificate rotation).
    pub tls_config: ConfigSlot,
    /// The most recent TLS handshake.
    pub handshakes: HandshakeLog,
    /// The watch on the TLS files (certificate rotation).
    rotation: Arc<Rotation>,
}

impl Http {
    /// Reload the TLS configuration now if its files changed (at most one look per
    /// [`super::rotation::CHECK_INTERVAL`]), so that a caller about to choose what to send (a
    /// token bound to the certificate) sees the identity the request's connection will present.
    pub fn follow_rotation(&self) {
        self.rotation.refresh();
    }
}

/// Why the agent could not be built. Display is a one-line instruction.
#[derive(Debug)]
pub enum AgentError {
    SocksProxy(String),
    BadProxy(String),
    /// `--proxy` / MCP_REMOTE_PROXY names a URL ureq cannot use.
    BadChosenProxy(String),
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentError::SocksProxy(p) => write!(
                f,
                "the proxy in the environment ({p}) is a SOCKS proxy, which mcp-secure-remote does not support; \
                 unset ALL_PROXY/HTTPS_PROXY or use an HTTP CONNECT proxy (NO_PROXY is honoured)"
            ),
            AgentError::BadProxy(p) => write!(
                f,
                "cannot use the proxy from the environment ({p}): check ALL_PROXY/HTTPS_PROXY/HTTP_PROXY"
            ),
            AgentError::BadChosenProxy(p) => write!(
                f,
                "cannot use the proxy {p} (--proxy or MCP_REMOTE_PROXY): give it as http://host:port"
            ),
        }
    }
}

impl std::error::Error for AgentError {}

/// The proxy `--proxy` / MCP_REMOTE_PROXY or the environment chooses, if any. One from the
/// environment may still exclude a host (NO_PROXY: [`Proxy::is_no_proxy`]); `--proxy <url>` never
/// does.
pub fn chosen_proxy(config: &Config) -> Result<Option<Proxy>, AgentError> {
    Ok(match &config.proxy {
        ProxySetting::FromEnvironment => env_proxy()?,
        ProxySetting::Direct => {
            log::debug!("--proxy none: connecting directly, whatever HTTPS_PROXY says");
            None
        }
        // Proxy::new, unlike Proxy::try_from_env, applies no NO_PROXY: this server goes through it.
        ProxySetting::Url(url) => {
            Some(Proxy::new(url).map_err(|_| AgentError::BadChosenProxy(redact_userinfo(url)))?)
        }
    })
}

/// Build the agent for `config` with the TLS client configuration `tls`.
pub fn build(config: &Config, tls: &ClientTls) -> Result<Http, AgentError> {
    let proxy = chosen_proxy(config)?;
    let hints = Hints::default();
    let ureq_config = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .https_only(false)
        .proxy(proxy)
        .timeout_connect(Some(config.connect_timeout))
        .timeout_resolve(Some(config.connect_timeout))
        .max_idle_connections(MAX_IN_FLIGHT)
        .max_idle_connections_per_host(MAX_IN_FLIGHT)
        .max_idle_age(Duration::from_secs(60))
        // Per-connection buffers: ureq's 128 KiB defaults times a burst of pooled connections is
        // most of the bridge's memory. 16 KiB holds any sane response head (nginx's and Apache's
        // own limits are 8 KiB per line) and bodies stream through whatever the size. Measured
        // with 200 requests in flight (`make bench`): 53.7 MiB peak RSS with 64 KiB, 34.2 MiB
        // with 16 KiB (glibc build; the static musl build 30.0 MiB). These are the plaintext
        // buffers; the socket beneath TLS has smaller ones of its own (`connector::connect_tcp`).
        .input_buffer_size(INPUT_BUFFER)
        .output_buffer_size(16 * 1024)
        // The response head must fit in the input buffer. ureq's own limit (64 KiB) is larger, so
        // a longer head filled the buffer and was reported as a disconnect ("closed by the server
        // before it answered"); one byte under the buffer, ureq names it as an oversized header.
        .max_response_header_size(INPUT_BUFFER - 1)
        .user_agent(concat!("mcp-secure-remote/", env!("CARGO_PKG_VERSION")))
        // Compression stays off: the SSE stream must arrive as the server flushes it.
        .accept_encoding("identity")
        .middleware(keepalive::middleware(hints.clone()))
        .build();

    let tls_config: ConfigSlot = Arc::new(RwLock::new(Arc::clone(&tls.config)));
    let handshakes: HandshakeLog = Arc::new(Mutex::new(None));
    let servername = config
        .tls
        .servername
        .as_ref()
        .and_then(|name| ServerName::try_from(name.clone()).ok())
        .map(|name| (config.url.host.clone(), name));

    let rotation = Rotation::new(config.tls.clone(), Arc::clone(&tls_config));
    let connector =
        ().chain(ConnectProxyConnector::default())
            .chain(MtlsConnector::new(
                Arc::clone(&tls_config),
                servername,
                Arc::clone(&handshakes),
                Some(Arc::clone(&rotation)),
                hints,
            ));
    let agent = Agent::with_parts(ureq_config, connector, LiteralFirst::default());
    Ok(Http {
        agent,
        tls_config,
        handshakes,
        rotation,
    })
}

/// The variables that choose a proxy, in ureq's order of precedence.
pub const PROXY_VARS: [&str; 6] = [
    "ALL_PROXY",
    "all_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
];

/// The proxy from ALL_PROXY / HTTPS_PROXY / HTTP_PROXY (ureq's order), refusing SOCKS: our connector
/// chain has no SOCKS step, and silently connecting directly would bypass the user's proxy.
fn env_proxy() -> Result<Option<Proxy>, AgentError> {
    for var in PROXY_VARS {
        let Ok(value) = std::env::var(var) else {
            continue;
        };
        if value.trim().is_empty() {
            continue;
        }
        let shown = format!("{var}={}", redact_userinfo(&value));
        if value.trim().to_ascii_lowercase().starts_with("socks") {
            return Err(AgentError::SocksProxy(shown));
        }
        return match Proxy::try_from_env() {
            Some(p) => Ok(Some(p)),
            None => Err(AgentError::BadProxy(shown)),
        };
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::redact_userinfo;

    #[test]
    fn proxy_credentials_are_hidden() {
        assert_eq!(
            redact_userinfo("http://u:p@proxy:3128"),
            "http://***@proxy:3128"
        );
        assert_eq!(redact_userinfo("u:p@proxy:3128"), "***@proxy:3128");
        assert_eq!(redact_userinfo("http://proxy:3128"), "http://proxy:3128");
    }
}
