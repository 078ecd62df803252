//! The validated configuration: parsed once from argv and the environment (see `cli`), then passed
//! by reference to everything else. Nothing after parsing reads argv or the environment again.

use std::fmt;
use std::path::PathBuf;

mod pkcs11_uri;
mod selector;

#[cfg(feature = "pkcs11")]
pub(crate) use pkcs11_uri::hex;
pub use pkcs11_uri::{is_pkcs11_uri, ObjectType, Pkcs11Uri, UriError};
pub use selector::{
    classify as classify_cert_value, parse as parse_selector, CertValue, Filter, Platform,
    Selector, SelectorError, SourceKind, FORMS as SELECTOR_FORMS,
};

/// Everything the bridge and the test client need to know, already validated.
#[derive(Clone)]
pub struct Config {
    /// The remote MCP endpoint (`https://…`, or `http://…` with `--allow-http`).
    pub url: Url,
    /// Extra headers sent on every outbound request, `${VAR}` already expanded and validated.
    pub headers: Vec<(String, String)>,
    pub transport: TransportStrategy,
    pub debug: bool,
    pub tls: TlsOptions,
    /// Connect timeout for every new connection (default 10 s).
    pub connect_timeout: std::time::Duration,
    /// The largest single message, either way (`--max-message-size`, default 64 MiB).
    pub max_message: usize,
    /// All messages held at once (`--memory-budget`, default 256 MiB): beyond it the bridge
    /// stops reading from the server until stdout has drained.
    pub memory_budget: usize,
    /// `--ignore-tool` / `--allow-tool`: which of the server's tools the client may see and call.
    pub tools: ToolPatterns,
    /// Keep the server's cookies in memory and send them back (`--no-cookies` turns it off).
    pub cookies: bool,
    /// `--proxy` / `MCP_REMOTE_PROXY`: this server's proxy, whatever HTTPS_PROXY/NO_PROXY say.
    pub proxy: ProxySetting,
    /// MCP authorization (OAuth): `--oauth*` flags and `MCP_REMOTE_OAUTH*` variables.
    pub oauth: OAuthOptions,
}

/// MCP authorization settings, validated.
#[derive(Clone, Debug)]
pub struct OAuthOptions {
    /// Off with `--oauth off`, or when the user sends an `Authorization` header of their own
    /// (a token the bridge obtained is never mixed with the user's).
    pub enabled: bool,
    /// A pre-registered client (`--oauth-client-id`) and its secret.
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    /// A Client ID Metadata Document URL (`--oauth-client-metadata-url`).
    pub client_metadata_url: Option<String>,
    /// The pre-registered redirect URI (`--oauth-redirect-uri`); default: an ephemeral port.
    pub redirect_uri: Option<String>,
    /// `--oauth-browser`: `system` (default), `none`, or a command.
    pub browser: String,
    /// `--oauth-token-store`: `auto` (default), `memory` or `file:PATH`.
    pub token_store: String,
    /// How long the request that met the login waits for it (`--oauth-login-wait`, default 45 s,
    /// below the agents' own initialize timeouts of about 60 s).
    pub login_wait: std::time::Duration,
    /// Plain-HTTP authorization-server endpoints are allowed (`--allow-http`).
    pub allow_http: bool,
    /// `--oauth-grant`: how tokens are obtained (a browser sign-in, or a machine grant).
    pub grant: OAuthGrant,
    /// `--oauth-client-auth`: how the client authenticates at the token endpoint (None: as the
    /// authorization server and the credentials given suggest).
    pub client_auth: Option<String>,
    /// `--oauth-jwt-key`: the key that signs `private_key_jwt` assertions.
    pub jwt_key: Option<JwtKeySource>,
    /// `--oauth-assertion-file`: the workload's JWT for the jwt-bearer grant, read on each use.
    pub assertion_file: Option<PathBuf>,
    /// Enterprise-managed authorization (`--oauth-grant id-jag`): the identity provider.
    pub idp: Option<IdpOptions>,
    /// DPoP-bound tokens where the authorization server offers them (`--oauth-dpop`).
    pub dpop: DpopMode,
    /// Which key signs the DPoP proofs (`--oauth-dpop-key`).
    pub dpop_key: DpopKey,
}

