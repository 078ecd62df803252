//! MCP authorization (OAuth 2.1) beside mTLS: when the MCP server answers `401` with a `Bearer`
//! challenge, the bridge discovers its authorization server, gets a client, logs the user in
//! once in the browser, and sends the token on every request of the session.
//!
//! The pieces, in the order a login meets them:
//! - [`challenge`]: `WWW-Authenticate` parsing (pure).
//! - [`metadata`]: where to look for metadata, what it must say, which scope to ask (pure).
//! - [`registration`]: which client, and how it authenticates (pure).
//! - [`pkce`], [`tokens`]: PKCE values; what is kept of an authorization (pure).
//! - [`as_http`]: the calls to the authorization server, over the bridge's own TLS agent.
//! - [`flow`]: discovery, registration, the browser login, code redemption, refresh, revocation.
//! - [`loopback`], [`browser`]: the RFC 8252 redirect listener; opening the browser.
//! - [`store`], [`lock`]: where tokens live; the per-server lock shared by bridge processes.
//! - [`authorizer::Authorizer`]: the process's one authorization state and its policy; the
//!   transport's [`crate::transport::exchange::Exchange`] asks it for headers and hands it
//!   challenges.
//! - [`command`]: `mcp-secure-remote login` / `logout`.

pub mod as_http;
pub mod authorizer;
pub mod browser;
pub mod challenge;
pub mod command;
pub mod flow;
pub mod lock;
pub mod loopback;
pub mod metadata;
pub mod pkce;
pub mod registration;
pub mod store;
pub mod tokens;

pub use authorizer::{Authorizer, Verdict};

use std::sync::Arc;

use crate::config::Config;
use crate::http::Http;
use crate::transport::stop::Stop;

/// The authorizer of this configuration, or None when OAuth is off.
pub fn authorizer_for(config: &Arc<Config>, http: &Http, stop: &Arc<Stop>) -> Option<Arc<Authorizer>> {
    let options = &config.oauth;
    if !options.enabled {
        return None;
    }
    let mcp_url = match url::Url::parse(&config.url.full) {
        Ok(u) => u,
        Err(e) => {
            log::warn!("OAuth is off: the server URL cannot be read as a URL ({e})");
            return None;
        }
    };
    // Both were validated by the command line parser.
    let opener = browser::Opener::parse(&options.browser).unwrap_or(browser::Opener::None);
    let choice = store::StoreChoice::parse(&options.token_store).unwrap_or(store::StoreChoice::Memory);
    let (store, warning) = store::open(&choice);
    let settings = authorizer::Settings {
        client: registration::ClientConfig {
            client_id: options.client_id.clone(),
            client_secret: options.client_secret.as_ref().map(|s| s.expose().to_string()),
            metadata_url: options.client_metadata_url.clone(),
        },
        redirect_uri: options.redirect_uri.clone(),
        opener,
        login_wait: options.login_wait,
        store_warning: warning,
    };
    Some(Authorizer::new(
        as_http::AsHttp::new(Arc::clone(config), http.clone()),
        mcp_url,
        settings,
        store,
        Arc::clone(stop),
    ))
}
