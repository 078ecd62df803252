//! Tokens without a person: the machine grants of the MCP authorization extensions. Client
//! credentials (SEP-1046), the RFC 7523 JWT-bearer grant with a workload's token (workload
//! identity federation), and enterprise-managed authorization (an RFC 8693 exchange at the
//! enterprise IdP for an ID-JAG, then the JWT-bearer grant at the MCP server's authorization
//! server). The client authenticates with a secret, a `private_key_jwt` assertion signed by the
//! bridge's own key (a file, or the TLS key, which may live on a token), or its TLS certificate
//! (RFC 8705). After an error: one true line, no retry, no other grant.

use std::path::Path;
use std::sync::Arc;

use base64ct::{Base64, Encoding};
use rustls::sign::SigningKey;
use serde_json::json;

use super::as_http::AsHttp;
use super::flow::{post_token, Discovered, TokenFailure};
use super::jws::JwsKey;
use super::metadata::AuthServer;
use super::pkce;
use super::tokens::{now, Tokens};
use crate::config::{IdpOptions, OAuthGrant};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_JAG: &str = "urn:ietf:params:oauth:token-type:id-jag";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
/// The longest a client assertion is valid (RFC 7523 asks for a short life).
const ASSERTION_LIFETIME_SECS: u64 = 300;
/// The largest assertion or ID token file read.
const MAX_ASSERTION_FILE: u64 = 64 * 1024;

/// The client of a machine grant, as configured.
pub struct MachineClient {
    pub grant: OAuthGrant,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// `--oauth-client-auth`, else chosen from what is configured and what the server lists.
    pub auth_method: Option<String>,
    pub jwt_key: Option<JwtSigner>,
    pub assertion_file: Option<std::path::PathBuf>,
    pub idp: Option<IdpOptions>,
}

/// The key that signs `private_key_jwt` assertions.
pub enum JwtSigner {
    /// A key read once (a PEM file, or a key on a PKCS#11 token that signs there).
    Key(Arc<dyn SigningKey>),
    /// The TLS client key, as it is when the assertion is signed: after a certificate renewal,
    /// the renewed key.
    Tls,
}

impl JwtSigner {
    fn key(&self, http: &AsHttp) -> Result<Arc<dyn SigningKey>, String> {
        match self {
            JwtSigner::Key(key) => Ok(Arc::clone(key)),
            JwtSigner::Tls => http
                .tls_certified()
                .map(|certified| Arc::clone(&certified.key))
                .ok_or_else(|| "--oauth-jwt-key tls needs a client certificate and key (--tls-cert/--tls-key, --tls-pfx or a pkcs11: key)".to_string()),
        }
    }
}

/// A failed machine grant: its one line, and whether the authorization server refused it (final:
/// no retry, no other grant) rather than could not be reached.
#[derive(Debug)]
pub struct MachineFailure {
    pub message: String,
    pub refused: bool,
}

impl From<String> for MachineFailure {
    fn from(message: String) -> Self {
        Self {
            message,
            refused: false,
        }
    }
}

impl From<&str> for MachineFailure {
    fn from(message: &str) -> Self {
        message.to_string().into()
    }
}

/// Run the configured grant at the discovered authorization server.
pub fn obtain(
    http: &AsHttp,
    discovered: &Discovered,
    client: &MachineClient,
    scope: Option<&str>,
) -> Result<Tokens, MachineFailure> {
    let server = &discovered.server;
    let grant = client.grant;
    let mut form: Vec<(String, String)> = match grant {
        OAuthGrant::ClientCredentials => vec![("grant_type".into(), "client_credentials".into())],
        OAuthGrant::JwtBearer => {
            let path = client
                .assertion_file
                .as_deref()
                .ok_or("the jwt-bearer grant needs --oauth-assertion-file")?;
            vec![
                ("grant_type".into(), JWT_BEARER.into()),
                (
                    "assertion".into(),
                    read_token_file(path, "--oauth-assertion-file")?,
                ),
            ]
        }
        OAuthGrant::IdJag => {
            let idp = client
                .idp
                .as_ref()
                .ok_or("the id-jag grant needs the --oauth-idp-* flags")?;
            let id_jag = exchange_at_idp(http, idp, server, discovered.resource.as_deref(), scope)
                .map_err(|message| MachineFailure {
                    message,
                    refused: true,
                })?;
            vec![
                ("grant_type".into(), JWT_BEARER.into()),
                ("assertion".into(), id_jag),
            ]
        }
        OAuthGrant::AuthorizationCode => {
            return Err("the authorization-code grant needs a browser sign-in".into())
        }
    };
    if let Some(resource) = &discovered.resource {
        form.push(("resource".into(), resource.clone()));
    }
    if let Some(scope) = scope {
        form.push(("scope".into(), scope.to_string()));
    }
    let method = auth_method(client, server);
    let jwt_key = match &client.jwt_key {
        Some(signer) if method == "private_key_jwt" => Some(signer.key(http)?),
        _ => None,
    };
    let basic = authenticate(client, jwt_key.as_deref(), server, &method, &mut form)?;
    let endpoint = token_endpoint(server, &method)?;
    log::debug!(
        "OAuth: {} grant at {} ({method})",
        grant.name(),
        server.issuer
    );
    let answer =
        post_token(http, &server.issuer, &endpoint, &form, basic.as_deref()).map_err(|f| {
            MachineFailure {
                message: failure_line(grant, &endpoint, &f),
                refused: f.status.is_some(),
            }
        })?;
    Ok(answer.into_tokens(now(), scope, None)?)
}

