//! `mcp-secure-remote login <server-url>` and `logout <server-url>`: the OAuth login run once in a
//! terminal (so that an agent started later never waits for a browser), and its undoing. Both
//! take the same `--tls-*`/`--oauth-*` flags as the bridge; they print on stderr only.

use std::sync::Arc;

use ureq::http::Method;

use super::authorizer::LOGIN_BOUND;
use crate::config::Config;
use crate::http::response::read_short_body;
use crate::http::Http;
use crate::transport::exchange::{Exchange, Waits};
use crate::transport::stop::Stop;

/// Log in to the server of `config` and keep the tokens; returns the exit code.
pub fn login(mut config: Config, http: Http) -> i32 {
    if !config.oauth.enabled {
        log::error!("OAuth is off (--oauth off, MCP_REMOTE_OAUTH=off or an Authorization header): nothing to log in to");
        return 1;
    }
    // In a terminal the user is there: wait for the browser as long as a login may take.
    config.oauth.login_wait = LOGIN_BOUND;
    let (exchange, config) = setup(config, http);
    let Some(auth) = exchange.authorizer().cloned() else {
        return 1;
    };
    if !auth.store_is_persistent() {
        log::error!(
            "the token store is memory only, so a login here would be lost when this command ends: pass --oauth-token-store file:PATH, or use a machine with an OS credential store"
        );
        return 1;
    }
    let body = initialize_probe();
    let headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        (
            "Accept".to_string(),
            "application/json, text/event-stream".to_string(),
        ),
    ];
    let waits = Waits::response(std::time::Duration::from_secs(60));
    let response = match exchange.once(Method::POST, &config.url, &headers, body.as_slice(), waits)
    {
        Ok(r) => r,
        Err(e) => {
            log::error!("login to {} failed: {}", config.url, e.message());
            return 1;
        }
    };
    let status = response.status().as_u16();
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let _ = read_short_body(response);
    if let Some(session) = session {
        // The probe opened a session: close it again (405 is fine).
        let headers = vec![("Mcp-Session-Id".to_string(), session)];
        let _ = exchange.once(Method::DELETE, &config.url, &headers, (), waits);
    }
    match auth.status() {
        Some(status) => {
            eprintln!(
                "mcp-secure-remote: signed in to {} at {}\n  client: {}\n  scope: {}\n  token expires: {}\n  kept in: {}",
                config.url,
                status.issuer,
                status.registration.as_deref().unwrap_or("unknown"),
                status.scope.as_deref().unwrap_or("(none)"),
                status
                    .expires_in
                    .map_or("not said".to_string(), |s| format!("in {s} s")),
                status.store
            );
            0
        }
        None if (200..300).contains(&status) => {
            eprintln!(
                "mcp-secure-remote: {} answered without asking for authorization (HTTP {status}): nothing to keep",
                config.url
            );
            0
        }
        None => {
            log::error!(
                "login to {} failed: the server answered HTTP {status}",
                config.url
            );
            1
        }
    }
}

/// Revoke and forget the kept login; returns the exit code.
pub fn logout(config: Config, http: Http) -> i32 {
    let (exchange, config) = setup(config, http);
    let Some(auth) = exchange.authorizer() else {
        log::error!("OAuth is off: there is no login to forget");
        return 1;
    };
    if auth.logout() {
        eprintln!(
            "mcp-secure-remote: signed out of {} (removed from the {})",
            config.url,
            auth.store_description()
        );
    } else {
        eprintln!(
            "mcp-secure-remote: no login was kept for {} in the {}",
            config.url,
            auth.store_description()
        );
    }
    0
}

fn setup(config: Config, http: Http) -> (Exchange, Arc<Config>) {
    let config = Arc::new(config);
    let stop = Arc::new(Stop::new());
    let auth = super::authorizer_for(&config, &http, &stop);
    let exchange = Exchange::new(Arc::clone(&config), http).with_auth(auth);
    (exchange, config)
}

/// An `initialize` that makes a protected server show its challenge.
fn initialize_probe() -> Vec<u8> {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": "mcp-secure-remote:login",
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "mcp-secure-remote", "version": env!("CARGO_PKG_VERSION")}
        }
    })
    .to_string()
    .into_bytes()
}
