//! The `--oauth*` flags and their `MCP_REMOTE_OAUTH*` variables (flag wins over variable), read in
//! the same single pass as every other flag and validated into [`OAuthOptions`].

use std::time::Duration;

use super::{parse_seconds, string_value, usage, UsageError};
use std::path::PathBuf;

use crate::config::{
    is_pkcs11_uri, ClientIdentity, DpopKey, DpopMode, IdpOptions, JwtKeySource, OAuthGrant,
    OAuthOptions, ObjectType, Pkcs11Identity, Pkcs11Uri, Secret, TlsOptions, TokenCertSource,
};
use crate::oauth::browser::Opener;
use crate::oauth::store::StoreChoice;

pub const ENV_OAUTH: &str = "MCP_REMOTE_OAUTH";
pub const ENV_CLIENT_ID: &str = "MCP_REMOTE_OAUTH_CLIENT_ID";
pub const ENV_CLIENT_SECRET: &str = "MCP_REMOTE_OAUTH_CLIENT_SECRET";
pub const ENV_CLIENT_METADATA_URL: &str = "MCP_REMOTE_OAUTH_CLIENT_METADATA_URL";
pub const ENV_REDIRECT_URI: &str = "MCP_REMOTE_OAUTH_REDIRECT_URI";
pub const ENV_BROWSER: &str = "MCP_REMOTE_OAUTH_BROWSER";
pub const ENV_TOKEN_STORE: &str = "MCP_REMOTE_OAUTH_TOKEN_STORE";
pub const ENV_LOGIN_WAIT: &str = "MCP_REMOTE_OAUTH_LOGIN_WAIT";
pub const ENV_GRANT: &str = "MCP_REMOTE_OAUTH_GRANT";
pub const ENV_DPOP: &str = "MCP_REMOTE_OAUTH_DPOP";
pub const ENV_DPOP_KEY: &str = "MCP_REMOTE_OAUTH_DPOP_KEY";
pub const ENV_CLIENT_AUTH: &str = "MCP_REMOTE_OAUTH_CLIENT_AUTH";
pub const ENV_JWT_KEY: &str = "MCP_REMOTE_OAUTH_JWT_KEY";
pub const ENV_ASSERTION_FILE: &str = "MCP_REMOTE_OAUTH_ASSERTION_FILE";
pub const ENV_IDP_TOKEN_ENDPOINT: &str = "MCP_REMOTE_OAUTH_IDP_TOKEN_ENDPOINT";
pub const ENV_IDP_CLIENT_ID: &str = "MCP_REMOTE_OAUTH_IDP_CLIENT_ID";
pub const ENV_IDP_CLIENT_SECRET: &str = "MCP_REMOTE_OAUTH_IDP_CLIENT_SECRET";
pub const ENV_IDP_ID_TOKEN_FILE: &str = "MCP_REMOTE_OAUTH_IDP_ID_TOKEN_FILE";

/// The token endpoint authentication methods `--oauth-client-auth` takes.
const CLIENT_AUTH_METHODS: [&str; 6] = [
    "none",
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "tls_client_auth",
    "self_signed_tls_client_auth",
];

/// How long the request that met a login waits for it, by default: below the ~60 s that agents
/// (Claude Desktop among them) give an initialize.
pub const DEFAULT_LOGIN_WAIT: Duration = Duration::from_secs(45);

/// The raw values, before the variables and the rules.
#[derive(Default)]
pub(super) struct OAuthFlags {
    mode: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    metadata_url: Option<String>,
    redirect_uri: Option<String>,
    browser: Option<String>,
    token_store: Option<String>,
    login_wait: Option<String>,
    grant: Option<String>,
    client_auth: Option<String>,
    jwt_key: Option<String>,
    assertion_file: Option<String>,
    idp_token_endpoint: Option<String>,
    idp_client_id: Option<String>,
    idp_id_token_file: Option<String>,
    dpop: Option<String>,
    dpop_key: Option<String>,
}

