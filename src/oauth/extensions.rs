//! MCP 2026-07-28 declares extensions per request, in
//! `_meta["io.modelcontextprotocol/clientCapabilities"].extensions`. A bridge that runs an
//! authorization extension on behalf of a stdio client (which knows nothing of it) adds the
//! extension's id there, keeping everything the client itself declared.

use serde_json::{Map, Value};

use crate::config::{OAuthGrant, OAuthOptions};

const CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// The ids of the authorization extensions these options run.
pub fn in_use(options: &OAuthOptions, dpop_active: bool) -> Vec<&'static str> {
    let mut ids = Vec::new();
    if !options.enabled {
        return ids;
    }
    match options.grant {
        OAuthGrant::ClientCredentials => {
            ids.push("io.modelcontextprotocol/oauth-client-credentials")
        }
        OAuthGrant::IdJag => ids.push("io.modelcontextprotocol/enterprise-managed-authorization"),
        OAuthGrant::JwtBearer => ids.push("io.modelcontextprotocol/auth/wif"),
        OAuthGrant::AuthorizationCode => {}
    }
    if dpop_active {
        ids.push("io.modelcontextprotocol/auth/dpop");
    }
    ids
}

/// `frame` (a 2026-07-28 request) with `ids` added to its declared extensions; None when there
/// is nothing to add or the frame is not a request object with params.
pub fn declare(frame: &[u8], ids: &[&str]) -> Option<Vec<u8>> {
    if ids.is_empty() {
        return None;
    }
    let mut message: Value = serde_json::from_slice(frame).ok()?;
    let meta = message
        .get_mut("params")?
        .as_object_mut()?
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()?;
    let capabilities = meta
        .entry(CAPABILITIES)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()?;
    let extensions = capabilities
        .entry("extensions")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()?;
    let mut added = false;
    for id in ids {
        if !extensions.contains_key(*id) {
            extensions.insert((*id).to_string(), Value::Object(Map::new()));
            added = true;
        }
    }
    added.then(|| message.to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn adds_the_extension_and_keeps_what_the_client_declared() {
        let frame = json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{
            "io.modelcontextprotocol/protocolVersion":"2026-07-28",
            CAPABILITIES: {"sampling":{}, "extensions":{"x.y/z":{"a":1}}}}}});
        let out = declare(
            frame.to_string().as_bytes(),
            &["io.modelcontextprotocol/oauth-client-credentials"],
        )
        .unwrap_or_default();
        let v: Value = serde_json::from_slice(&out).unwrap_or_default();
        let caps = &v["params"]["_meta"][CAPABILITIES];
        assert_eq!(caps["sampling"], json!({}));
        assert_eq!(caps["extensions"]["x.y/z"], json!({"a":1}));
        assert_eq!(
            caps["extensions"]["io.modelcontextprotocol/oauth-client-credentials"],
            json!({})
        );
        assert_eq!(v["id"], 1);
    }

    #[test]
    fn nothing_to_add_or_nothing_to_add_to_leaves_the_frame_alone() {
        let frame = br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{}}"#;
        assert!(declare(frame, &[]).is_none());
        assert!(declare(br#"{"jsonrpc":"2.0","method":"x"}"#, &["a"]).is_none());
        assert!(declare(b"not json", &["a"]).is_none());
        let declared = br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"io.modelcontextprotocol/clientCapabilities":{"extensions":{"a":{}}}}}}"#;
        assert!(declare(declared, &["a"]).is_none());
    }
}
