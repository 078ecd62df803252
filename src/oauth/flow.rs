//! The steps of MCP authorization that talk to the authorization server, in order: discovery
//! (protected-resource metadata, then the authorization server's), the client (pre-registered,
//! metadata document or dynamic registration), the browser login with PKCE and its loopback
//! redirect, and the token endpoint (code redemption, refresh, revocation). Each step returns
//! one true line on failure; nothing is sent to an endpoint before its document was validated.

use std::time::Instant;

use super::as_http::{shown_url, AsHttp};
use super::browser::{self, Opener};
use super::challenge::Challenge;
use super::dpop::Side;
use super::loopback::{Listener, LoopbackError};
use super::metadata::{self, AuthServer, ProtectedResource};
use super::pkce;
use super::registration::{self, ClientConfig, Plan};
use super::tokens::{now, Client, ClientSource, ErrorResponse, TokenResponse, Tokens};

/// What discovery found for the MCP server.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// The `resource` to send (the metadata's string verbatim); None for a 2025-03-26 server
    /// that publishes no resource metadata.
    pub resource: Option<String>,
    pub server: AuthServer,
    /// The resource's `scopes_supported`.
    pub resource_scopes: Option<Vec<String>>,
}

/// Discover the authorization server of `mcp_url`, starting from its challenge.
pub fn discover(
    http: &AsHttp,
    mcp_url: &url::Url,
    challenge: Option<&Challenge>,
) -> Result<Discovered, String> {
    let hinted = challenge.and_then(|c| c.param("resource_metadata"));
    let mut found = None;
    for url in metadata::protected_resource_urls(mcp_url, hinted) {
        metadata::check_endpoint(&url, http.config().oauth.allow_http)?;
        let answer = http.get(&url)?;
        if answer.ok() {
            let prm: ProtectedResource = answer.json("the protected-resource metadata", &url)?;
            found = Some(prm);
            break;
        }
        if !metadata::try_next_after(answer.status) {
            return Err(format!(
                "the protected-resource metadata at {} answered HTTP {}",
                shown_url(&url),
                answer.status
            ));
        }
    }
    let origin = metadata::origin_of(mcp_url);
    let Some(prm) = found else {
        if let Some(url) = hinted {
            return Err(format!(
                "the server's challenge names protected-resource metadata at {url}, which is not there"
            ));
        }
        // A 2025-03-26 server: the MCP server's origin is the authorization server.
        log::debug!("OAuth: no protected-resource metadata; using {origin} as the authorization server (MCP 2025-03-26)");
        let server = auth_server_metadata(http, &origin, true)?
            .unwrap_or_else(|| AuthServer::defaults_at(&origin));
        check_server(&server, http)?;
        return Ok(Discovered {
            resource: None,
            server,
            resource_scopes: None,
        });
    };
    if let Some(resource) = &prm.resource {
        metadata::check_resource(resource, mcp_url)?;
    }
    let issuer = prm.authorization_servers.first().ok_or_else(|| {
        "the server's protected-resource metadata names no authorization server".to_string()
    })?;
    let server = auth_server_metadata(http, issuer, false)?.ok_or_else(|| {
        format!("the authorization server {issuer} publishes no metadata at any well-known URL")
    })?;
    check_server(&server, http)?;
    Ok(Discovered {
        resource: Some(prm.resource.unwrap_or_else(|| mcp_url.to_string())),
        server,
        resource_scopes: prm.scopes_supported,
    })
}

/// The first metadata document found for `issuer`, with its `issuer` checked.
fn auth_server_metadata(
    http: &AsHttp,
    issuer: &str,
    backcompat: bool,
) -> Result<Option<AuthServer>, String> {
    for url in metadata::auth_server_urls(issuer)? {
        let answer = http.get(&url)?;
        if answer.ok() {
            let server: AuthServer = answer.json("the authorization server metadata", &url)?;
            let matches = metadata::check_issuer(&server.issuer, issuer);
            // A 2025-03-26 server's issuer is its origin, with or without a trailing slash.
            if backcompat && server.issuer.strip_suffix('/') == Some(issuer) {
                return Ok(Some(server));
            }
            matches?;
            return Ok(Some(server));
        }
        if !metadata::try_next_after(answer.status) {
            return Err(format!(
                "the authorization server metadata at {url} answered HTTP {}",
                answer.status
            ));
        }
    }
    Ok(None)
}