impl OAuthFlags {
    /// Take `--name VALUE` if it is one of the OAuth flags; false when it is not.
    pub(super) fn read(
        &mut self,
        name: &str,
        parser: &mut lexopt::Parser,
    ) -> Result<bool, UsageError> {
        let slot = match name {
            "oauth" => &mut self.mode,
            "oauth-client-id" => &mut self.client_id,
            "oauth-client-secret" => &mut self.client_secret,
            "oauth-client-metadata-url" => &mut self.metadata_url,
            "oauth-redirect-uri" => &mut self.redirect_uri,
            "oauth-browser" => &mut self.browser,
            "oauth-token-store" => &mut self.token_store,
            "oauth-login-wait" => &mut self.login_wait,
            "oauth-grant" => &mut self.grant,
            "oauth-client-auth" => &mut self.client_auth,
            "oauth-jwt-key" => &mut self.jwt_key,
            "oauth-assertion-file" => &mut self.assertion_file,
            "oauth-idp-token-endpoint" => &mut self.idp_token_endpoint,
            "oauth-idp-client-id" => &mut self.idp_client_id,
            "oauth-idp-id-token-file" => &mut self.idp_id_token_file,
            "oauth-dpop" => &mut self.dpop,
            "oauth-dpop-key" => &mut self.dpop_key,
            _ => return Ok(false),
        };
        *slot = Some(string_value(parser, &format!("--{name}"))?);
        Ok(true)
    }

