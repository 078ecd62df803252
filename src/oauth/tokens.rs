//! What the bridge keeps of an authorization, as plain data: the client it registered (per
//! issuer), the tokens it holds, and the token endpoint's answers. Serialised as one JSON record
//! per server into the token store. `Debug` never shows a secret.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::metadata::AuthServer;

/// Seconds before expiry at which a token is renewed rather than used.
pub const REFRESH_MARGIN_SECS: u64 = 60;

/// How the client was obtained (for the report and the choice to re-register).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ClientSource {
    PreRegistered,
    MetadataDocument,
    Dynamic,
}

impl ClientSource {
    pub fn describe(self) -> &'static str {
        match self {
            ClientSource::PreRegistered => "pre-registered client",
            ClientSource::MetadataDocument => "client ID metadata document",
            ClientSource::Dynamic => "dynamic client registration",
        }
    }
}

/// A client at one authorization server. Never presented to another issuer.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Client {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// `none`, `client_secret_basic` or `client_secret_post`.
    pub auth_method: String,
    /// The redirect URI registered with it (dynamic registration), if any.
    pub redirect_uri: Option<String>,
    pub source: ClientSource,
    /// Unix seconds; 0 or absent: the secret does not expire.
    #[serde(default)]
    pub secret_expires_at: u64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("auth_method", &self.auth_method)
            .field("source", &self.source)
            .finish()
    }
}

/// Tokens from one authorization server for one resource.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tokens {
    pub access_token: String,
    pub token_type: String,
    pub refresh_token: Option<String>,
    /// Unix seconds; None: the server did not say.
    pub expires_at: Option<u64>,
    /// When they were obtained (Unix seconds), to renew short-lived tokens at half their life.
    #[serde(default)]
    pub obtained_at: Option<u64>,
    /// The granted scope (else the requested one).
    pub scope: Option<String>,
    /// RFC 8705 `x5t#S256` of the TLS client certificate presented when a machine grant issued
    /// these tokens: once the bridge presents another (a renewal), they are replaced before use,
    /// as the authorization server may have bound them to the old one (`cnf`), directly or
    /// through a DPoP proof signed by its key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("token_type", &self.token_type)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish()
    }
}

impl Tokens {
    /// The `Authorization` header value (`Bearer …`, or `DPoP …` for a DPoP-bound token).
    pub fn header(&self) -> String {
        format!("{} {}", self.token_type, self.access_token)
    }

    pub fn is_dpop(&self) -> bool {
        self.token_type == "DPoP"
    }

    /// Expired or about to: renew before use. The margin is a minute, or half the token's life
    /// for a shorter-lived one (which would otherwise be renewed before every request).
    pub fn needs_refresh(&self, now: u64) -> bool {
        let Some(at) = self.expires_at else {
            return false;
        };
        let margin = match self.obtained_at {
            Some(from) => REFRESH_MARGIN_SECS.min(at.saturating_sub(from) / 2),
            None => REFRESH_MARGIN_SECS,
        };
        at <= now.saturating_add(margin)
    }

    /// Seconds left (None: unknown).
    pub fn seconds_left(&self, now: u64) -> Option<i64> {
        self.expires_at
            .map(|at| i64::try_from(at).unwrap_or(i64::MAX) - i64::try_from(now).unwrap_or(0))
    }
}

/// The record kept per MCP server in the token store.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Record {
    /// The resource string sent in `resource` (as the metadata gave it).
    pub resource: Option<String>,
    /// The authorization server's metadata, as validated.
    pub server: Option<AuthServer>,
    /// Clients, one per issuer that was used.
    #[serde(default)]
    pub clients: Vec<Client>,
    pub tokens: Option<Tokens>,
}

impl Record {
    pub fn client_for(&self, issuer: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.issuer == issuer)
    }

    pub fn put_client(&mut self, client: Client) {
        self.clients.retain(|c| c.issuer != client.issuer);
        self.clients.push(client);
    }

    pub fn issuer(&self) -> Option<&str> {
        self.server.as_ref().map(|s| s.issuer.as_str())
    }
}

/// A successful token endpoint answer (RFC 6749 §5.1).
#[derive(Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: Option<u64>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
}

