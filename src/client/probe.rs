//! The test client's conversation: initialize, notifications/initialized, then every list the
//! server's capabilities announce, following `nextCursor` until the last page. Independent of
//! the transport (it talks to an [`Rpc`]), so that it is tested against a fake.

use std::collections::HashSet;
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::report::{Listing, Prompt, Resource, ResourceTemplate, Server, Step, Tool};
use super::rpc::{CallError, Rpc};

/// The protocol version the client offers.
pub const PROTOCOL_VERSION: &str = "2025-11-25";
pub const CLIENT_NAME: &str = "mcp-secure-remote-client";
/// A bound on pages per list, so that a server that keeps sending new cursors cannot loop us.
const MAX_PAGES: u32 = 1000;

/// What the conversation found out.
#[derive(Debug, Clone)]
pub struct Probe {
    pub server: Option<Server>,
    pub tools: Listing<Tool>,
    pub resources: Listing<Resource>,
    pub resource_templates: Listing<ResourceTemplate>,
    pub prompts: Listing<Prompt>,
    pub steps: Vec<Step>,
    /// The first step that failed; nothing after it was attempted.
    pub failure: Option<StepFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    pub step: String,
    pub error: CallError,
}

impl std::fmt::Display for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed: {}", self.step, self.error)
    }
}

/// Run the whole conversation over `rpc`. Never fails: a failure is recorded in the result.
pub fn probe(rpc: &mut dyn Rpc) -> Probe {
    let mut probe = Probe {
        server: None,
        tools: Listing::NotReached,
        resources: Listing::NotReached,
        resource_templates: Listing::NotReached,
        prompts: Listing::NotReached,
        steps: Vec::new(),
        failure: None,
    };

    let started = Instant::now();
    let server = rpc
        .call("initialize", initialize_params())
        .and_then(|result| server_of(&result));
    probe.record("initialize", started, None, server.as_ref().err());
    match server {
        Ok(server) => probe.server = Some(server),
        Err(_) => return probe,
    }

    let started = Instant::now();
    let initialized = rpc.notify("notifications/initialized");
    if !probe.record(
        "notifications/initialized",
        started,
        None,
        initialized.as_ref().err(),
    ) {
        return probe;
    }

    let declared = |name: &str| {
        probe
            .server
            .as_ref()
            .is_some_and(|s| s.capabilities.iter().any(|c| c == name))
    };
    let (has_tools, has_resources, has_prompts) = (
        declared("tools"),
        declared("resources"),
        declared("prompts"),
    );

    probe.tools = probe.list(rpc, has_tools, "tools/list", "tools");
    probe.resources = probe.list(rpc, has_resources, "resources/list", "resources");
    probe.resource_templates = probe.list(
        rpc,
        has_resources,
        "resources/templates/list",
        "resourceTemplates",
    );
    probe.prompts = probe.list(rpc, has_prompts, "prompts/list", "prompts");
    probe
}

impl Probe {
    /// Record a step; true when it worked.
    fn record(
        &mut self,
        name: &str,
        started: Instant,
        pages: Option<u32>,
        error: Option<&CallError>,
    ) -> bool {
        self.steps.push(Step {
            name: name.to_string(),
            ms: elapsed_ms(started),
            ok: error.is_none(),
            pages,
        });
        if let Some(error) = error {
            self.failure = Some(StepFailure {
                step: name.to_string(),
                error: error.clone(),
            });
        }
        error.is_none()
    }

    /// One list, unless an earlier step failed or the capability is not declared.
    fn list<T: DeserializeOwned>(
        &mut self,
        rpc: &mut dyn Rpc,
        declared: bool,
        method: &str,
        key: &str,
    ) -> Listing<T> {
        if self.failure.is_some() {
            return Listing::NotReached;
        }
        if !declared {
            return Listing::Absent;
        }
        let started = Instant::now();
        let mut pages = 0;
        let outcome = list_all(rpc, method, key, &mut pages);
        let ms = elapsed_ms(started);
        self.record(method, started, Some(pages), outcome.as_ref().err());
        match outcome {
            Ok(items) => Listing::Listed { items, pages, ms },
            Err(e) => Listing::Failed {
                error: e.to_string(),
                ms,
            },
        }
    }
}