    /// The validated options. `headers` are the user's `--header`s: an `Authorization` among
    /// them turns OAuth off.
    pub(super) fn validate(
        self,
        env: &impl Fn(&str) -> Option<String>,
        allow_http: bool,
        headers: &[(String, String)],
        warnings: &mut Vec<String>,
    ) -> Result<OAuthOptions, UsageError> {
        let pick = |flag: Option<String>, var: &str| {
            flag.or_else(|| env(var))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mode = pick(self.mode, ENV_OAUTH);
        let mut enabled = match mode.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("auto" | "on") => true,
            Some("off") => false,
            Some(other) => {
                return Err(usage(format!(
                    "--oauth: '{other}' is not one of auto, off ({ENV_OAUTH} likewise)"
                )))
            }
        };
        let user_token = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("authorization"));
        if user_token && enabled {
            if mode.is_some() {
                warnings.push(
                    "an Authorization header is given with --header: OAuth is off (the bridge never mixes its own token with yours)"
                        .into(),
                );
            }
            enabled = false;
        }
        let client_id = pick(self.client_id, ENV_CLIENT_ID);
        let client_secret = pick(self.client_secret, ENV_CLIENT_SECRET).map(Secret::new);
        if client_secret.is_some() && client_id.is_none() {
            return Err(usage(format!(
                "a client secret ({ENV_CLIENT_SECRET} or --oauth-client-secret) needs --oauth-client-id"
            )));
        }
        let client_metadata_url = pick(self.metadata_url, ENV_CLIENT_METADATA_URL);
        if let Some(u) = &client_metadata_url {
            check_metadata_url(u)?;
        }
        let redirect_uri = pick(self.redirect_uri, ENV_REDIRECT_URI);
        if let Some(u) = &redirect_uri {
            check_redirect_uri(u)?;
        }
        let browser = pick(self.browser, ENV_BROWSER).unwrap_or_else(|| "system".into());
        Opener::parse(&browser).map_err(|e| usage(format!("--oauth-browser: {e}")))?;
        let token_store = pick(self.token_store, ENV_TOKEN_STORE).unwrap_or_else(|| "auto".into());
        StoreChoice::parse(&token_store).map_err(|e| {
            usage(format!(
                "--oauth-token-store: {e} (give auto, memory or file:PATH)"
            ))
        })?;
        let login_wait = match pick(self.login_wait, ENV_LOGIN_WAIT) {
            None => DEFAULT_LOGIN_WAIT,
            Some(s) => parse_seconds(&s).ok_or_else(|| {
                usage(format!(
                    "--oauth-login-wait: '{s}' is not a number of seconds > 0"
                ))
            })?,
        };
        let grant = match pick(self.grant, ENV_GRANT) {
            None => OAuthGrant::AuthorizationCode,
            Some(g) => OAuthGrant::parse(&g).ok_or_else(|| {
                usage(format!(
                    "--oauth-grant: '{g}' is not one of authorization-code, client-credentials, jwt-bearer, id-jag"
                ))
            })?,
        };
        let client_auth = pick(self.client_auth, ENV_CLIENT_AUTH);
        if let Some(method) = &client_auth {
            if !CLIENT_AUTH_METHODS.contains(&method.as_str()) {
                return Err(usage(format!(
                    "--oauth-client-auth: '{method}' is not one of {}",
                    CLIENT_AUTH_METHODS.join(", ")
                )));
            }
        }
        let jwt_key = match pick(self.jwt_key, ENV_JWT_KEY) {
            None => None,
            Some(k) if k == "tls" => Some(JwtKeySource::Tls),
            Some(k) if is_pkcs11_uri(&k) => Some(JwtKeySource::Pkcs11(Box::new(token_key(&k)?))),
            Some(path) => Some(JwtKeySource::File(PathBuf::from(path))),
        };
        if client_auth.as_deref() == Some("private_key_jwt") && jwt_key.is_none() {
            return Err(usage(
                "--oauth-client-auth private_key_jwt needs --oauth-jwt-key <PEM file | pkcs11:URI | tls>",
            ));
        }
        let assertion_file = pick(self.assertion_file, ENV_ASSERTION_FILE).map(PathBuf::from);
        let idp_token_endpoint = pick(self.idp_token_endpoint, ENV_IDP_TOKEN_ENDPOINT);
        let idp_client_id = pick(self.idp_client_id, ENV_IDP_CLIENT_ID);
        let idp_id_token_file = pick(self.idp_id_token_file, ENV_IDP_ID_TOKEN_FILE);
        let idp_client_secret = pick(None, ENV_IDP_CLIENT_SECRET).map(Secret::new);
        let idp = match (grant, idp_token_endpoint, idp_client_id, idp_id_token_file) {
            (OAuthGrant::IdJag, Some(token_endpoint), Some(client_id), Some(file)) => {
                Some(IdpOptions {
                    token_endpoint,
                    client_id,
                    client_secret: idp_client_secret,
                    id_token_file: PathBuf::from(file),
                })
            }
            (OAuthGrant::IdJag, ..) => {
                return Err(usage(
                    "--oauth-grant id-jag needs --oauth-idp-token-endpoint, --oauth-idp-client-id and --oauth-idp-id-token-file (the IdP's secret in MCP_REMOTE_OAUTH_IDP_CLIENT_SECRET)",
                ))
            }
            _ => None,
        };
        match grant {
            OAuthGrant::JwtBearer if assertion_file.is_none() => {
                return Err(usage(
                    "--oauth-grant jwt-bearer needs --oauth-assertion-file PATH (the workload's JWT, e.g. a projected service-account token)",
                ))
            }
            OAuthGrant::ClientCredentials | OAuthGrant::IdJag if client_id.is_none() => {
                return Err(usage(format!(
                    "--oauth-grant {} needs --oauth-client-id (a client registered at the authorization server)",
                    grant.name()
                )))
            }
            _ => {}
        }
        let dpop = match pick(self.dpop, ENV_DPOP).as_deref() {
            None | Some("auto") => DpopMode::Auto,
            Some("on") => DpopMode::On,
            Some("off") => DpopMode::Off,
            Some(other) => {
                return Err(usage(format!(
                    "--oauth-dpop: '{other}' is not one of auto, on, off ({ENV_DPOP} likewise)"
                )))
            }
        };
        let dpop_key = match pick(self.dpop_key, ENV_DPOP_KEY).as_deref() {
            None => DpopKey::Auto,
            Some("tls") => DpopKey::Tls,
            Some("process") => DpopKey::Process,
            Some(other) => {
                return Err(usage(format!(
                "--oauth-dpop-key: '{other}' is not one of process, tls ({ENV_DPOP_KEY} likewise)"
            )))
            }
        };
        if dpop_key != DpopKey::Auto && dpop == DpopMode::Off {
            return Err(usage(
                "--oauth-dpop-key chooses the DPoP proof key, and --oauth-dpop off turns DPoP off: give one of them",
            ));
        }
        Ok(OAuthOptions {
            enabled,
            client_id,
            client_secret,
            client_metadata_url,
            redirect_uri,
            browser,
            token_store,
            login_wait,
            allow_http,
            grant,
            client_auth,
            jwt_key,
            assertion_file,
            idp,
            dpop,
            dpop_key,
        })
    }
}