/// `client-credentials grant at https://as/token failed: invalid_client (bad secret)`.
fn failure_line(grant: OAuthGrant, endpoint: &str, failure: &TokenFailure) -> String {
    format!(
        "the {} grant at {endpoint} failed: {}",
        grant.name(),
        failure.message
    )
}

/// The method: as configured, else `private_key_jwt` with a key, a secret method with a secret
/// (Basic unless the server lists only `client_secret_post`), else `none`.
fn auth_method(client: &MachineClient, server: &AuthServer) -> String {
    if let Some(m) = &client.auth_method {
        return m.clone();
    }
    if client.jwt_key.is_some() {
        return "private_key_jwt".into();
    }
    if client.client_secret.is_some() {
        let listed = server.token_endpoint_auth_methods_supported.as_deref();
        let only_post = listed.is_some_and(|l| {
            l.iter().any(|m| m == "client_secret_post")
                && !l.iter().any(|m| m == "client_secret_basic")
        });
        return if only_post {
            "client_secret_post"
        } else {
            "client_secret_basic"
        }
        .into();
    }
    "none".into()
}

/// The token endpoint: its RFC 8705 alias when the certificate is the credential (MUST, §5).
fn token_endpoint(server: &AuthServer, method: &str) -> Result<String, String> {
    let alias = server
        .mtls_endpoint_aliases
        .as_ref()
        .and_then(|a| a.token_endpoint.clone());
    let plain = server.token_endpoint.clone();
    match method {
        "tls_client_auth" | "self_signed_tls_client_auth" => alias.or(plain),
        _ => plain,
    }
    .ok_or_else(|| {
        format!(
            "the authorization server {} names no token endpoint",
            server.issuer
        )
    })
}

/// Add the client's authentication to `form`; returns a Basic `Authorization` value if any.
fn authenticate(
    client: &MachineClient,
    jwt_key: Option<&dyn SigningKey>,
    server: &AuthServer,
    method: &str,
    form: &mut Vec<(String, String)>,
) -> Result<Option<String>, String> {
    let id = client.client_id.clone();
    let need_id = || {
        id.clone()
            .ok_or_else(|| format!("--oauth-client-auth {method} needs --oauth-client-id"))
    };
    match method {
        "client_secret_basic" => {
            let secret = client.client_secret.as_deref().ok_or(
                "client_secret_basic needs the client secret (MCP_REMOTE_OAUTH_CLIENT_SECRET)",
            )?;
            Ok(Some(basic(&need_id()?, secret)))
        }
        "client_secret_post" => {
            let secret = client.client_secret.as_deref().ok_or(
                "client_secret_post needs the client secret (MCP_REMOTE_OAUTH_CLIENT_SECRET)",
            )?;
            form.push(("client_id".into(), need_id()?));
            form.push(("client_secret".into(), secret.to_string()));
            Ok(None)
        }
        "private_key_jwt" => {
            let id = need_id()?;
            let key = jwt_key.ok_or("private_key_jwt needs --oauth-jwt-key")?;
            let assertion = client_assertion(key, &id, server)?;
            form.push(("client_id".into(), id));
            form.push(("client_assertion_type".into(), CLIENT_ASSERTION_TYPE.into()));
            form.push(("client_assertion".into(), assertion));
            Ok(None)
        }
        // RFC 8705: the certificate on the connection is the credential; client_id is a MUST.
        "tls_client_auth" | "self_signed_tls_client_auth" => {
            form.push(("client_id".into(), need_id()?));
            Ok(None)
        }
        _ => {
            if let Some(id) = id {
                form.push(("client_id".into(), id));
            }
            Ok(None)
        }
    }
}

/// RFC 6749 §2.3.1 Basic: id and secret form-urlencoded, then joined.
fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(id), enc(secret));
    format!("Basic {}", Base64::encode_string(pair.as_bytes()))
}

