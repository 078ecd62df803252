//! The handshake-era session as a pure state machine (no I/O): the session id and negotiated
//! version the server gave, the client's `initialize` to replay when the server loses the
//! session, and what the client set up in it that a new session must get again
//! (`resources/subscribe`, `logging/setLevel`).
//!
//! ```text
//! client initialize ─► initializing ─► (result) ─► live ─► (404 / 400 "no session") ─► lost
//!        ▲                                                                              │
//!        └────────── replayed under a bridge id, then [`Session::replay`] ◄────────────┘
//! ```

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::jsonrpc::{self, FrameInfo, Id, Kind};

#[derive(Default, Debug)]
pub struct Session {
    /// `Mcp-Session-Id` from the initialize response.
    pub id: Option<String>,
    /// The version the initialize *result* negotiated.
    pub protocol_version: Option<String>,
    /// Id of the initialize in flight (the client's, or a replay), to read its result.
    pub initialize_id: Option<Id>,
    /// The client's initialize, replayed when the server loses the session.
    pub client_initialize: Option<Vec<u8>>,
    /// `result.capabilities` + `serverInfo` of the last initialize, to notice a changed server.
    pub server_identity: Option<String>,
    /// Counts sessions, so that concurrent requests that find the session gone replay once.
    pub generation: u64,
    /// Resource URIs the client subscribed to (and did not unsubscribe from).
    subscriptions: BTreeSet<String>,
    /// The last `logging/setLevel` level.
    log_level: Option<String>,
}

/// A request the bridge sends on a new session on the client's behalf.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    pub method: &'static str,
    pub params: Value,
    /// Said to the client (as a warning) when the replay fails.
    pub what: String,
}

impl Session {
    /// A client request (handshake era) is about to be sent: learn what it sets up.
    pub fn client_request(&mut self, info: &FrameInfo, frame: &[u8]) {
        let Some(method) = info.method.as_deref() else {
            return;
        };
        match method {
            "initialize" => {
                self.initialize_id = info.id.clone();
                self.client_initialize = Some(frame.to_vec());
            }
            "resources/subscribe" | "resources/unsubscribe" | "logging/setLevel" => {
                let params = serde_json::from_slice::<Value>(frame)
                    .ok()
                    .and_then(|v| v.get("params").cloned())
                    .unwrap_or_default();
                match (method, params["uri"].as_str(), params["level"].as_str()) {
                    ("resources/subscribe", Some(uri), _) => {
                        self.subscriptions.insert(uri.to_string());
                    }
                    ("resources/unsubscribe", Some(uri), _) => {
                        self.subscriptions.remove(uri);
                    }
                    ("logging/setLevel", _, Some(level)) => self.log_level = Some(level.into()),
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// A response from the server went by. True when it is the initialize result that starts
    /// the session (its negotiated version is then known).
    pub fn response(&mut self, info: &FrameInfo, frame: &[u8]) -> bool {
        if info.kind != Kind::Response
            || self.initialize_id.is_none()
            || self.initialize_id != info.id
        {
            return false;
        }
        self.initialize_id = None;
        if info.error_code.is_some() {
            return false;
        }
        self.protocol_version = jsonrpc::initialize_result_version(frame);
        self.server_identity = serde_json::from_slice::<Value>(frame).ok().map(|v| {
            format!(
                "{}{}",
                v["result"]["capabilities"], v["result"]["serverInfo"]
            )
        });
        true
    }

    /// Whether an initialize has succeeded (the server answered over the transport that carried it).
    pub fn is_established(&self) -> bool {
        self.server_identity.is_some()
    }

    /// Session id and negotiated version, for every request after initialize.
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut headers = Vec::new();
        if let Some(sid) = &self.id {
            headers.push(("Mcp-Session-Id".to_string(), sid.clone()));
        }
        if let Some(v) = &self.protocol_version {
            headers.push(("MCP-Protocol-Version".to_string(), v.clone()));
        }
        headers
    }

    /// The server lost the session `seen_generation`: forget its id and return the client's
    /// initialize to replay. None when another request already replayed it (the generation
    /// moved on) — or when there is nothing to replay, which the caller tells apart with
    /// [`Session::client_initialize`].
    pub fn lost(&mut self, seen_generation: u64) -> Option<Vec<u8>> {
        if self.generation != seen_generation {
            return None;
        }
        self.id = None;
        self.client_initialize.clone()
    }

    /// The replayed initialize succeeded: a new session. Returns the requests that restore
    /// what the client had set up, in a stable order.
    pub fn renewed(&mut self) -> Vec<Replay> {
        self.generation += 1;
        let mut replays: Vec<Replay> = self
            .subscriptions
            .iter()
            .map(|uri| Replay {
                method: "resources/subscribe",
                params: json!({ "uri": uri }),
                what: format!("the subscription to {uri}"),
            })
            .collect();
        if let Some(level) = &self.log_level {
            replays.push(Replay {
                method: "logging/setLevel",
                params: json!({ "level": level }),
                what: format!("the log level {level}"),
            });
        }
        replays
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(session: &mut Session, frame: &str) {
        let info = jsonrpc::classify(frame.as_bytes()).unwrap();
        session.client_request(&info, frame.as_bytes());
    }

    #[test]
    fn the_initialize_result_sets_the_version_and_headers() {
        let mut s = Session::default();
        request(
            &mut s,
            r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#,
        );
        s.id = Some("abc".into());
        let result = br#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"x"}}}"#;
        let info = jsonrpc::classify(result).unwrap();
        assert!(s.response(&info, result));
        assert!(!s.response(&info, result), "only once");
        assert_eq!(
            s.headers(),
            [
                ("Mcp-Session-Id".to_string(), "abc".to_string()),
                ("MCP-Protocol-Version".to_string(), "2025-06-18".to_string())
            ]
        );
    }

    #[test]
    fn a_lost_session_replays_once_per_generation_with_what_the_client_set_up() {
        let mut s = Session::default();
        let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#;
        request(&mut s, init);
        for uri in ["file:///a", "file:///b", "file:///c"] {
            request(
                &mut s,
                &format!(
                    r#"{{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{{"uri":"{uri}"}}}}"#
                ),
            );
        }
        request(
            &mut s,
            r#"{"jsonrpc":"2.0","id":2,"method":"resources/unsubscribe","params":{"uri":"file:///b"}}"#,
        );
        request(
            &mut s,
            r#"{"jsonrpc":"2.0","id":3,"method":"logging/setLevel","params":{"level":"info"}}"#,
        );
        request(
            &mut s,
            r#"{"jsonrpc":"2.0","id":4,"method":"logging/setLevel","params":{"level":"debug"}}"#,
        );
        s.id = Some("old".into());
        assert_eq!(s.lost(0).as_deref(), Some(init.as_bytes()));
        assert_eq!(s.id, None);
        let replays = s.renewed();
        let methods: Vec<_> = replays
            .iter()
            .map(|r| (r.method, r.params.clone()))
            .collect();
        assert_eq!(
            methods,
            [
                ("resources/subscribe", json!({"uri": "file:///a"})),
                ("resources/subscribe", json!({"uri": "file:///c"})),
                ("logging/setLevel", json!({"level": "debug"})),
            ]
        );
        assert_eq!(
            s.lost(0),
            None,
            "a second loss report for generation 0 is stale"
        );
    }
}
