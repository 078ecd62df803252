//! What the test client found out, as plain data: the `--json` document is this structure
//! serialized, and the human layout (`render.rs`) prints the same fields.

use serde::{Deserialize, Serialize};

use crate::config::{Config, TransportStrategy};
use crate::http::connector::HandshakeFacts;
use crate::tls::{format_utc, CertInfo, ClientKey, ClientTls};

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub url: String,
    /// True when every step worked (exit code 0).
    pub ok: bool,
    /// The one-line diagnosis of the failed step, when one failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub tls: Tls,
    pub transport: Transport,
    /// The OAuth authorization the server asked for; absent when it asked for none (or OAuth is
    /// off). Never a token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// The initialize result; `None` when initialize did not succeed.
    pub server: Option<Server>,
    pub tools: Listing<Tool>,
    /// `--ignore-tool` / `--allow-tool` and what they hid; absent when neither was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_filter: Option<ToolFilter>,
    pub resources: Listing<Resource>,
    pub resource_templates: Listing<ResourceTemplate>,
    pub prompts: Listing<Prompt>,
    /// Every step in order, with its duration.
    pub steps: Vec<Step>,
    pub total_ms: u64,
}

/// The authorization the bridge obtained: who issued it, how the client was registered, what
/// was granted, and for how long.
#[derive(Debug, Clone, Serialize)]
pub struct Authorization {
    /// The authorization server (its metadata's `issuer`).
    pub issuer: String,
    /// `pre-registered client`, `client ID metadata document` or `dynamic client registration`.
    pub registration: Option<String>,
    /// The scope granted (else the one asked for).
    pub scope: Option<String>,
    /// Seconds until the access token expires, when the server said.
    pub expires_in_s: Option<i64>,
    /// Where the tokens are kept.
    pub store: String,
}

impl Authorization {
    pub fn from_status(status: crate::oauth::authorizer::Status) -> Self {
        Self {
            issuer: status.issuer,
            registration: status.registration,
            scope: status.scope,
            expires_in_s: status.expires_in,
            store: status.store,
        }
    }
}

/// The tool filter the user asked for, and the tools it removed from the listing.
#[derive(Debug, Clone, Serialize)]
pub struct ToolFilter {
    pub ignore: Vec<String>,
    pub allow: Vec<String>,
    /// Names of the server's tools the client was not shown, in name order.
    pub hidden: Vec<String>,
}

/// The TLS connection to the server.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Tls {
    /// The latest handshake with the server.
    Handshake(Box<Handshake>),
    /// A plain `http://` URL (`--allow-http`): no TLS, no client certificate.
    NotUsed,
    /// No handshake completed (the server's certificate was refused, or nothing answered).
    NoHandshake,
}

#[derive(Debug, Clone, Serialize)]
pub struct Handshake {
    /// `TLSv1.3` or `TLSv1.2`.
    pub protocol: String,
    pub cipher_suite: String,
    /// The name sent as SNI and checked against the server certificate.
    pub server_name: String,
    /// The server's leaf certificate.
    pub server_certificate: Option<Certificate>,
    /// Certificates the server sent (leaf included).
    pub server_chain_length: usize,
    /// What the server certificate was checked against.
    pub verified_by: String,
    /// The certificate this client presented, if any.
    pub client_certificate: Option<Certificate>,
    /// Where the private key of that certificate is (file, PKCS#12 bundle, PKCS#11 token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key: Option<Key>,
    /// With a `--tls-cert` selector of several identities: the selector of the one this
    /// handshake presented, chosen from the server's CA names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_chosen: Option<String>,
}

/// The client's private key: where it is and what it is.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Key {
    /// `file`, `pkcs12`, `pkcs11` (`--tls-key pkcs11:`) or `store` (one identity of a
    /// `--tls-cert` selector).
    pub source: String,
    /// The file, or the PKCS#11 token's label.
    pub location: String,
    /// The key object's label on a token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// `RSA 2048`, `ECDSA P-256`.
    pub algorithm: String,
    /// A token key's signature schemes offered in handshakes, each with its PKCS#11 mechanism.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mechanisms: Vec<String>,
    /// The one-line form the text report shows.
    pub description: String,
}