/// PKCE S256 advertised, and every endpoint allowed.
fn check_server(server: &AuthServer, http: &AsHttp) -> Result<(), String> {
    if !server.supports_s256() {
        return Err(format!(
            "the authorization server {} does not list PKCE S256 in code_challenge_methods_supported, which MCP requires; refusing to log in there",
            server.issuer
        ));
    }
    for endpoint in server.endpoints() {
        metadata::check_endpoint(endpoint, http.config().oauth.allow_http)?;
    }
    if server.authorization_endpoint.is_none() || server.token_endpoint.is_none() {
        return Err(format!(
            "the authorization server {} names no authorization or token endpoint",
            server.issuer
        ));
    }
    Ok(())
}

/// Everything a browser login needs.
pub struct LoginPlan<'a> {
    pub discovered: &'a Discovered,
    pub client_config: &'a ClientConfig,
    /// A client kept from an earlier run (reused at the same issuer).
    pub kept_client: Option<&'a Client>,
    pub redirect_uri: Option<&'a str>,
    pub scope: Option<String>,
    pub opener: &'a Opener,
    /// The MCP server, for the line that asks the user to sign in.
    pub server_name: &'a str,
    pub deadline: Instant,
    pub stopped: &'a (dyn Fn() -> bool + Sync),
    /// Called once the authorization URL is on stderr: until then, a request that gives up
    /// waiting must not tell the user to look for it there.
    pub shown: &'a (dyn Fn() + Sync),
}

/// The result of a login: the client used and the tokens it got.
pub struct LoggedIn {
    pub client: Client,
    pub tokens: Tokens,
}

/// Run the browser login: listen for the redirect, get a client, send the user to the
/// authorization endpoint, check what comes back, redeem the code.
pub fn login(http: &AsHttp, plan: LoginPlan<'_>) -> Result<LoggedIn, String> {
    let server = &plan.discovered.server;
    // A dynamically registered client's redirect URI is reused when its port is free, so that
    // a new sign-in does not register a new client (servers that match redirect URIs exactly
    // would refuse the old one on another port).
    let kept_uri = plan
        .kept_client
        .filter(|c| c.issuer == server.issuer && c.source == ClientSource::Dynamic)
        .and_then(|c| c.redirect_uri.as_deref());
    let listener = match (plan.redirect_uri, kept_uri) {
        (Some(uri), _) => Listener::for_redirect_uri(uri),
        (None, Some(uri)) => Listener::for_redirect_uri(uri).or_else(|_| Listener::ephemeral()),
        (None, None) => Listener::ephemeral(),
    }
    .map_err(|e| format!("cannot listen for the login's redirect: {e}"))?;
    let redirect_uri = listener.redirect_uri().to_string();
    let client =
        match registration::plan(plan.client_config, server, plan.kept_client, &redirect_uri)? {
            Plan::Use(client) => client,
            Plan::Register => register(http, server, &redirect_uri)?,
        };
    let verifier = pkce::verifier()?;
    let state = pkce::random_token(24)?;
    let url = authorization_url(
        server,
        &client,
        &redirect_uri,
        &pkce::challenge(&verifier),
        &state,
        plan.scope.as_deref(),
        plan.discovered.resource.as_deref(),
    )?;
    // Info, which is on by default: the user must see it even without --debug.
    log::info!(
        "sign in to {} in your browser; if it did not open, visit:\n{url}",
        plan.server_name
    );
    (plan.shown)();
    match browser::open(plan.opener, &url) {
        Ok(true) => log::debug!("OAuth: browser opened for the login"),
        Ok(false) => {}
        Err(e) => log::warn!("could not open a browser ({e}); open the URL above yourself"),
    }
    let callback = listener
        .wait(plan.deadline, plan.stopped)
        .map_err(|e| match e {
            LoopbackError::TimedOut => {
                "the login was not completed in the browser in time".to_string()
            }
            LoopbackError::Stopped => "the bridge is stopping".to_string(),
            other => format!("the login's redirect could not be received: {other}"),
        })?;
    let code = check_callback(server, &state, |name| {
        callback.get(name).map(str::to_string)
    })?;
    let mut form = vec![
        ("grant_type".to_string(), "authorization_code".to_string()),
        ("code".to_string(), code),
        ("redirect_uri".to_string(), redirect_uri),
        ("code_verifier".to_string(), verifier),
    ];
    if let Some(resource) = &plan.discovered.resource {
        form.push(("resource".into(), resource.clone()));
    }
    let tokens = token_request(http, server, &client, form)
        .map_err(|f| f.describe("redeeming the login's code"))?
        .into_tokens(now(), plan.scope.as_deref(), None)?;
    Ok(LoggedIn { client, tokens })
}

