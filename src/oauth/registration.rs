//! Which client to use at an authorization server, in the MCP specification's order
//! (pre-registered, then a Client ID Metadata Document, then dynamic registration, RFC 7591), and
//! how that client authenticates at the token endpoint (RFC 6749 §2.3). Pure: the request bodies
//! are built here and sent by the flow.

use base64ct::{Base64, Encoding};
use serde::Deserialize;
use serde_json::json;

use super::metadata::AuthServer;
use super::tokens::{Client, ClientSource};

/// What the user configured for the client (`--oauth-client-id`, its secret,
/// `--oauth-client-metadata-url`).
#[derive(Clone, Default)]
pub struct ClientConfig {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub metadata_url: Option<String>,
}

/// How to get a client at this server.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Use this client as it is.
    Use(Client),
    /// Register dynamically at the registration endpoint.
    Register,
}

/// Choose the client for `server`, given what the user configured and a client kept from an
/// earlier run at the same issuer (with the redirect URI it was registered for).
pub fn plan(
    config: &ClientConfig,
    server: &AuthServer,
    kept: Option<&Client>,
    redirect_uri: &str,
) -> Result<Plan, String> {
    if let Some(id) = &config.client_id {
        let auth_method = match &config.client_secret {
            Some(_) => secret_method(server, None),
            None => "none".to_string(),
        };
        return Ok(Plan::Use(Client {
            issuer: server.issuer.clone(),
            client_id: id.clone(),
            client_secret: config.client_secret.clone(),
            auth_method,
            redirect_uri: None,
            source: ClientSource::PreRegistered,
            secret_expires_at: 0,
        }));
    }
    if let (Some(url), true) = (
        &config.metadata_url,
        server.client_id_metadata_document_supported,
    ) {
        return Ok(Plan::Use(Client {
            issuer: server.issuer.clone(),
            client_id: url.clone(),
            client_secret: None,
            auth_method: "none".into(),
            redirect_uri: None,
            source: ClientSource::MetadataDocument,
            secret_expires_at: 0,
        }));
    }
    if let Some(kept) = kept.filter(|c| {
        c.issuer == server.issuer
            && c.source == ClientSource::Dynamic
            && c.redirect_uri.as_deref() == Some(redirect_uri)
            && !secret_expired(c, super::tokens::now())
    }) {
        return Ok(Plan::Use(kept.clone()));
    }
    if server.registration_endpoint.is_some() {
        return Ok(Plan::Register);
    }
    let cimd_hint = if server.client_id_metadata_document_supported {
        "--oauth-client-metadata-url (a client ID metadata document) or "
    } else {
        ""
    };
    Err(format!(
        "the authorization server {} offers no dynamic client registration: give {cimd_hint}--oauth-client-id (and its secret in MCP_REMOTE_OAUTH_CLIENT_SECRET) of a client registered there",
        server.issuer
    ))
}

fn secret_expired(client: &Client, now: u64) -> bool {
    client.secret_expires_at != 0 && client.secret_expires_at <= now
}

/// The method a client holding a secret uses: the one it was registered with if the server
/// accepts it (or lists nothing), else `client_secret_basic`, else `client_secret_post`.
fn secret_method(server: &AuthServer, registered: Option<&str>) -> String {
    let listed = server.token_endpoint_auth_methods_supported.as_deref();
    let accepts = |m: &str| listed.is_none_or(|l| l.iter().any(|x| x == m));
    if let Some(m) = registered.filter(|m| accepts(m)) {
        return m.to_string();
    }
    if accepts("client_secret_basic") {
        "client_secret_basic".into()
    } else if accepts("client_secret_post") {
        "client_secret_post".into()
    } else {
        "client_secret_basic".into()
    }
}

/// The method to ask for in a dynamic registration: a public client (`none`) where the server
/// allows it, else the secret method it lists first.
fn requested_method(server: &AuthServer) -> &'static str {
    match server.token_endpoint_auth_methods_supported.as_deref() {
        None => "none",
        Some(list) if list.iter().any(|m| m == "none") => "none",
        Some(list) if list.iter().any(|m| m == "client_secret_basic") => "client_secret_basic",
        Some(list) if list.iter().any(|m| m == "client_secret_post") => "client_secret_post",
        Some(_) => "none",
    }
}

/// The RFC 7591 registration request body.
pub fn registration_request(server: &AuthServer, redirect_uri: &str) -> serde_json::Value {
    json!({
        "client_name": "mcp-secure-remote",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": requested_method(server),
        "application_type": "native",
    })
}

#[derive(Deserialize)]
struct RegistrationResponse {
    client_id: String,
    client_secret: Option<String>,
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    client_secret_expires_at: u64,
}

/// The client from a registration answer.
pub fn registered_client(
    server: &AuthServer,
    body: &[u8],
    redirect_uri: &str,
) -> Result<Client, String> {
    let answer: RegistrationResponse = serde_json::from_slice(body).map_err(|e| {
        format!(
            "the registration endpoint of {} answered something that is not a client registration ({e})",
            server.issuer
        )
    })?;
    let auth_method = match (
        &answer.client_secret,
        answer.token_endpoint_auth_method.as_deref(),
    ) {
        (None, _) | (_, Some("none")) => "none".to_string(),
        (Some(_), registered) => secret_method(server, registered),
    };
    Ok(Client {
        issuer: server.issuer.clone(),
        client_id: answer.client_id,
        client_secret: answer.client_secret,
        auth_method,
        redirect_uri: Some(redirect_uri.to_string()),
        source: ClientSource::Dynamic,
        secret_expires_at: answer.client_secret_expires_at,
    })
}