/// The DPoP proof key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DpopKey {
    /// The TLS client key when it can sign an algorithm the authorization server accepts, else a
    /// key of this process where [`DpopMode`] allows one (the default).
    #[default]
    Auto,
    /// The TLS client key, or no DPoP-bound token at all (one line saying why).
    Tls,
    /// A P-256 key made for this process: its tokens are never shared with other processes.
    Process,
}

/// When to ask for DPoP-bound tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DpopMode {
    /// Where the server offers DPoP and the proof key can be shared by every bridge process (the
    /// TLS client key), or nothing is shared anyway (`--oauth-token-store memory`): a key of one
    /// process would bind the tokens to it, and other processes would each have to sign in.
    Auto,
    /// Wherever the server offers DPoP, with a key of this process if the TLS key cannot sign.
    On,
    Off,
}

/// How the bridge obtains tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OAuthGrant {
    /// A person signs in in the browser (the default).
    AuthorizationCode,
    /// OAuth client credentials (the MCP `oauth-client-credentials` extension).
    ClientCredentials,
    /// RFC 7523 JWT bearer with a workload's token (workload identity federation).
    JwtBearer,
    /// Enterprise-managed authorization: an ID-JAG from the enterprise IdP, then jwt-bearer.
    IdJag,
}

impl OAuthGrant {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authorization-code" => Some(Self::AuthorizationCode),
            "client-credentials" => Some(Self::ClientCredentials),
            "jwt-bearer" => Some(Self::JwtBearer),
            "id-jag" => Some(Self::IdJag),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization-code",
            Self::ClientCredentials => "client-credentials",
            Self::JwtBearer => "jwt-bearer",
            Self::IdJag => "id-jag",
        }
    }
}

/// Where the `private_key_jwt` signing key is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwtKeySource {
    /// A PEM private key file.
    File(PathBuf),
    /// The TLS client key the bridge already holds (file, PKCS#12 or token).
    Tls,
    /// A key on a PKCS#11 token (`pkcs11:URI`), with its certificate beside it: it signs on the
    /// token, through the same signing path as the TLS key.
    Pkcs11(Box<Pkcs11Identity>),
}

/// The enterprise identity provider of `--oauth-grant id-jag`.
#[derive(Clone, Debug)]
pub struct IdpOptions {
    pub token_endpoint: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    /// The user's ID token from the IdP, read on each use.
    pub id_token_file: PathBuf,
}

// ---- Per-server network policy (`--proxy`, `--tls-pin`) ----------------------------------------

/// Which proxy reaches this server.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum ProxySetting {
    /// ALL_PROXY/HTTPS_PROXY/HTTP_PROXY and NO_PROXY, as every other program reads them.
    #[default]
    FromEnvironment,
    /// `--proxy none`: connect directly, whatever the environment says.
    Direct,
    /// `--proxy <url>`: this proxy, even for hosts NO_PROXY lists.
    Url(String),
}

impl ProxySetting {
    /// `none`, or an http:// proxy URL (`user:password@` allowed); `from` names the flag or variable.
    pub fn parse(value: &str, from: &str) -> Result<ProxySetting, String> {
        let value = value.trim();
        if value.eq_ignore_ascii_case("none") {
            return Ok(ProxySetting::Direct);
        }
        let lower = value.to_ascii_lowercase();
        if lower.starts_with("socks") {
            return Err(format!(
                "{from}: {} is a SOCKS proxy, which mcp-secure-remote does not support; use an \
                 HTTP CONNECT proxy (http://host:port) or none",
                redact_userinfo(value)
            ));
        }
        let rest = lower.strip_prefix("http://").unwrap_or(&lower);
        if rest.contains("://") || rest.is_empty() {
            return Err(format!(
                "{from}: '{}' is not an HTTP proxy URL: use http://host:port (or none to connect \
                 directly)",
                redact_userinfo(value)
            ));
        }
        Ok(ProxySetting::Url(value.to_string()))
    }
}

/// `--debug` shows the proxy without its credentials.
impl fmt::Debug for ProxySetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxySetting::FromEnvironment => f.write_str("FromEnvironment"),
            ProxySetting::Direct => f.write_str("Direct"),
            ProxySetting::Url(url) => write!(f, "Url({})", redact_userinfo(url)),
        }
    }
}