/// Every item of a paginated list; `pages` counts the pages read.
fn list_all<T: DeserializeOwned>(
    rpc: &mut dyn Rpc,
    method: &str,
    key: &str,
    pages: &mut u32,
) -> Result<Vec<T>, CallError> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut seen = HashSet::new();
    loop {
        let params = match &cursor {
            Some(c) => json!({ "cursor": c }),
            None => json!({}),
        };
        let mut result = rpc.call(method, params)?;
        *pages += 1;
        let page = result.get_mut(key).map(Value::take).ok_or_else(|| {
            CallError::BadResult(format!("the {method} result has no '{key}' array"))
        })?;
        let page: Vec<T> = serde_json::from_value(page)
            .map_err(|e| CallError::BadResult(format!("the {method} result's '{key}': {e}")))?;
        items.extend(page);
        cursor = match result.get("nextCursor") {
            None | Some(Value::Null) => return Ok(items),
            Some(Value::String(next)) if next.is_empty() => return Ok(items),
            Some(Value::String(next)) => Some(next.clone()),
            Some(other) => {
                return Err(CallError::BadResult(format!(
                    "the {method} result's nextCursor is not a string: {other}"
                )))
            }
        };
        if let Some(next) = &cursor {
            if !seen.insert(next.clone()) {
                return Err(CallError::BadResult(format!(
                    "the server sent the {method} cursor '{next}' twice (pagination loops)"
                )));
            }
        }
        if *pages >= MAX_PAGES {
            return Err(CallError::BadResult(format!(
                "{method} has more than {MAX_PAGES} pages; giving up"
            )));
        }
    }
}

fn initialize_params() -> Value {
    json!({
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": CLIENT_NAME, "version": env!("CARGO_PKG_VERSION")},
    })
}

