//! Discovery as pure functions: where to look for protected-resource metadata (RFC 9728) and
//! authorization-server metadata (RFC 8414 / OpenID Discovery), in the MCP specification's order,
//! and the checks a document must pass before anything is sent to the endpoints it names.
//!
//! Issuers and `resource` values are compared and sent as the exact strings received: a round
//! trip through a URL parser turns `http://h:1` into `http://h:1/`, which conformance and real
//! authorization servers (Entra ID) refuse.

use serde::{Deserialize, Serialize};

/// RFC 9728 protected-resource metadata (the fields a client uses).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProtectedResource {
    pub resource: Option<String>,
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    pub scopes_supported: Option<Vec<String>>,
}

/// RFC 8414 authorization-server metadata (the fields a client uses). Kept in the token store, so
/// that a restarted bridge refreshes without discovering again.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct AuthServer {
    pub issuer: String,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub registration_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    pub scopes_supported: Option<Vec<String>>,
    pub code_challenge_methods_supported: Option<Vec<String>>,
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    pub token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    /// RFC 9449: the server issues DPoP-bound tokens with these proof algorithms.
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
    /// RFC 8705 §5: endpoints to use when the client authenticates with its certificate.
    pub mtls_endpoint_aliases: Option<MtlsAliases>,
}

/// RFC 8705 `mtls_endpoint_aliases` (the one a client uses).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct MtlsAliases {
    pub token_endpoint: Option<String>,
}

impl AuthServer {
    /// The 2025-03-26 defaults when a server publishes no metadata at all: `/authorize`,
    /// `/token` and `/register` at the MCP server's origin, which is also the issuer.
    pub fn defaults_at(origin: &str) -> AuthServer {
        AuthServer {
            issuer: origin.to_string(),
            authorization_endpoint: Some(format!("{origin}/authorize")),
            token_endpoint: Some(format!("{origin}/token")),
            registration_endpoint: Some(format!("{origin}/register")),
            code_challenge_methods_supported: Some(vec!["S256".into()]),
            ..AuthServer::default()
        }
    }

    /// PKCE with S256 is advertised (MUST: refuse an AS that does not list it).
    pub fn supports_s256(&self) -> bool {
        self.code_challenge_methods_supported
            .as_ref()
            .is_some_and(|m| m.iter().any(|m| m == "S256"))
    }

    /// The AS lists `scope` among the scopes it supports.
    pub fn lists_scope(&self, scope: &str) -> bool {
        self.scopes_supported
            .as_ref()
            .is_some_and(|s| s.iter().any(|s| s == scope))
    }

    /// The server issues DPoP-bound tokens (RFC 9449 §5.1).
    pub fn offers_dpop(&self) -> bool {
        self.dpop_signing_alg_values_supported
            .as_ref()
            .is_some_and(|a| !a.is_empty())
    }

    /// The URLs this metadata makes the client send to, for the scheme and origin checks.
    pub fn endpoints(&self) -> impl Iterator<Item = &str> {
        let alias = self
            .mtls_endpoint_aliases
            .as_ref()
            .and_then(|a| a.token_endpoint.as_deref());
        [
            self.authorization_endpoint.as_deref(),
            self.token_endpoint.as_deref(),
            self.registration_endpoint.as_deref(),
            self.revocation_endpoint.as_deref(),
            alias,
        ]
        .into_iter()
        .flatten()
    }
}

/// Where to fetch protected-resource metadata, in order: the challenge's `resource_metadata`
/// alone when given (probing others is a spec violation conformance checks), else the
/// path-based well-known URL and then the root one.
pub fn protected_resource_urls(mcp_url: &url::Url, from_challenge: Option<&str>) -> Vec<String> {
    if let Some(url) = from_challenge {
        return vec![url.to_string()];
    }
    let origin = origin_of(mcp_url);
    let root = format!("{origin}/.well-known/oauth-protected-resource");
    let path = mcp_url.path().trim_end_matches('/');
    if path.is_empty() {
        vec![root]
    } else {
        vec![format!("{root}{path}"), root]
    }
}

/// Where to fetch authorization-server metadata for `issuer`, in order (MCP 2025-11-25 §4.3):
/// with a path, RFC 8414 and OpenID with the path inserted, then OpenID with it appended; without
/// one, RFC 8414 then OpenID at the root. Never the root variant for a path issuer.
pub fn auth_server_urls(issuer: &str) -> Result<Vec<String>, String> {
    let parsed = url::Url::parse(issuer)
        .map_err(|e| format!("the authorization server '{issuer}' is not a URL ({e})"))?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!(
            "the authorization server '{issuer}' has a query or fragment, which an issuer may not have"
        ));
    }
    let origin = origin_of(&parsed);
    let path = parsed.path().trim_end_matches('/');
    Ok(if path.is_empty() {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server"),
            format!("{origin}/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ]
    })
}

