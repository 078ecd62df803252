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
pub mod dpop;
pub mod extensions;
pub mod flow;
pub mod jws;
pub mod lock;
pub mod loopback;
pub mod machine;
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
pub fn authorizer_for(
    config: &Arc<Config>,
    http: &Http,
    stop: &Arc<Stop>,
) -> Option<Arc<Authorizer>> {
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
    let choice =
        store::StoreChoice::parse(&options.token_store).unwrap_or(store::StoreChoice::Memory);
    let (store, warning) = store::open(&choice);
    // A key that cannot be read fails every authorization with its reason (the bridge stays up
    // for servers that never ask).
    let (machine, config_error) = match machine_client(config, http) {
        Ok(m) => (m, None),
        Err(e) => (None, Some(e)),
    };
    let settings = authorizer::Settings {
        machine,
        config_error,
        client: registration::ClientConfig {
            client_id: options.client_id.clone(),
            client_secret: options
                .client_secret
                .as_ref()
                .map(|s| s.expose().to_string()),
            metadata_url: options.client_metadata_url.clone(),
        },
        redirect_uri: options.redirect_uri.clone(),
        opener,
        login_wait: options.login_wait,
        dpop: options.dpop,
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

/// The machine grant's client, when `--oauth-grant` is not `authorization-code`.
fn machine_client(config: &Config, http: &Http) -> Result<Option<machine::MachineClient>, String> {
    let options = &config.oauth;
    if options.grant == crate::config::OAuthGrant::AuthorizationCode {
        return Ok(None);
    }
    use crate::config::JwtKeySource;
    use machine::JwtSigner;
    let jwt_key = match &options.jwt_key {
        None => None,
        Some(JwtKeySource::File(path)) => Some(JwtSigner::Key(
            crate::tls::signing_key_file("--oauth-jwt-key", path).map_err(|e| e.to_string())?,
        )),
        // Opened once, logged in once: every assertion is then one signature on the token.
        Some(JwtKeySource::Pkcs11(token)) => Some(JwtSigner::Key(
            crate::tls::signing_key_token(token)
                .map_err(|e| format!("--oauth-jwt-key {}: {e}", token.key.shown()))?,
        )),
        Some(JwtKeySource::Tls) => {
            tls_certified(http).ok_or(
                "--oauth-jwt-key tls needs a client certificate and key (--tls-cert/--tls-key, --tls-pfx or a pkcs11: key)",
            )?;
            Some(JwtSigner::Tls)
        }
    };
    Ok(Some(machine::MachineClient {
        grant: options.grant,
        client_id: options.client_id.clone(),
        client_secret: options
            .client_secret
            .as_ref()
            .map(|s| s.expose().to_string()),
        auth_method: options.client_auth.clone(),
        jwt_key,
        assertion_file: options.assertion_file.clone(),
        idp: options.idp.clone(),
    }))
}

/// The TLS client certificate and key (of the current, possibly rotated, config).
pub(crate) fn tls_certified(http: &Http) -> Option<Arc<rustls::sign::CertifiedKey>> {
    let config = http.tls_config.read().ok()?.clone();
    if !config.client_auth_cert_resolver.has_certs() {
        return None;
    }
    let schemes = config
        .crypto_provider()
        .signature_verification_algorithms
        .supported_schemes();
    config.client_auth_cert_resolver.resolve(&[], &schemes)
}