/// Hide `user:password@` in a proxy URL before it reaches a message.
pub fn redact_userinfo(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        (None, Some(at)) => format!("***@{}", &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// A `--tls-pin`: the SHA-256 of a certificate's SubjectPublicKeyInfo (curl's `--pinnedpubkey`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SpkiPin(pub [u8; 32]);

impl SpkiPin {
    /// `sha256//<base64>` (curl's form) or `sha256/<base64>`.
    pub fn parse(value: &str) -> Result<SpkiPin, String> {
        use base64ct::{Base64, Encoding};
        let value = value.trim();
        let encoded = value
            .strip_prefix("sha256//")
            .or_else(|| value.strip_prefix("sha256/"))
            .ok_or_else(|| {
                format!(
                    "--tls-pin: '{value}' is not sha256//<base64> (the SHA-256 of the server key's \
                     SubjectPublicKeyInfo, as curl's --pinnedpubkey takes it)"
                )
            })?;
        let bytes = Base64::decode_vec(encoded).map_err(|_| {
            format!("--tls-pin: '{encoded}' is not base64 (e.g. sha256//AbC…= with 44 characters)")
        })?;
        let hash: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "--tls-pin: '{encoded}' decodes to {} bytes, not the 32 of a SHA-256",
                b.len()
            )
        })?;
        Ok(SpkiPin(hash))
    }
}

impl fmt::Display for SpkiPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use base64ct::{Base64, Encoding};
        write!(f, "sha256//{}", Base64::encode_string(&self.0))
    }
}

impl fmt::Debug for SpkiPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Tool-name globs (`*` wildcard, matched case-insensitively; see `transport::tool_filter`).
/// A tool matching an `ignore` pattern is hidden even when an `allow` pattern matches it too;
/// with `allow` patterns, only the tools matching one of them are shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolPatterns {
    pub ignore: Vec<String>,
    pub allow: Vec<String>,
}

impl ToolPatterns {
    /// Whether any pattern was given (nothing is filtered otherwise).
    pub fn is_empty(&self) -> bool {
        self.ignore.is_empty() && self.allow.is_empty()
    }
}

/// Shown by `--debug`: header values are redacted (they are often `Authorization` tokens).
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(name, _)| format!("{name}: <redacted>"))
            .collect();
        f.debug_struct("Config")
            .field("url", &self.url.full)
            .field("headers", &headers)
            .field("transport", &self.transport)
            .field("debug", &self.debug)
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_message", &self.max_message)
            .field("memory_budget", &self.memory_budget)
            .field("tools", &self.tools)
            .field("cookies", &self.cookies)
            .field("proxy", &self.proxy)
            .field("oauth", &self.oauth)
            .finish()
    }
}

/// A parsed, validated absolute http(s) URL, split into the parts we use. Parsing and joining
/// are the `url` crate's (WHATWG rules, as the SDKs resolve an `endpoint` or a `Location`); this
/// type adds the bridge's own rules: http(s) only, no credentials, no port 0, no fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// The URL as sent: normalised by `url` (lower-case scheme and host, default port left out),
    /// without its fragment.
    pub full: String,
    /// `https` or `http`.
    pub scheme: String,
    /// Host without brackets for IPv6 literals (`::1`, `mcp.example.com`).
    pub host: String,
    pub port: u16,
    /// Path and query, always starting with `/`.
    pub path_and_query: String,
}

/// Why a URL was refused, in words that complete "… is not a valid URL: ".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlError(pub &'static str);