/// Client authentication on a token endpoint request: form fields to add, and an
/// `Authorization: Basic` value (RFC 6749 §2.3.1: id and secret form-urlencoded first).
pub fn authenticate(client: &Client, form: &mut Vec<(String, String)>) -> Option<String> {
    let secret = client.client_secret.as_deref();
    match (client.auth_method.as_str(), secret) {
        ("client_secret_basic", Some(secret)) => {
            let pair = format!("{}:{}", form_encode(&client.client_id), form_encode(secret));
            Some(format!("Basic {}", Base64::encode_string(pair.as_bytes())))
        }
        ("client_secret_post", Some(secret)) => {
            form.push(("client_id".into(), client.client_id.clone()));
            form.push(("client_secret".into(), secret.to_string()));
            None
        }
        _ => {
            form.push(("client_id".into(), client.client_id.clone()));
            None
        }
    }
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(methods: Option<&[&str]>) -> AuthServer {
        AuthServer {
            issuer: "https://as".into(),
            registration_endpoint: Some("https://as/register".into()),
            token_endpoint_auth_methods_supported: methods
                .map(|m| m.iter().map(|s| s.to_string()).collect()),
            ..AuthServer::default()
        }
    }

    #[test]
    fn pre_registered_client_comes_first_and_uses_basic_by_default() {
        let config = ClientConfig {
            client_id: Some("id".into()),
            client_secret: Some("s".into()),
            metadata_url: Some("https://c/m.json".into()),
        };
        let Ok(Plan::Use(c)) = plan(&config, &server(None), None, "http://127.0.0.1:1/callback")
        else {
            panic!("no plan")
        };
        assert_eq!(c.source, ClientSource::PreRegistered);
        assert_eq!(c.auth_method, "client_secret_basic");
        let Ok(Plan::Use(c)) = plan(&config, &server(Some(&["client_secret_post"])), None, "x")
        else {
            panic!("no plan")
        };
        assert_eq!(c.auth_method, "client_secret_post");
    }

    #[test]
    fn metadata_document_only_where_the_server_supports_it() {
        let config = ClientConfig {
            metadata_url: Some("https://c/m.json".into()),
            ..ClientConfig::default()
        };
        let mut s = server(None);
        assert_eq!(plan(&config, &s, None, "x"), Ok(Plan::Register));
        s.client_id_metadata_document_supported = true;
        let Ok(Plan::Use(c)) = plan(&config, &s, None, "x") else {
            panic!("no plan")
        };
        assert_eq!(c.client_id, "https://c/m.json");
        assert_eq!(c.auth_method, "none");
    }

    #[test]
    fn a_kept_dynamic_client_is_reused_only_for_its_issuer_and_redirect_uri() {
        let s = server(None);
        let kept = Client {
            issuer: "https://as".into(),
            client_id: "k".into(),
            client_secret: None,
            auth_method: "none".into(),
            redirect_uri: Some("http://127.0.0.1:5/callback".into()),
            source: ClientSource::Dynamic,
            secret_expires_at: 0,
        };
        let config = ClientConfig::default();
        assert!(matches!(
            plan(&config, &s, Some(&kept), "http://127.0.0.1:5/callback"),
            Ok(Plan::Use(_))
        ));
        assert_eq!(
            plan(&config, &s, Some(&kept), "http://127.0.0.1:6/callback"),
            Ok(Plan::Register)
        );
        let other = Client {
            issuer: "https://old".into(),
            ..kept
        };
        assert_eq!(
            plan(&config, &s, Some(&other), "http://127.0.0.1:5/callback"),
            Ok(Plan::Register)
        );
    }

    #[test]
    fn no_registration_and_no_client_is_an_error_naming_the_flags() {
        let mut s = server(None);
        s.registration_endpoint = None;
        let err = plan(&ClientConfig::default(), &s, None, "x")
            .err()
            .unwrap_or_default();
        assert!(err.contains("--oauth-client-id"), "{err}");
    }

    #[test]
    fn registration_follows_the_method_the_server_returns() {
        let s = server(Some(&["client_secret_post"]));
        let body = registration_request(&s, "http://127.0.0.1:1/callback");
        assert_eq!(body["token_endpoint_auth_method"], "client_secret_post");
        assert_eq!(body["application_type"], "native");
        let c = registered_client(
            &s,
            br#"{"client_id":"c","client_secret":"s","token_endpoint_auth_method":"client_secret_post"}"#,
            "u",
        );
        assert_eq!(
            c.map(|c| c.auth_method).ok().as_deref(),
            Some("client_secret_post")
        );
        let c = registered_client(&server(Some(&["none"])), br#"{"client_id":"c"}"#, "u");
        assert_eq!(c.map(|c| c.auth_method).ok().as_deref(), Some("none"));
        assert!(registered_client(&s, b"{}", "u").is_err());
    }

    #[test]
    fn basic_authentication_form_encodes_id_and_secret() {
        let c = Client {
            issuer: "i".into(),
            client_id: "a b".into(),
            client_secret: Some("p:w".into()),
            auth_method: "client_secret_basic".into(),
            redirect_uri: None,
            source: ClientSource::PreRegistered,
            secret_expires_at: 0,
        };
        let mut form = Vec::new();
        let header = authenticate(&c, &mut form);
        assert_eq!(
            header.as_deref(),
            Some(format!("Basic {}", Base64::encode_string(b"a+b:p%3Aw")).as_str())
        );
        assert!(form.is_empty());
        let none = Client {
            auth_method: "none".into(),
            ..c
        };
        assert_eq!(authenticate(&none, &mut form), None);
        assert_eq!(form, vec![("client_id".to_string(), "a b".to_string())]);
    }
}