/// Whether the next well-known URL is worth trying after this status (4xx or 502: the document
/// is not there); anything else stops discovery.
pub fn try_next_after(status: u16) -> bool {
    (400..500).contains(&status) || status == 502
}

/// The metadata's `resource` must name the MCP server: same origin, and a path that is a prefix
/// of the server's path (RFC 9728 §3.3 says identical; the SDKs and conformance allow a prefix),
/// no fragment.
pub fn check_resource(resource: &str, mcp_url: &url::Url) -> Result<(), String> {
    let refuse = |why: &str| {
        Err(format!(
            "the server's protected-resource metadata names resource '{resource}', {why} ({mcp_url}); refusing to send credentials for it"
        ))
    };
    let Ok(parsed) = url::Url::parse(resource) else {
        return refuse("which is not a URL, for the MCP server");
    };
    if parsed.fragment().is_some() {
        return refuse("which has a fragment, for the MCP server");
    }
    if parsed.origin() != mcp_url.origin() {
        return refuse("another origin than the MCP server");
    }
    let prefix = parsed.path().trim_end_matches('/');
    let path = mcp_url.path();
    let is_prefix = path == prefix
        || path.starts_with(prefix) && path[prefix.len()..].starts_with('/')
        || prefix.is_empty();
    if !is_prefix {
        return refuse("whose path is not a prefix of the MCP server's");
    }
    Ok(())
}

/// The metadata's `issuer` must be the issuer the metadata URL was built from (MUST NOT use it
/// otherwise). One tolerance, as the TypeScript SDK's: a trailing `/` on the expected issuer
/// (servers built on pydantic's `AnyHttpUrl` add one).
pub fn check_issuer(found: &str, expected: &str) -> Result<(), String> {
    if found == expected || expected.strip_suffix('/') == Some(found) {
        return Ok(());
    }
    Err(format!(
        "the authorization server metadata names issuer '{found}', not '{expected}' where it was fetched from; refusing to use it"
    ))
}