/// Dynamic client registration (RFC 7591).
fn register(http: &AsHttp, server: &AuthServer, redirect_uri: &str) -> Result<Client, String> {
    let endpoint = server
        .registration_endpoint
        .as_deref()
        .ok_or("the authorization server has no registration endpoint")?;
    let body = registration::registration_request(server, redirect_uri);
    let answer = http.post_json(endpoint, &body)?;
    if !answer.ok() {
        return Err(format!(
            "dynamic client registration at {} failed: {}",
            shown_url(endpoint),
            ErrorResponse::parse(&answer.body).describe(answer.status)
        ));
    }
    let client = registration::registered_client(server, &answer.body, redirect_uri)?;
    log::info!(
        "registered as a client of {} (dynamic client registration)",
        server.issuer
    );
    Ok(client)
}

/// The authorization request URL (RFC 6749 §4.1.1, PKCE, RFC 8707 `resource`).
fn authorization_url(
    server: &AuthServer,
    client: &Client,
    redirect_uri: &str,
    challenge: &str,
    state: &str,
    scope: Option<&str>,
    resource: Option<&str>,
) -> Result<String, String> {
    let endpoint = server
        .authorization_endpoint
        .as_deref()
        .ok_or("the authorization server has no authorization endpoint")?;
    let mut url = url::Url::parse(endpoint)
        .map_err(|e| format!("the authorization endpoint '{endpoint}' is not a URL ({e})"))?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", state);
        if let Some(scope) = scope {
            query.append_pair("scope", scope);
            // OIDC Core §11: a refresh token for offline access is issued only after consent.
            if scope
                .split_ascii_whitespace()
                .any(|s| s == "offline_access")
            {
                query.append_pair("prompt", "consent");
            }
        }
        if let Some(resource) = resource {
            query.append_pair("resource", resource);
        }
    }
    Ok(url.into())
}

/// Check the redirect's parameters (RFC 6749 §4.1.2, RFC 9207) and return the code. `state` is
/// matched first: an answer that is not ours says nothing, not even its error.
pub fn check_callback(
    server: &AuthServer,
    state: &str,
    get: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    if get("state").as_deref() != Some(state) {
        return Err(
            "the login's redirect carried the wrong state (a stale or forged redirect); try again"
                .into(),
        );
    }
    match get("iss") {
        Some(iss) if iss != server.issuer => {
            return Err(format!(
                "the login's redirect names issuer '{iss}', not '{}' (RFC 9207): refusing the code (a mix-up attack, or a misconfigured server)",
                server.issuer
            ))
        }
        None if server.authorization_response_iss_parameter_supported => {
            return Err(format!(
                "the authorization server {} promises an 'iss' parameter in its redirect, and this one has none: refusing the code",
                server.issuer
            ))
        }
        _ => {}
    }
    if let Some(error) = get("error") {
        let answer = ErrorResponse {
            error: Some(error),
            error_description: get("error_description"),
        };
        return Err(format!(
            "the authorization server refused the login: {}",
            answer.describe(400)
        ));
    }
    get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| "the login's redirect carried no code".to_string())
}

