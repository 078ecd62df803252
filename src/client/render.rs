//! The human layout of a [`Report`]: one section per topic, two aligned columns, each step with
//! its time, readable at a glance. The `--json` output is the same report serialized.

use std::fmt::Write;

use super::report::{Certificate, Listing, Report, Step, Tls};

/// Widest first column; longer names push their second column to the right.
const MAX_NAME_WIDTH: usize = 28;
/// Descriptions are cut to one line of about this many characters.
const MAX_DESCRIPTION: usize = 100;

/// The report as text for a terminal.
pub fn human(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "mcp-secure-remote-client {} → {}",
        env!("CARGO_PKG_VERSION"),
        report.url
    );
    tls(&mut out, &report.tls);
    transport(&mut out, report);
    authorization(&mut out, report);
    server(&mut out, report);
    listing(
        &mut out,
        "Tools",
        "tools",
        &report.tools,
        step(report, "tools/list"),
        |t| {
            let description = t.description.as_deref().or(t.title.as_deref());
            (t.name.clone(), first_line(description.unwrap_or("")))
        },
    );
    tool_filter(&mut out, report);
    listing(
        &mut out,
        "Resources",
        "resources",
        &report.resources,
        step(report, "resources/list"),
        |r| (r.uri.clone(), with_mime(&r.name, r.mime_type.as_deref())),
    );
    listing(
        &mut out,
        "Resource templates",
        "resources",
        &report.resource_templates,
        step(report, "resources/templates/list"),
        |t| {
            (
                t.uri_template.clone(),
                with_mime(&t.name, t.mime_type.as_deref()),
            )
        },
    );
    listing(
        &mut out,
        "Prompts",
        "prompts",
        &report.prompts,
        step(report, "prompts/list"),
        |p| {
            let mut text = first_line(p.description.as_deref().unwrap_or(""));
            if !p.arguments.is_empty() {
                let args: Vec<String> = p
                    .arguments
                    .iter()
                    .map(|a| {
                        if a.required {
                            a.name.clone()
                        } else {
                            format!("[{}]", a.name)
                        }
                    })
                    .collect();
                let sep = if text.is_empty() { "" } else { " " };
                text = format!("{text}{sep}(arguments: {})", args.join(", "));
            }
            (p.name.clone(), text)
        },
    );
    steps(&mut out, report);
    out
}

fn tls(out: &mut String, tls: &Tls) {
    let _ = writeln!(out, "\nTLS");
    let handshake = match tls {
        Tls::NotUsed => {
            let _ = writeln!(
                out,
                "  not used: plain http:// URL (no client certificate sent)"
            );
            return;
        }
        Tls::NoHandshake => {
            let _ = writeln!(out, "  no handshake completed");
            return;
        }
        Tls::Handshake(h) => h,
    };
    let mut rows = vec![
        (
            "protocol".to_string(),
            format!("{} ({})", handshake.protocol, handshake.cipher_suite),
        ),
        ("server name".to_string(), handshake.server_name.clone()),
    ];
    match &handshake.server_certificate {
        Some(cert) => {
            rows.push(("server cert".into(), cert.subject.clone()));
            rows.push(("  issued by".into(), cert.issuer.clone()));
            rows.push(("  names".into(), names(cert)));
            rows.push(("  expires".into(), cert.not_after.clone()));
        }
        None => rows.push(("server cert".into(), "unreadable".into())),
    }
    rows.push((
        "server chain".into(),
        plural(handshake.server_chain_length, "certificate"),
    ));
    rows.push(("verified by".into(), handshake.verified_by.clone()));
    rows.push((
        "client cert".into(),
        match &handshake.client_certificate {
            Some(cert) => format!("{} (expires {})", cert.subject, cert.not_after),
            None => "none presented".into(),
        },
    ));
    if let Some(key) = &handshake.client_key {
        rows.push(("  key".into(), key.description.clone()));
    }
    if let Some(selector) = &handshake.client_chosen {
        rows.push((
            "  chosen".into(),
            format!("from the server's CA names: --tls-cert '{selector}'"),
        ));
    }
    table(out, &rows);
}

fn transport(out: &mut String, report: &Report) {
    let t = &report.transport;
    let _ = writeln!(out, "\nTransport");
    if t.name == "undecided" {
        let _ = writeln!(
            out,
            "  not established: the server never answered (strategy {})",
            t.strategy
        );
        return;
    }
    let fallback = match (t.fell_back, t.name.as_str()) {
        (false, _) => "",
        (true, "Streamable HTTP") => ": fell back from legacy HTTP+SSE",
        (true, _) => ": fell back from Streamable HTTP",
    };
    let _ = writeln!(out, "  {} (strategy {}{fallback})", t.name, t.strategy);
}