impl From<&ClientKey> for Key {
    fn from(key: &ClientKey) -> Self {
        Key {
            source: key.source.to_string(),
            location: key.location.clone(),
            object: key.object.clone(),
            algorithm: key.algorithm.clone(),
            mechanisms: key.mechanisms.clone(),
            description: key.to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Certificate {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    /// `2126-11-01 13:34:41 UTC`.
    pub not_after: String,
}

impl From<&CertInfo> for Certificate {
    fn from(info: &CertInfo) -> Self {
        Certificate {
            subject: info.subject.clone(),
            issuer: info.issuer.clone(),
            sans: info.sans.clone(),
            not_after: format_utc(info.not_after),
        }
    }
}

impl Tls {
    /// The TLS facts of this run: the last handshake the connector recorded, with the client
    /// identity that was configured.
    pub fn describe(config: &Config, client: &ClientTls, facts: Option<HandshakeFacts>) -> Tls {
        if !config.url.is_https() {
            return Tls::NotUsed;
        }
        let Some(facts) = facts else {
            return Tls::NoHandshake;
        };
        let server_certificate = facts.server_chain.first().and_then(|leaf| {
            CertInfo::from_der(leaf)
                .map_err(|e| log::warn!("cannot read the server certificate: {e}"))
                .ok()
                .map(|info| Certificate::from(&info))
        });
        let verified_by = if config.tls.insecure_skip_verify {
            "nothing: verification DISABLED (--tls-insecure-skip-verify)".to_string()
        } else {
            match &config.tls.ca {
                Some(ca) => format!("--tls-ca {}", ca.display()),
                None => "the OS trust store".to_string(),
            }
        };
        Tls::Handshake(Box::new(Handshake {
            protocol: facts.protocol,
            cipher_suite: facts.cipher_suite,
            server_name: facts.server_name,
            server_certificate,
            server_chain_length: facts.server_chain.len(),
            verified_by,
            client_certificate: client
                .identity
                .as_ref()
                .or(facts.chosen.as_ref().map(|(info, _)| info))
                .map(Certificate::from),
            client_key: client.key.as_ref().map(Key::from),
            client_chosen: facts.chosen.map(|(_, selector)| selector),
        }))
    }
}

/// The MCP transport the session used.
#[derive(Debug, Clone, Serialize)]
pub struct Transport {
    /// `Streamable HTTP`, `legacy HTTP+SSE`, or `undecided` when nothing answered.
    pub name: String,
    /// The `--transport` strategy.
    pub strategy: String,
    /// True when the strategy's first choice did not work and the other transport was used.
    pub fell_back: bool,
    pub url: String,
}

impl Transport {
    pub fn describe(config: &Config, name: &str) -> Transport {
        let strategy = config.transport;
        let fell_back = match strategy {
            TransportStrategy::HttpFirst => name == "legacy HTTP+SSE",
            TransportStrategy::SseFirst => name == "Streamable HTTP",
            TransportStrategy::HttpOnly | TransportStrategy::SseOnly => false,
        };
        Transport {
            name: name.to_string(),
            strategy: strategy_name(strategy).to_string(),
            fell_back,
            url: config.url.full.clone(),
        }
    }
}

fn strategy_name(strategy: TransportStrategy) -> &'static str {
    match strategy {
        TransportStrategy::HttpFirst => "http-first",
        TransportStrategy::SseFirst => "sse-first",
        TransportStrategy::HttpOnly => "http-only",
        TransportStrategy::SseOnly => "sse-only",
    }
}

/// What `initialize` told about the server.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Server {
    pub name: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The protocol version the server chose.
    pub protocol_version: String,
    /// Names of the capabilities the server declared (`tools`, `resources`, …).
    pub capabilities: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}

/// The outcome of one `*/list` method.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Listing<T> {
    /// Every page was read.
    Listed { items: Vec<T>, pages: u32, ms: u64 },
    /// The server did not declare the capability, so the list was not asked for.
    Absent,
    /// The list failed: the diagnosis.
    Failed { error: String, ms: u64 },
    /// Not attempted because an earlier step failed.
    NotReached,
}

impl<T> Listing<T> {
    /// The items, when listed.
    pub fn items(&self) -> Option<&[T]> {
        match self {
            Listing::Listed { items, .. } => Some(items),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tool {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Resource {
    pub uri: String,
    pub name: String,
    #[serde(default, rename = "mimeType", skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResourceTemplate {
    #[serde(rename = "uriTemplate")]
    pub uri_template: String,
    pub name: String,
    #[serde(default, rename = "mimeType", skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Prompt {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<PromptArgument>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PromptArgument {
    pub name: String,
    #[serde(default)]
    pub required: bool,
}

/// One exchange with the server and how long it took.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Step {
    /// The MCP method (`initialize`, `tools/list`, …) or `close`.
    pub name: String,
    pub ms: u64,
    pub ok: bool,
    /// For lists: the number of pages read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<u32>,
}