/// A refused token request.
#[derive(Debug)]
pub struct TokenFailure {
    pub status: Option<u16>,
    pub error: Option<String>,
    pub message: String,
}

impl TokenFailure {
    pub fn describe(&self, what: &str) -> String {
        format!("{what} failed: {}", self.message)
    }

    /// The grant is dead (`invalid_grant`, or any other 400 to a refresh): log in again.
    pub fn grant_is_dead(&self) -> bool {
        self.status.is_some_and(|s| (400..500).contains(&s))
    }

    /// The client itself was refused: register again.
    pub fn client_is_dead(&self) -> bool {
        matches!(
            self.error.as_deref(),
            Some("invalid_client" | "unauthorized_client")
        )
    }
}

/// POST to the token endpoint with the client's authentication.
pub fn token_request(
    http: &AsHttp,
    server: &AuthServer,
    client: &Client,
    mut form: Vec<(String, String)>,
) -> Result<TokenResponse, TokenFailure> {
    let endpoint = server.token_endpoint.as_deref().unwrap_or_default();
    let basic = registration::authenticate(client, &mut form);
    post_token(http, &server.issuer, endpoint, &form, basic.as_deref())
}

/// POST a token request to `endpoint` of `issuer` (the form already authenticated) and read the
/// answer.
pub fn post_token(
    http: &AsHttp,
    issuer: &str,
    endpoint: &str,
    form: &[(String, String)],
    basic: Option<&str>,
) -> Result<TokenResponse, TokenFailure> {
    let failed = |message| TokenFailure {
        status: None,
        error: None,
        message,
    };
    let dpop = http.dpop();
    let proof = || -> Result<Option<String>, TokenFailure> {
        dpop.as_ref()
            .map(|d| d.proof(Side::AuthServer, "POST", endpoint, None))
            .transpose()
            .map_err(failed)
    };
    let mut answer = http
        .post_form(endpoint, form, basic, proof()?.as_deref())
        .map_err(failed)?;
    if let (Some(d), Some(nonce)) = (&dpop, &answer.dpop_nonce) {
        d.keep_nonce(Side::AuthServer, nonce);
        // RFC 9449 §8: a nonce demanded is a retry with a new proof, not a failure.
        if !answer.ok()
            && ErrorResponse::parse(&answer.body).error.as_deref() == Some("use_dpop_nonce")
        {
            log::debug!("OAuth: the token endpoint wants a DPoP nonce; sending again");
            answer = http
                .post_form(endpoint, form, basic, proof()?.as_deref())
                .map_err(failed)?;
            if let Some(nonce) = &answer.dpop_nonce {
                d.keep_nonce(Side::AuthServer, nonce);
            }
        }
    }
    if !answer.ok() {
        let error = ErrorResponse::parse(&answer.body);
        return Err(TokenFailure {
            status: Some(answer.status),
            message: format!(
                "the token endpoint of {issuer} answered {}",
                error.describe(answer.status)
            ),
            error: error.error,
        });
    }
    let response: TokenResponse = answer
        .json("the token endpoint's answer", endpoint)
        .map_err(failed)?;
    if response.token_type.eq_ignore_ascii_case("dpop") && dpop.is_none() {
        return Err(failed(
            "the token endpoint issued a DPoP-bound token to a request without a DPoP proof".into(),
        ));
    }
    Ok(response)
}

/// Renew with the refresh token, asking for the same scope (Entra refuses a scopeless refresh).
pub fn refresh(
    http: &AsHttp,
    server: &AuthServer,
    client: &Client,
    tokens: &Tokens,
    resource: Option<&str>,
) -> Result<Tokens, TokenFailure> {
    let Some(refresh_token) = tokens.refresh_token.clone() else {
        return Err(TokenFailure {
            status: None,
            error: None,
            message: "no refresh token was issued".into(),
        });
    };
    let mut form = vec![
        ("grant_type".to_string(), "refresh_token".to_string()),
        ("refresh_token".to_string(), refresh_token.clone()),
    ];
    if let Some(scope) = &tokens.scope {
        form.push(("scope".into(), scope.clone()));
    }
    if let Some(resource) = resource {
        form.push(("resource".into(), resource.to_string()));
    }
    token_request(http, server, client, form)?
        .into_tokens(now(), tokens.scope.as_deref(), Some(refresh_token))
        .map_err(|message| TokenFailure {
            status: None,
            error: None,
            message,
        })
}