/// An endpoint the client will send to must be HTTPS, unless it is on this machine or the user
/// allowed plain HTTP (`--allow-http`).
pub fn check_endpoint(endpoint: &str, allow_http: bool) -> Result<url::Url, String> {
    let parsed = url::Url::parse(endpoint).map_err(|e| {
        format!("the authorization server endpoint '{endpoint}' is not a URL ({e})")
    })?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if allow_http || is_loopback(&parsed) => Ok(parsed),
        "http" => Err(format!(
            "the authorization server endpoint '{endpoint}' is plain HTTP; it must be HTTPS (or pass --allow-http)"
        )),
        other => Err(format!(
            "the authorization server endpoint '{endpoint}' has scheme '{other}'; only https is used"
        )),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `scheme://host[:port]` as written (no trailing slash).
pub fn origin_of(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

/// The scope to ask for (MCP 2025-11-25 §6): the challenge's `scope`, else every scope the
/// resource lists, else none; with what an earlier authorization had (step-up asks the union);
/// plus `offline_access` when the *authorization server* lists it (for a refresh token).
pub fn choose_scope(
    challenged: Option<&str>,
    resource_scopes: Option<&[String]>,
    earlier: Option<&str>,
    server: &AuthServer,
) -> Option<String> {
    fn add(scopes: &mut Vec<String>, s: &str) {
        for one in s.split_ascii_whitespace() {
            if !scopes.iter().any(|have| have == one) {
                scopes.push(one.to_string());
            }
        }
    }
    let mut scopes: Vec<String> = Vec::new();
    if let Some(earlier) = earlier {
        add(&mut scopes, earlier);
    }
    match (challenged, resource_scopes) {
        (Some(scope), _) => add(&mut scopes, scope),
        (None, Some(list)) => add(&mut scopes, &list.join(" ")),
        (None, None) => {}
    }
    if server.lists_scope("offline_access") {
        if !scopes.is_empty() {
            add(&mut scopes, "offline_access");
        }
    } else {
        scopes.retain(|s| s != "offline_access");
    }
    (!scopes.is_empty()).then(|| scopes.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn protected_resource_order_is_challenge_alone_else_path_then_root() {
        let mcp = url("http://localhost:3000/mcp");
        assert_eq!(
            protected_resource_urls(&mcp, Some("http://x/custom.json")),
            ["http://x/custom.json"]
        );
        assert_eq!(
            protected_resource_urls(&mcp, None),
            [
                "http://localhost:3000/.well-known/oauth-protected-resource/mcp",
                "http://localhost:3000/.well-known/oauth-protected-resource"
            ]
        );
        assert_eq!(
            protected_resource_urls(&url("https://h/"), None),
            ["https://h/.well-known/oauth-protected-resource"]
        );
    }

    #[test]
    fn auth_server_order_for_path_and_root_issuers() {
        assert_eq!(
            auth_server_urls("https://a.example/tenant1").ok(),
            Some(vec![
                "https://a.example/.well-known/oauth-authorization-server/tenant1".to_string(),
                "https://a.example/.well-known/openid-configuration/tenant1".to_string(),
                "https://a.example/tenant1/.well-known/openid-configuration".to_string(),
            ])
        );
        assert_eq!(
            auth_server_urls("http://localhost:9/").ok(),
            Some(vec![
                "http://localhost:9/.well-known/oauth-authorization-server".to_string(),
                "http://localhost:9/.well-known/openid-configuration".to_string(),
            ])
        );
        assert!(auth_server_urls("not a url").is_err());
        assert!(auth_server_urls("https://a/?q").is_err());
    }

    #[test]
    fn resource_must_be_same_origin_and_a_path_prefix() {
        let mcp = url("http://localhost:3000/mcp");
        assert!(check_resource("http://localhost:3000/mcp", &mcp).is_ok());
        assert!(check_resource("http://localhost:3000", &mcp).is_ok());
        assert!(check_resource("http://localhost:3000/", &mcp).is_ok());
        assert!(check_resource("https://evil.example.com/mcp", &mcp).is_err());
        assert!(check_resource("http://localhost:3001/mcp", &mcp).is_err());
        assert!(check_resource("http://localhost:3000/mc", &mcp).is_err());
        assert!(check_resource("http://localhost:3000/other", &mcp).is_err());
        assert!(check_resource("http://localhost:3000/mcp#f", &mcp).is_err());
    }

    #[test]
    fn issuer_is_compared_exactly_with_one_trailing_slash_tolerance() {
        assert!(check_issuer("https://a/t1", "https://a/t1").is_ok());
        assert!(check_issuer("https://a", "https://a/").is_ok());
        assert!(check_issuer("https://a/", "https://a").is_err());
        assert!(check_issuer("https://attacker.example.com", "https://a").is_err());
        assert!(check_issuer("https://A", "https://a").is_err());
    }

    #[test]
    fn endpoints_must_be_https_unless_loopback_or_allowed() {
        assert!(check_endpoint("https://as.example/token", false).is_ok());
        assert!(check_endpoint("http://127.0.0.1:9/token", false).is_ok());
        assert!(check_endpoint("http://localhost:9/token", false).is_ok());
        assert!(check_endpoint("http://as.example/token", false).is_err());
        assert!(check_endpoint("http://as.example/token", true).is_ok());
        assert!(check_endpoint("ftp://as.example/token", true).is_err());
    }

    #[test]
    fn scope_comes_from_the_challenge_else_the_resource_else_nothing() {
        let server = AuthServer::default();
        let listed = vec!["mcp:basic".to_string(), "mcp:read".to_string()];
        assert_eq!(
            choose_scope(Some("mcp:basic"), Some(&listed), None, &server).as_deref(),
            Some("mcp:basic")
        );
        assert_eq!(
            choose_scope(None, Some(&listed), None, &server).as_deref(),
            Some("mcp:basic mcp:read")
        );
        assert_eq!(choose_scope(None, None, None, &server), None);
        // Step-up: the union of what was granted and what is challenged.
        assert_eq!(
            choose_scope(Some("mcp:write"), None, Some("mcp:basic"), &server).as_deref(),
            Some("mcp:basic mcp:write")
        );
    }

    #[test]
    fn offline_access_only_when_the_authorization_server_lists_it() {
        let mut server = AuthServer::default();
        let prm = vec!["mcp:read".to_string(), "offline_access".to_string()];
        assert_eq!(
            choose_scope(None, Some(&prm), None, &server).as_deref(),
            Some("mcp:read")
        );
        server.scopes_supported = Some(vec!["offline_access".into()]);
        assert_eq!(
            choose_scope(Some("mcp:read"), None, None, &server).as_deref(),
            Some("mcp:read offline_access")
        );
    }

    #[test]
    fn pkce_gate_needs_s256_listed() {
        let mut server = AuthServer::default();
        assert!(!server.supports_s256());
        server.code_challenge_methods_supported = Some(vec!["plain".into()]);
        assert!(!server.supports_s256());
        server.code_challenge_methods_supported = Some(vec!["plain".into(), "S256".into()]);
        assert!(server.supports_s256());
        assert!(AuthServer::defaults_at("http://h:1").supports_s256());
    }
}