/// The OAuth authorization, when the server asked for one (never a token).
fn authorization(out: &mut String, report: &Report) {
    let Some(a) = &report.authorization else {
        return;
    };
    let _ = writeln!(out, "\nAuthorization (OAuth)");
    let _ = writeln!(out, "  issuer: {}", a.issuer);
    if let Some(registration) = &a.registration {
        let _ = writeln!(out, "  client: {registration}");
    }
    let _ = writeln!(out, "  scope: {}", a.scope.as_deref().unwrap_or("(none)"));
    let expiry = match a.expires_in_s {
        Some(s) if s <= 0 => "expired".to_string(),
        Some(s) => format!("in {s} s"),
        None => "not said".to_string(),
    };
    let _ = writeln!(out, "  token expires: {expiry}");
    let _ = writeln!(out, "  kept in: {}", a.store);
}

fn server(out: &mut String, report: &Report) {
    let _ = writeln!(out, "\nServer{}", timing(step(report, "initialize")));
    let Some(server) = &report.server else {
        let _ = writeln!(out, "  not initialized");
        return;
    };
    let mut name = format!("{} {}", server.name, server.version);
    if let Some(title) = &server.title {
        let _ = write!(name, " ({title})");
    }
    let mut rows = vec![
        ("name".to_string(), name.trim().to_string()),
        ("protocol".to_string(), server.protocol_version.clone()),
        (
            "capabilities".to_string(),
            if server.capabilities.is_empty() {
                "none".to_string()
            } else {
                server.capabilities.join(", ")
            },
        ),
    ];
    if let Some(instructions) = &server.instructions {
        rows.push(("instructions".into(), first_line(instructions)));
    }
    table(out, &rows);
}

fn listing<T>(
    out: &mut String,
    title: &str,
    capability: &str,
    listing: &Listing<T>,
    step: Option<&Step>,
    row: impl Fn(&T) -> (String, String),
) {
    match listing {
        Listing::Listed { items, .. } => {
            let _ = writeln!(out, "\n{title}: {}{}", items.len(), timing(step));
            let rows: Vec<(String, String)> = items.iter().map(row).collect();
            table(out, &rows);
        }
        Listing::Absent => {
            let _ = writeln!(
                out,
                "\n{title}: absent (the server declares no {capability} capability)"
            );
        }
        Listing::Failed { error, .. } => {
            let _ = writeln!(out, "\n{title}: FAILED{}", timing(step));
            let _ = writeln!(out, "  {error}");
        }
        Listing::NotReached => {
            let _ = writeln!(out, "\n{title}: not reached");
        }
    }
}

/// What `--ignore-tool` / `--allow-tool` hid from the tool listing above.
fn tool_filter(out: &mut String, report: &Report) {
    let Some(filter) = &report.tool_filter else {
        return;
    };
    let mut given: Vec<String> = filter
        .ignore
        .iter()
        .map(|p| format!("--ignore-tool {p}"))
        .collect();
    given.extend(filter.allow.iter().map(|p| format!("--allow-tool {p}")));
    let names = if filter.hidden.is_empty() {
        String::new()
    } else {
        format!(" ({})", filter.hidden.join(", "))
    };
    let _ = writeln!(
        out,
        "  hidden: {}{names} by {}",
        filter.hidden.len(),
        given.join(" ")
    );
}

fn steps(out: &mut String, report: &Report) {
    let _ = writeln!(out, "\nSteps");
    let mut rows: Vec<(String, String)> = report
        .steps
        .iter()
        .map(|s| {
            let mut text = format!("{:>6} ms", s.ms);
            if let Some(pages) = s.pages.filter(|p| *p > 1) {
                let _ = write!(text, "  ({pages} pages)");
            }
            if !s.ok {
                text.push_str("  FAILED");
            }
            (s.name.clone(), text)
        })
        .collect();
    rows.push(("total".into(), format!("{:>6} ms", report.total_ms)));
    table(out, &rows);
    let _ = match report.steps.iter().find(|s| !s.ok) {
        None if report.ok => writeln!(out, "\nResult: OK"),
        Some(failed) => writeln!(
            out,
            "\nResult: FAILED at {} (diagnosis on stderr)",
            failed.name
        ),
        None => writeln!(out, "\nResult: FAILED (diagnosis on stderr)"),
    };
}

fn step<'a>(report: &'a Report, name: &str) -> Option<&'a Step> {
    report.steps.iter().find(|s| s.name == name)
}

