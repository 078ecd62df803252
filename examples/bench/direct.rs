//! The "direct" client: the library's own agent (`http::build` with `tls::client_config`) speaking
//! Streamable HTTP to the server in-process, with no stdio hop and no bridge logic. This is the
//! floor the bridge is measured against: MCP over this HTTPS stack cannot be faster than this.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::time::Instant;

use mcp_secure_remote::cli::{self, Command, Program};
use mcp_secure_remote::http::{self, Http};
use mcp_secure_remote::tls;
use serde_json::Value;
use ureq::http::Response;
use ureq::Body;

use crate::bridge_proc::mtls_args;
use crate::error::{excerpt, BenchError, Result};
use crate::messages::{self, PROTOCOL_VERSION};

pub struct DirectClient {
    http: Http,
    url: String,
    session_id: Option<String>,
    protocol_version: String,
}

impl DirectClient {
    /// Everything the bridge does before its first answer, minus the process: parse the same
    /// flags, load the identity, build the agent, then initialize (TCP + TLS handshake + POST).
    pub fn connect(url: &str, fixtures: &Path) -> Result<DirectClient> {
        let mut args = vec![url.to_string()];
        args.extend(mtls_args(fixtures));
        let config = match cli::parse(args, |_| None, Program::Proxy) {
            Ok(Command::Run(invocation)) => invocation.config,
            Ok(_) => return Err(BenchError::DirectSetup("flags asked for help".into())),
            Err(e) => return Err(BenchError::DirectSetup(e.to_string())),
        };
        let tls =
            tls::client_config(&config.tls).map_err(|e| BenchError::DirectSetup(e.to_string()))?;
        let http =
            http::build(&config, &tls).map_err(|e| BenchError::DirectSetup(e.to_string()))?;
        let mut client = DirectClient {
            http,
            url: url.to_string(),
            session_id: None,
            protocol_version: PROTOCOL_VERSION.to_string(),
        };
        client.initialize()?;
        Ok(client)
    }

    fn initialize(&mut self) -> Result<()> {
        let resp = self.post(&messages::initialize(0), "initialize")?;
        self.session_id = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let reply = read_reply(resp, 0, "initialize")?;
        let parsed: Value =
            serde_json::from_str(&reply.text).map_err(|e| BenchError::BadReply {
                what: format!("initialize reply: {e}"),
                excerpt: excerpt(&reply.text),
            })?;
        if let Some(version) = parsed
            .pointer("/result/protocolVersion")
            .and_then(Value::as_str)
        {
            self.protocol_version = version.to_string();
        }
        let accepted = self.post(&messages::initialized(), "notifications/initialized")?;
        drain(accepted.into_body().into_reader());
        Ok(())
    }

    /// POST one request and read its SSE (or JSON) reply up to the response; returns the moment
    /// the response was complete and the response text. The rest of the stream is drained after
    /// that moment so that the connection goes back to the pool.
    pub fn call(&self, id: i64, request: &str) -> Result<(Instant, String)> {
        let resp = self.post(request, "tools/call")?;
        let reply = read_reply(resp, id, "tools/call")?;
        Ok((reply.at, reply.text))
    }

    /// DELETE the session: what the bridge does on stdin EOF before exiting.
    pub fn delete_session(&self) -> Result<()> {
        let mut request = self.http.agent.delete(&self.url);
        if let Some(sid) = &self.session_id {
            request = request
                .header("Mcp-Session-Id", sid)
                .header("MCP-Protocol-Version", &self.protocol_version);
        }
        let resp = request.call().map_err(|e| BenchError::Http {
            what: "DELETE".into(),
            detail: e.to_string(),
        })?;
        drain(resp.into_body().into_reader());
        Ok(())
    }

    fn post(&self, body: &str, what: &str) -> Result<Response<Body>> {
        let mut request = self
            .http
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream");
        if let Some(sid) = &self.session_id {
            request = request
                .header("Mcp-Session-Id", sid)
                .header("MCP-Protocol-Version", &self.protocol_version);
        }
        let resp = request
            .send(body.as_bytes())
            .map_err(|e| BenchError::Http {
                what: what.to_string(),
                detail: e.to_string(),
            })?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let mut text = String::new();
            let _ = resp
                .into_body()
                .into_reader()
                .take(4096)
                .read_to_string(&mut text);
            return Err(BenchError::Http {
                what: what.to_string(),
                detail: format!("HTTP {status}: {}", excerpt(&text)),
            });
        }
        Ok(resp)
    }
}

struct Reply {
    at: Instant,
    text: String,
}

/// The response to `id` from an SSE stream (the `data:` line carrying it) or a JSON body.
fn read_reply(resp: Response<Body>, id: i64, what: &str) -> Result<Reply> {
    let is_sse = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let mut reader = BufReader::with_capacity(64 * 1024, resp.into_body().into_reader());
    let io_error = |e: std::io::Error| BenchError::Http {
        what: what.to_string(),
        detail: e.to_string(),
    };
    if !is_sse {
        let mut text = String::new();
        reader.read_to_string(&mut text).map_err(io_error)?;
        let at = Instant::now();
        return match messages::response_id(&text)? {
            Some(got) if got == id => Ok(Reply { at, text }),
            _ => Err(unexpected(what, &text)),
        };
    }
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(io_error)? == 0 {
            return Err(BenchError::BadReply {
                what: format!("{what}: the event stream ended without the response"),
                excerpt: String::new(),
            });
        }
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        let data = data.trim();
        // The priming event has an empty data field; notifications have no response id.
        if data.is_empty() || messages::response_id(data)? != Some(id) {
            continue;
        }
        let at = Instant::now();
        let text = data.to_string();
        drain(reader);
        return Ok(Reply { at, text });
    }
}

fn unexpected(what: &str, text: &str) -> BenchError {
    BenchError::BadReply {
        what: format!("{what}: not the response expected"),
        excerpt: excerpt(text),
    }
}

/// Read a body to its end, so that ureq returns the connection to its pool.
fn drain(mut reader: impl Read) {
    let _ = std::io::copy(&mut reader, &mut std::io::sink());
}