/// The facts of an initialize result.
fn server_of(result: &Value) -> Result<Server, CallError> {
    let text = |pointer: &str| {
        result
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let protocol_version = text("/protocolVersion").ok_or_else(|| {
        CallError::BadResult("the initialize result has no protocolVersion".into())
    })?;
    let capabilities = match result.get("capabilities") {
        Some(Value::Object(caps)) => caps
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| k.clone())
            .collect(),
        None | Some(Value::Null) => Vec::new(),
        Some(other) => {
            return Err(CallError::BadResult(format!(
                "the initialize result's capabilities are not an object: {other}"
            )))
        }
    };
    Ok(Server {
        name: text("/serverInfo/name").unwrap_or_default(),
        version: text("/serverInfo/version").unwrap_or_default(),
        title: text("/serverInfo/title"),
        protocol_version,
        capabilities,
        instructions: text("/instructions"),
    })
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Answers calls from a script and records what was asked.
    #[derive(Default)]
    struct Fake {
        answers: VecDeque<Result<Value, CallError>>,
        calls: Vec<(String, Value)>,
        notifications: Vec<String>,
    }

    impl Fake {
        fn answering(answers: Vec<Result<Value, CallError>>) -> Self {
            Fake {
                answers: answers.into(),
                ..Fake::default()
            }
        }
    }

    impl Rpc for Fake {
        fn call(&mut self, method: &str, params: Value) -> Result<Value, CallError> {
            self.calls.push((method.to_string(), params));
            self.answers
                .pop_front()
                .unwrap_or_else(|| Err(CallError::Transport("script ended".into())))
        }

        fn notify(&mut self, method: &str) -> Result<(), CallError> {
            self.notifications.push(method.to_string());
            Ok(())
        }
    }

    fn init(capabilities: Value) -> Result<Value, CallError> {
        Ok(json!({
            "protocolVersion": "2025-11-25",
            "capabilities": capabilities,
            "serverInfo": {"name": "fake", "version": "1.2.3"},
        }))
    }

    fn methods(fake: &Fake) -> Vec<&str> {
        fake.calls.iter().map(|(m, _)| m.as_str()).collect()
    }

    #[test]
    fn lists_only_what_the_server_declares() {
        let mut fake = Fake::answering(vec![
            init(json!({"tools": {}})),
            Ok(json!({"tools": [{"name": "echo", "description": "Echo\nmore"}]})),
        ]);
        let probe = probe(&mut fake);
        assert_eq!(probe.failure, None);
        assert_eq!(methods(&fake), ["initialize", "tools/list"]);
        assert_eq!(fake.notifications, ["notifications/initialized"]);
        assert_eq!(probe.server.as_ref().unwrap().capabilities, ["tools"]);
        assert_eq!(probe.tools.items().unwrap()[0].name, "echo");
        assert_eq!(probe.resources, Listing::Absent);
        assert_eq!(probe.resource_templates, Listing::Absent);
        assert_eq!(probe.prompts, Listing::Absent);
    }

    #[test]
    fn offers_the_protocol_version_and_names_itself() {
        let mut fake = Fake::answering(vec![init(json!({}))]);
        probe(&mut fake);
        let params = &fake.calls[0].1;
        assert_eq!(params["protocolVersion"], PROTOCOL_VERSION);
        assert_eq!(params["clientInfo"]["name"], CLIENT_NAME);
    }

    #[test]
    fn follows_next_cursor_until_the_last_page() {
        let mut fake = Fake::answering(vec![
            init(json!({"prompts": {}})),
            Ok(json!({"prompts": [{"name": "a"}], "nextCursor": "p2"})),
            Ok(
                json!({"prompts": [{"name": "b", "arguments": [{"name": "x", "required": true}]}], "nextCursor": "p3"}),
            ),
            Ok(json!({"prompts": [{"name": "c"}]})),
        ]);
        let probe = probe(&mut fake);
        assert_eq!(probe.failure, None);
        let cursors: Vec<&Value> = fake.calls[1..].iter().map(|(_, p)| p).collect();
        assert_eq!(
            cursors,
            [
                &json!({}),
                &json!({"cursor": "p2"}),
                &json!({"cursor": "p3"})
            ]
        );
        match &probe.prompts {
            Listing::Listed { items, pages, .. } => {
                assert_eq!(*pages, 3);
                let names: Vec<&str> = items.iter().map(|p| p.name.as_str()).collect();
                assert_eq!(names, ["a", "b", "c"]);
                assert!(items[1].arguments[0].required);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(probe.steps.last().unwrap().pages, Some(3));
    }

    #[test]
    fn a_repeated_cursor_is_an_error_not_a_loop() {
        let mut fake = Fake::answering(vec![
            init(json!({"tools": {}})),
            Ok(json!({"tools": [], "nextCursor": "same"})),
            Ok(json!({"tools": [], "nextCursor": "same"})),
        ]);
        let probe = probe(&mut fake);
        let failure = probe.failure.unwrap();
        assert_eq!(failure.step, "tools/list");
        assert!(failure.to_string().contains("twice"), "{failure}");
    }

    #[test]
    fn a_failed_initialize_stops_everything() {
        let mut fake = Fake::answering(vec![Err(CallError::Transport(
            "server certificate of 127.0.0.1 is not trusted".into(),
        ))]);
        let probe = probe(&mut fake);
        assert!(probe.server.is_none());
        assert!(fake.notifications.is_empty());
        assert_eq!(probe.tools, Listing::NotReached);
        assert_eq!(
            probe.failure.unwrap().to_string(),
            "initialize failed: server certificate of 127.0.0.1 is not trusted"
        );
    }

    #[test]
    fn a_failed_list_is_reported_and_later_lists_are_not_attempted() {
        let mut fake = Fake::answering(vec![
            init(json!({"tools": {}, "resources": {}, "prompts": {}})),
            Ok(json!({"tools": []})),
            Err(CallError::Server {
                code: -32601,
                message: "Method not found".into(),
            }),
        ]);
        let probe = probe(&mut fake);
        assert!(matches!(probe.tools, Listing::Listed { .. }));
        assert!(matches!(probe.resources, Listing::Failed { .. }));
        assert_eq!(probe.resource_templates, Listing::NotReached);
        assert_eq!(probe.prompts, Listing::NotReached);
        assert_eq!(
            methods(&fake),
            ["initialize", "tools/list", "resources/list"]
        );
        assert_eq!(probe.failure.unwrap().step, "resources/list");
    }

    #[test]
    fn an_initialize_result_without_version_is_refused() {
        let mut fake = Fake::answering(vec![Ok(json!({"capabilities": {}}))]);
        let probe = probe(&mut fake);
        assert!(matches!(
            probe.failure.unwrap().error,
            CallError::BadResult(_)
        ));
    }

    #[test]
    fn a_list_without_its_array_is_refused() {
        let mut fake = Fake::answering(vec![init(json!({"tools": {}})), Ok(json!({}))]);
        let probe = probe(&mut fake);
        assert!(probe.failure.unwrap().to_string().contains("'tools'"));
    }
}