impl Url {
    /// Parse an absolute `http(s)://host[:port][/path][?query]` URL.
    pub fn parse(raw: &str) -> Result<Url, UrlError> {
        // `url` would percent-encode these silently; a URL typed with a space is a mistake.
        let before_fragment = raw.split('#').next().unwrap_or_default();
        if before_fragment.trim() != before_fragment
            || before_fragment
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(UrlError(
                "it contains spaces or control characters (percent-encode them)",
            ));
        }
        if !raw.contains("://") {
            return Err(UrlError("expected https://host/path"));
        }
        let parsed = url::Url::parse(raw).map_err(|e| match e {
            url::ParseError::EmptyHost => UrlError("the host is missing"),
            url::ParseError::InvalidPort => UrlError("the port must be a number from 1 to 65535"),
            _ => UrlError("cannot read host[:port]"),
        })?;
        Url::from_parsed(parsed)
    }

    fn from_parsed(mut parsed: url::Url) -> Result<Url, UrlError> {
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(UrlError(
                "the scheme must be https:// (or http:// with --allow-http)",
            ));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(UrlError(
                "credentials in the URL are not supported; use --header \"Authorization: ...\"",
            ));
        }
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            _ => return Err(UrlError("the host is missing")),
        };
        let port = match parsed.port_or_known_default() {
            Some(0) | None => return Err(UrlError("the port must be a number from 1 to 65535")),
            Some(p) => p,
        };
        parsed.set_fragment(None);
        let path_and_query = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_string(),
        };
        Ok(Url {
            full: parsed.as_str().to_string(),
            scheme: parsed.scheme().to_string(),
            host,
            port,
            path_and_query,
        })
    }

    pub fn is_https(&self) -> bool {
        self.scheme == "https"
    }

    /// `scheme://host:port`, the unit of same-origin checks.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.authority())
    }

    /// `host:port` with brackets around IPv6 literals.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Resolve a URL reference (as in an SSE `endpoint` event or a `Location` header) against this
    /// URL, as a browser would: absolute, scheme-relative (`//host/p`), absolute-path (`/p?q`),
    /// query-only (`?q`) or relative (`p`). Returns None when the result is not a URL the bridge
    /// may use.
    pub fn join(&self, reference: &str) -> Option<Url> {
        let base = url::Url::parse(&self.full).ok()?;
        Url::from_parsed(base.join(reference.trim()).ok()?).ok()
    }

    /// Same scheme, host and port: where the certificate and headers may follow.
    pub fn same_origin(&self, other: &Url) -> bool {
        self.scheme == other.scheme && self.host == other.host && self.port == other.port
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

/// How the bridge picks between Streamable HTTP and the legacy HTTP+SSE transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportStrategy {
    HttpFirst,
    SseFirst,
    HttpOnly,
    SseOnly,
}

impl TransportStrategy {
    pub const NAMES: [&'static str; 4] = ["http-first", "sse-first", "http-only", "sse-only"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "http-first" => Some(Self::HttpFirst),
            "sse-first" => Some(Self::SseFirst),
            "http-only" => Some(Self::HttpOnly),
            "sse-only" => Some(Self::SseOnly),
            _ => None,
        }
    }
}

/// TLS protocol versions the user can pin as a minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "TLSv1.2" => Some(Self::Tls12),
            "TLSv1.3" => Some(Self::Tls13),
            _ => None,
        }
    }
}

/// A secret string (passphrase, PIN). Its `Debug` never shows the value, so it cannot leak into
/// logs, and its bytes are wiped when it is dropped.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(zeroize::Zeroizing<String>);

impl Secret {
    pub fn new(s: String) -> Self {
        Self(zeroize::Zeroizing::new(s))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where the client certificate and its private key come from: one variant per source, each
/// holding exactly what that source needs, so that "a certificate without a key" or "a PKCS#12
/// bundle and a key file" cannot be expressed. The next source (a keychain, a certificate store)
/// is one more variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientIdentity {
    /// `--tls-cert` + `--tls-key`: PEM certificate chain and PEM private key (PKCS#1, PKCS#8, SEC1,
    /// encrypted PKCS#8, or legacy encrypted PEM).
    PemFiles {
        cert: PathBuf,
        key: PathBuf,
        passphrase: Option<Secret>,
    },
    /// `--tls-pfx`: a PKCS#12 bundle with the certificate chain and the key.
    Pkcs12 {
        bundle: PathBuf,
        passphrase: Option<Secret>,
    },
    /// `--tls-key pkcs11:…`: the key stays on a PKCS#11 token (smart card, YubiKey, HSM, TPM).
    Pkcs11(Box<Pkcs11Identity>),
    /// `--tls-cert windows:…|keychain:…|pkcs11:…|auto` alone: a source holding several
    /// certificates with their keys; the selector narrows them, the server's CA names choose.
    Store(Box<StoreIdentity>),
}

/// A selector and what its source may need to open (a token's module and PIN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreIdentity {
    pub selector: Selector,
    /// `--tls-pkcs11-module` / `MCP_REMOTE_TLS_PKCS11_MODULE`, for a `pkcs11:` or Unix `auto`
    /// selector (the URI's `module-path` otherwise).
    pub module: Option<PathBuf>,
    /// `--tls-passphrase` / `MCP_REMOTE_TLS_PASSPHRASE`: a token's user PIN.
    pub pin: Option<Secret>,
}