/// Revoke a token (RFC 7009) where the server offers it; failures are only logged.
pub fn revoke(http: &AsHttp, server: &AuthServer, client: &Client, token: &str, hint: &str) {
    let Some(endpoint) = server.revocation_endpoint.as_deref() else {
        return;
    };
    let mut form = vec![
        ("token".to_string(), token.to_string()),
        ("token_type_hint".to_string(), hint.to_string()),
    ];
    let basic = registration::authenticate(client, &mut form);
    match http.post_form(endpoint, &form, basic.as_deref(), None) {
        Ok(a) if a.ok() => log::info!("revoked the {hint} at {}", server.issuer),
        Ok(a) => log::warn!(
            "the revocation endpoint of {} answered HTTP {}",
            server.issuer,
            a.status
        ),
        Err(e) => log::warn!("could not revoke the {hint}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(iss_supported: bool) -> AuthServer {
        AuthServer {
            issuer: "http://localhost:9".into(),
            authorization_response_iss_parameter_supported: iss_supported,
            ..AuthServer::default()
        }
    }

    fn params<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn callback_state_is_checked_before_anything_else() {
        let s = server(false);
        assert!(check_callback(&s, "st", params(&[("state", "other"), ("code", "c")])).is_err());
        let err = check_callback(&s, "st", params(&[("error", "access_denied")]));
        assert!(err.is_err_and(|e| !e.contains("access_denied")));
        assert_eq!(
            check_callback(&s, "st", params(&[("state", "st"), ("code", "c")])).ok(),
            Some("c".to_string())
        );
    }

    #[test]
    fn iss_is_compared_exactly_when_present_and_required_when_promised() {
        let promised = server(true);
        let silent = server(false);
        let ok = [
            ("state", "st"),
            ("code", "c"),
            ("iss", "http://localhost:9"),
        ];
        let missing = [("state", "st"), ("code", "c")];
        let slash = [
            ("state", "st"),
            ("code", "c"),
            ("iss", "http://localhost:9/"),
        ];
        let wrong = [("state", "st"), ("code", "c"), ("iss", "http://evil")];
        assert!(check_callback(&promised, "st", params(&ok)).is_ok());
        assert!(check_callback(&promised, "st", params(&missing)).is_err());
        assert!(check_callback(&promised, "st", params(&slash)).is_err());
        assert!(check_callback(&silent, "st", params(&wrong)).is_err());
        assert!(check_callback(&silent, "st", params(&missing)).is_ok());
        assert!(check_callback(&silent, "st", params(&ok)).is_ok());
    }

    #[test]
    fn authorization_url_carries_pkce_state_scope_and_resource_verbatim() {
        let s = AuthServer {
            authorization_endpoint: Some("http://as/authorize?tenant=1".into()),
            ..server(false)
        };
        let client = Client {
            issuer: s.issuer.clone(),
            client_id: "cid".into(),
            client_secret: None,
            auth_method: "none".into(),
            redirect_uri: None,
            source: ClientSource::Dynamic,
            secret_expires_at: 0,
        };
        let url = authorization_url(
            &s,
            &client,
            "http://127.0.0.1:5/callback",
            "chal",
            "st",
            Some("a b"),
            Some("http://localhost:3000"),
        )
        .unwrap_or_default();
        let parsed = url::Url::parse(&url).unwrap_or_else(|e| panic!("{e}"));
        let q: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("tenant"), Some("1"));
        assert_eq!(get("code_challenge_method"), Some("S256"));
        assert_eq!(get("scope"), Some("a b"));
        assert_eq!(get("resource"), Some("http://localhost:3000"));
        assert_eq!(get("redirect_uri"), Some("http://127.0.0.1:5/callback"));
    }
}