/// `  (tools/list 4 ms, 3 pages)` after a section title.
fn timing(step: Option<&Step>) -> String {
    match step {
        Some(s) => match s.pages.filter(|p| *p > 1) {
            Some(pages) => format!("  ({} {} ms, {pages} pages)", s.name, s.ms),
            None => format!("  ({} {} ms)", s.name, s.ms),
        },
        None => String::new(),
    }
}

/// Two columns, the first padded to the widest entry (up to [`MAX_NAME_WIDTH`]).
fn table(out: &mut String, rows: &[(String, String)]) {
    let width = rows
        .iter()
        .map(|(name, _)| name.chars().count())
        .filter(|w| *w <= MAX_NAME_WIDTH)
        .max()
        .unwrap_or(0);
    for (name, value) in rows {
        let line = format!("  {name:<width$}  {value}");
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

fn names(cert: &Certificate) -> String {
    if cert.sans.is_empty() {
        "none (no subjectAltName)".into()
    } else {
        cert.sans.join(", ")
    }
}

fn with_mime(name: &str, mime: Option<&str>) -> String {
    match mime {
        Some(mime) => format!("{name} ({mime})"),
        None => name.to_string(),
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The first non-empty line, cut to [`MAX_DESCRIPTION`] characters.
pub fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if line.chars().count() > MAX_DESCRIPTION {
        let cut: String = line.chars().take(MAX_DESCRIPTION - 1).collect();
        format!("{}…", cut.trim_end())
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::report::{Server, Tool, Transport};

    fn report() -> Report {
        Report {
            url: "https://127.0.0.1:1/mcp".into(),
            ok: true,
            error: None,
            tls: Tls::NotUsed,
            transport: Transport {
                name: "Streamable HTTP".into(),
                strategy: "http-first".into(),
                fell_back: false,
                url: "https://127.0.0.1:1/mcp".into(),
            },
            server: Some(Server {
                name: "srv".into(),
                version: "1.0".into(),
                title: None,
                protocol_version: "2025-11-25".into(),
                capabilities: vec!["tools".into()],
                instructions: None,
            }),
            tool_filter: None,
            authorization: None,
            tools: Listing::Listed {
                items: vec![
                    Tool {
                        name: "echo".into(),
                        title: None,
                        description: Some("\nReturns its text\nand more".into()),
                    },
                    Tool {
                        name: "a-much-longer-tool-name".into(),
                        title: None,
                        description: None,
                    },
                ],
                pages: 2,
                ms: 7,
            },
            resources: Listing::Absent,
            resource_templates: Listing::Absent,
            prompts: Listing::Absent,
            steps: vec![
                Step {
                    name: "initialize".into(),
                    ms: 12,
                    ok: true,
                    pages: None,
                },
                Step {
                    name: "tools/list".into(),
                    ms: 7,
                    ok: true,
                    pages: Some(2),
                },
            ],
            total_ms: 20,
        }
    }

    #[test]
    fn tools_show_their_first_description_line_aligned() {
        let text = human(&report());
        assert!(
            text.contains("\nTools: 2  (tools/list 7 ms, 2 pages)\n"),
            "{text}"
        );
        assert!(
            text.contains("\n  echo                     Returns its text\n"),
            "{text}"
        );
        assert!(text.contains("\n  a-much-longer-tool-name\n"), "{text}");
    }

    #[test]
    fn absent_capabilities_are_said_to_be_absent() {
        let text = human(&report());
        assert!(
            text.contains("Prompts: absent (the server declares no prompts capability)"),
            "{text}"
        );
    }

    #[test]
    fn every_step_has_its_time_and_the_result_is_last() {
        let text = human(&report());
        assert!(text.contains("\n  initialize      12 ms\n"), "{text}");
        assert!(
            text.contains("\n  tools/list       7 ms  (2 pages)\n"),
            "{text}"
        );
        assert!(text.ends_with("\nResult: OK\n"), "{text}");
        assert!(text.contains("\nServer  (initialize 12 ms)\n"), "{text}");
    }

    #[test]
    fn a_failed_step_is_named_in_the_result() {
        let mut r = report();
        r.ok = false;
        r.steps[1].ok = false;
        r.tools = Listing::Failed {
            error: "HTTP 500 from server".into(),
            ms: 7,
        };
        let text = human(&r);
        assert!(text.contains("Tools: FAILED"), "{text}");
        assert!(text.contains("  HTTP 500 from server"), "{text}");
        assert!(text.ends_with("Result: FAILED at tools/list (diagnosis on stderr)\n"));
    }

    #[test]
    fn long_descriptions_are_cut_to_one_line() {
        let long = "x".repeat(300);
        let cut = first_line(&long);
        assert_eq!(cut.chars().count(), MAX_DESCRIPTION);
        assert!(cut.ends_with('…'));
        assert_eq!(first_line("  \n first \n second"), "first");
    }
}