/// A private key on a PKCS#11 token and where its certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Identity {
    /// The RFC 7512 URI of the private key (`pkcs11:token=…;object=…`).
    pub key: Pkcs11Uri,
    pub cert: TokenCertSource,
    /// The vendor module from `--tls-pkcs11-module` / `MCP_REMOTE_TLS_PKCS11_MODULE`; the URI's
    /// `module-path` is used when this is `None`.
    pub module: Option<PathBuf>,
    /// The user PIN from `--tls-passphrase` / `MCP_REMOTE_TLS_PASSPHRASE`; the URI's `pin-source`
    /// or `pin-value` is used when this is `None`.
    pub pin: Option<Secret>,
}

/// The certificate that goes with a token key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCertSource {
    /// `--tls-cert` omitted: the certificate object on the token with the key's `id` (or label).
    BesideKey,
    /// `--tls-cert pkcs11:…`: a certificate object named by its own URI.
    Token(Box<Pkcs11Uri>),
    /// `--tls-cert FILE`: a PEM chain on disk (rotated like any other file).
    File(PathBuf),
}

impl ClientIdentity {
    /// The files whose change means the identity should be loaded again (certificate rotation).
    pub fn files(&self) -> Vec<PathBuf> {
        match self {
            Self::PemFiles { cert, key, .. } => vec![cert.clone(), key.clone()],
            Self::Pkcs12 { bundle, .. } => vec![bundle.clone()],
            Self::Pkcs11(token) => match &token.cert {
                TokenCertSource::File(cert) => vec![cert.clone()],
                TokenCertSource::BesideKey | TokenCertSource::Token(_) => Vec::new(),
            },
            // A store has no files: rotation lists its certificates instead (`tls::store_stamp`).
            Self::Store(_) => Vec::new(),
        }
    }
}

/// TLS settings from `--tls-*` flags or their `MCP_REMOTE_TLS_*` env fallbacks.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// The client certificate and key; `None`: no client certificate is offered.
    pub identity: Option<ClientIdentity>,
    /// PEM CA bundle that replaces the default roots.
    pub ca: Option<PathBuf>,
    /// Name sent as SNI and checked against the server certificate instead of the URL host.
    pub servername: Option<String>,
    pub min_version: Option<TlsVersion>,
    /// **WARNING**: disables server certificate verification.
    pub insecure_skip_verify: bool,
    /// `--tls-pin`: accept the server only if a certificate of its chain has one of these keys.
    pub pins: Vec<SpkiPin>,
}

impl TlsOptions {
    /// Whether a client identity was configured.
    pub fn has_identity(&self) -> bool {
        self.identity.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::Url;

    fn parse_url(raw: &str) -> Result<Url, super::UrlError> {
        Url::parse(raw)
    }

    #[test]
    fn joins_references_like_the_sdks() {
        let base = parse_url("https://h:8443/a/sse?x=1").unwrap();
        let j = |r: &str| base.join(r).unwrap().full;
        assert_eq!(
            j("/message?sessionId=1"),
            "https://h:8443/message?sessionId=1"
        );
        assert_eq!(
            j("messages/?session_id=2"),
            "https://h:8443/a/messages/?session_id=2"
        );
        assert_eq!(j("?q=3"), "https://h:8443/a/sse?q=3");
        assert_eq!(j("//other:1/p"), "https://other:1/p");
        assert_eq!(j("http://h:8443/p"), "http://h:8443/p");
        assert!(!base.same_origin(&base.join("http://h:8443/p").unwrap()));
        assert!(base.same_origin(&base.join("/x").unwrap()));
    }

    #[test]
    fn a_reference_with_a_url_in_its_query_stays_relative() {
        let base = parse_url("https://h:8443/sse").unwrap();
        let joined = base.join("/messages?next=https://x").unwrap();
        assert_eq!(joined.full, "https://h:8443/messages?next=https://x");
        assert!(base.same_origin(&joined));
    }
}