impl TokenResponse {
    /// Into kept tokens. A refresh answer without a refresh token keeps the old one; one without
    /// a scope keeps what was asked.
    pub fn into_tokens(
        self,
        now: u64,
        asked_scope: Option<&str>,
        old_refresh: Option<String>,
    ) -> Result<Tokens, String> {
        let token_type = if self.token_type.eq_ignore_ascii_case("bearer") {
            "Bearer"
        } else if self.token_type.eq_ignore_ascii_case("dpop") {
            "DPoP"
        } else {
            return Err(format!(
                "the token endpoint issued a '{}' token; only Bearer and DPoP tokens are used",
                self.token_type
            ));
        };
        if self.access_token.is_empty() {
            return Err("the token endpoint answered with an empty access token".into());
        }
        Ok(Tokens {
            access_token: self.access_token,
            token_type: token_type.into(),
            refresh_token: self.refresh_token.or(old_refresh),
            expires_at: self.expires_in.map(|s| now.saturating_add(s)),
            obtained_at: Some(now),
            scope: self.scope.or_else(|| asked_scope.map(str::to_string)),
            certificate: None,
        })
    }
}

/// An error answer of the token or registration endpoint (RFC 6749 §5.2).
#[derive(Debug, Deserialize, Default)]
pub struct ErrorResponse {
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl ErrorResponse {
    pub fn parse(body: &[u8]) -> ErrorResponse {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// `invalid_grant: the refresh token expired` or the status alone.
    pub fn describe(&self, status: u16) -> String {
        match (&self.error, &self.error_description) {
            (Some(e), Some(d)) => format!("{} ({})", clean(e), clean(d)),
            (Some(e), None) => clean(e),
            _ => format!("HTTP {status}"),
        }
    }
}

/// An AS's text, shown in one line and bounded.
fn clean(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    one_line.chars().take(200).collect()
}

/// Unix time in seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(json: &str) -> TokenResponse {
        match serde_json::from_str(json) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn token_answer_keeps_expiry_scope_and_old_refresh_token() {
        let t = response(r#"{"access_token":"a","token_type":"bearer","expires_in":100}"#)
            .into_tokens(1000, Some("mcp:read"), Some("r0".into()));
        let t = t.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.expires_at, Some(1100));
        assert_eq!(t.scope.as_deref(), Some("mcp:read"));
        assert_eq!(t.refresh_token.as_deref(), Some("r0"));
        assert_eq!(t.header(), "Bearer a");
        assert!(!t.needs_refresh(1049));
        assert!(t.needs_refresh(1050));
        // A 10 s token is renewed at half its life, not before every request.
        let short = response(r#"{"access_token":"a","token_type":"Bearer","expires_in":10}"#)
            .into_tokens(1000, None, None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!short.needs_refresh(1004));
        assert!(short.needs_refresh(1005));
    }

    #[test]
    fn refuses_other_token_types_and_empty_tokens() {
        assert!(response(r#"{"access_token":"a","token_type":"mac"}"#)
            .into_tokens(0, None, None)
            .is_err());
        assert!(response(r#"{"access_token":"","token_type":"Bearer"}"#)
            .into_tokens(0, None, None)
            .is_err());
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let t = Tokens {
            access_token: "SECRET-A".into(),
            token_type: "Bearer".into(),
            refresh_token: Some("SECRET-R".into()),
            expires_at: None,
            obtained_at: None,
            scope: None,
            certificate: None,
        };
        let c = Client {
            issuer: "i".into(),
            client_id: "c".into(),
            client_secret: Some("SECRET-S".into()),
            auth_method: "client_secret_basic".into(),
            redirect_uri: None,
            source: ClientSource::Dynamic,
            secret_expires_at: 0,
        };
        let shown = format!("{t:?} {c:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }

    #[test]
    fn error_answers_are_described_in_one_bounded_line() {
        let e =
            ErrorResponse::parse(br#"{"error":"invalid_grant","error_description":"gone\nnow"}"#);
        assert_eq!(e.describe(400), "invalid_grant (gone now)");
        assert_eq!(ErrorResponse::parse(b"<html>").describe(502), "HTTP 502");
    }

    #[test]
    fn a_record_holds_one_client_per_issuer() {
        let mut r = Record::default();
        let client = |issuer: &str, id: &str| Client {
            issuer: issuer.into(),
            client_id: id.into(),
            client_secret: None,
            auth_method: "none".into(),
            redirect_uri: None,
            source: ClientSource::Dynamic,
            secret_expires_at: 0,
        };
        r.put_client(client("https://a", "1"));
        r.put_client(client("https://b", "2"));
        r.put_client(client("https://a", "3"));
        assert_eq!(
            r.client_for("https://a").map(|c| c.client_id.as_str()),
            Some("3")
        );
        assert_eq!(
            r.client_for("https://b").map(|c| c.client_id.as_str()),
            Some("2")
        );
        assert!(r.client_for("https://c").is_none());
    }
}