/// `--oauth-jwt-key pkcs11:URI`: a private key on a token, its certificate beside it (the
/// token signs; the certificate's public key checks the pair, as for `--tls-key pkcs11:`). The
/// module and PIN are the URI's (`module-path`, `pin-source`), else the TLS token's
/// ([`with_tls_identity`]).
fn token_key(text: &str) -> Result<Pkcs11Identity, UsageError> {
    let uri = Pkcs11Uri::parse(text).map_err(|e| usage(format!("--oauth-jwt-key: {e}")))?;
    if uri.object_type.is_some_and(|t| t != ObjectType::Private) {
        return Err(usage(format!(
            "--oauth-jwt-key {uri} names a type that is not a private key: use type=private or leave type out"
        )));
    }
    Ok(Pkcs11Identity {
        key: uri,
        cert: TokenCertSource::BesideKey,
        module: None,
        pin: None,
    })
}

/// What the OAuth options take from the TLS identity, and what they need of it: a token JWT key
/// without its own `module-path` / PIN uses the TLS token's (`--tls-pkcs11-module`,
/// `--tls-passphrase`); `--oauth-dpop-key tls` needs a TLS client key.
pub(super) fn with_tls_identity(
    oauth: &mut OAuthOptions,
    tls: &TlsOptions,
) -> Result<(), UsageError> {
    if oauth.dpop_key == DpopKey::Tls && !tls.has_identity() {
        return Err(usage(
            "--oauth-dpop-key tls needs a TLS client key (--tls-cert/--tls-key, --tls-pfx or a pkcs11: key)",
        ));
    }
    if oauth.jwt_key == Some(JwtKeySource::Tls) && !tls.has_identity() {
        return Err(usage(
            "--oauth-jwt-key tls needs a TLS client key (--tls-cert/--tls-key, --tls-pfx or a pkcs11: key)",
        ));
    }
    if let (Some(JwtKeySource::Pkcs11(jwt)), Some(ClientIdentity::Pkcs11(tls_token))) =
        (oauth.jwt_key.as_mut(), tls.identity.as_ref())
    {
        if jwt.key.module_path.is_none() {
            jwt.module = tls_token.module.clone();
        }
        if jwt.key.pin_source.is_none() && jwt.key.pin_value.is_none() {
            jwt.pin = tls_token.pin.clone();
        }
    }
    Ok(())
}

/// A Client ID Metadata Document is named by an https URL with a path.
fn check_metadata_url(u: &str) -> Result<(), UsageError> {
    match url::Url::parse(u) {
        Ok(p) if p.scheme() == "https" && p.path() != "/" && p.fragment().is_none() => Ok(()),
        _ => Err(usage(format!(
            "--oauth-client-metadata-url: '{u}' must be an https:// URL with a path (the client ID metadata document)"
        ))),
    }
}

/// A pre-registered loopback redirect URI (RFC 8252 §7.3): http, a loopback host, a port.
fn check_redirect_uri(u: &str) -> Result<(), UsageError> {
    let bad = || {
        usage(format!(
            "--oauth-redirect-uri: '{u}' must be http://127.0.0.1:PORT/path (or localhost / [::1]) with an explicit port"
        ))
    };
    let parsed = url::Url::parse(u).map_err(|_| bad())?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if parsed.scheme() != "http" || !loopback || parsed.port().is_none() {
        return Err(bad());
    }
    Ok(())
}