/// An RFC 7523 client assertion: `iss` = `sub` = the client, `aud` = the issuer (what
/// conformance and FAPI 2 accept), five minutes, a unique `jti`.
pub fn client_assertion(
    key: &dyn SigningKey,
    client_id: &str,
    server: &AuthServer,
) -> Result<String, String> {
    let allowed = server
        .token_endpoint_auth_signing_alg_values_supported
        .clone()
        .unwrap_or_default();
    let jws = JwsKey::new(key, &allowed)?;
    let iat = now();
    jws.sign(
        json!({"typ": "JWT"}),
        &json!({
            "iss": client_id,
            "sub": client_id,
            "aud": server.issuer,
            "iat": iat,
            "exp": iat + ASSERTION_LIFETIME_SECS,
            "jti": pkce::random_token(16)?,
        }),
    )
}

/// RFC 8693 at the enterprise IdP: the user's ID token for an ID-JAG naming the MCP server's
/// authorization server and resource.
fn exchange_at_idp(
    http: &AsHttp,
    idp: &IdpOptions,
    server: &AuthServer,
    resource: Option<&str>,
    scope: Option<&str>,
) -> Result<String, String> {
    let id_token = read_token_file(&idp.id_token_file, "--oauth-idp-id-token-file")?;
    let mut form: Vec<(String, String)> = vec![
        ("grant_type".into(), TOKEN_EXCHANGE.into()),
        ("requested_token_type".into(), ID_JAG.into()),
        ("audience".into(), server.issuer.clone()),
        ("subject_token".into(), id_token),
        ("subject_token_type".into(), ID_TOKEN.into()),
    ];
    if let Some(resource) = resource {
        form.push(("resource".into(), resource.to_string()));
    }
    if let Some(scope) = scope {
        form.push(("scope".into(), scope.to_string()));
    }
    let basic_auth = match &idp.client_secret {
        Some(secret) => Some(basic(&idp.client_id, secret.expose())),
        None => {
            form.push(("client_id".into(), idp.client_id.clone()));
            None
        }
    };
    super::metadata::check_endpoint(&idp.token_endpoint, http.config().oauth.allow_http)?;
    let answer = post_token(
        http,
        &idp.token_endpoint,
        &idp.token_endpoint,
        &form,
        basic_auth.as_deref(),
    )
    .map_err(|f| {
        format!(
            "the token exchange at the identity provider {} failed: {}{}",
            idp.token_endpoint,
            f.message,
            if f.error.as_deref() == Some("invalid_grant") {
                " (the ID token may have expired: get a new one from the identity provider)"
            } else {
                ""
            }
        )
    })?;
    Ok(answer.access_token)
}

/// A token from a file (a projected service-account token rotates: read on every use).
fn read_token_file(path: &Path, flag: &str) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| format!("cannot read {flag} {}: {e}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_ASSERTION_FILE)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {flag} {}: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("{flag} {} is empty", path.display()));
    }
    Ok(token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> MachineClient {
        MachineClient {
            grant: OAuthGrant::ClientCredentials,
            client_id: Some("c".into()),
            client_secret: None,
            auth_method: None,
            jwt_key: None,
            assertion_file: None,
            idp: None,
        }
    }

    #[test]
    fn the_method_follows_the_credentials_and_the_server() {
        let server = AuthServer::default();
        assert_eq!(auth_method(&client(), &server), "none");
        let with_secret = MachineClient {
            client_secret: Some("s".into()),
            ..client()
        };
        assert_eq!(auth_method(&with_secret, &server), "client_secret_basic");
        let post_only = AuthServer {
            token_endpoint_auth_methods_supported: Some(vec!["client_secret_post".into()]),
            ..AuthServer::default()
        };
        assert_eq!(auth_method(&with_secret, &post_only), "client_secret_post");
    }

    #[test]
    fn certificate_authentication_uses_the_mtls_alias() {
        let server = AuthServer {
            issuer: "https://as".into(),
            token_endpoint: Some("https://as/token".into()),
            mtls_endpoint_aliases: Some(super::super::metadata::MtlsAliases {
                token_endpoint: Some("https://mtls.as/token".into()),
            }),
            ..AuthServer::default()
        };
        assert_eq!(
            token_endpoint(&server, "tls_client_auth").ok().as_deref(),
            Some("https://mtls.as/token")
        );
        assert_eq!(
            token_endpoint(&server, "client_secret_basic")
                .ok()
                .as_deref(),
            Some("https://as/token")
        );
        let mut form = Vec::new();
        let basic = authenticate(&client(), None, &server, "tls_client_auth", &mut form);
        assert_eq!(basic.ok(), Some(None));
        assert_eq!(form, vec![("client_id".to_string(), "c".to_string())]);
    }

    #[test]
    fn a_missing_or_empty_assertion_file_is_one_line_naming_the_flag() {
        let err = read_token_file(Path::new("/nonexistent/token"), "--oauth-assertion-file");
        assert!(err.is_err_and(|e| e.contains("--oauth-assertion-file /nonexistent/token")));
    }
}
