//! The README cannot drift from the binary: every JSON snippet parses, every flag and environment
//! variable of `--help` is documented in the README's tables, and every flag the tables document
//! exists in `--help`.

mod support;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

fn help() -> String {
    let out = support::command(env!("CARGO_BIN_EXE_mcp-secure-remote"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// The fenced code blocks of `lang` in `text`.
fn code_blocks<'a>(text: &'a str, lang: &str) -> Vec<&'a str> {
    let fence = format!("```{lang}\n");
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&fence) {
        let body = &rest[start + fence.len()..];
        let end = body.find("```").expect("unterminated code block");
        blocks.push(&body[..end]);
        rest = &body[end + 3..];
    }
    blocks
}

/// `--flag` names in a text.
fn flags(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for (i, _) in text.match_indices("--") {
        let name: String = text[i + 2..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '-')
            .collect();
        if name.len() > 2 && !name.ends_with('-') {
            out.insert(format!("--{name}"));
        }
    }
    out
}

#[test]
fn every_json_snippet_in_the_readme_parses() {
    let text = readme();
    let blocks = code_blocks(&text, "json");
    assert!(
        blocks.len() >= 10,
        "expected the agent configs, found {}",
        blocks.len()
    );
    for block in blocks {
        serde_json::from_str::<serde_json::Value>(block)
            .unwrap_or_else(|e| panic!("README JSON snippet does not parse ({e}):\n{block}"));
    }
}

#[test]
fn every_help_flag_and_variable_is_in_the_readme_tables_and_back() {
    let text = readme();
    let start = text.find("## CLI parameters").unwrap();
    let end = text.find("## AI agent / IDE integration").unwrap();
    let tables = &text[start..end];
    let help = help();
    let in_help = flags(&help);
    let in_tables = flags(tables);
    for flag in &in_help {
        assert!(
            tables.contains(&format!("`{flag}")),
            "{flag} from --help is not documented in the README tables"
        );
    }
    for flag in &in_tables {
        assert!(
            in_help.contains(flag),
            "README documents {flag}, which --help does not know"
        );
    }
    for var in help
        .split_whitespace()
        .filter(|w| w.starts_with("MCP_REMOTE_TLS_"))
    {
        assert!(
            tables.contains(&format!("`{var}`")),
            "{var} is not in the README's variable table"
        );
    }
}

#[test]
fn readme_starts_with_the_two_commands_that_work_on_a_fresh_clone() {
    let text = readme();
    let first_screen: String = text.lines().take(40).collect::<Vec<_>>().join("\n");
    assert!(first_screen.contains("make demo") && first_screen.contains("make test"));
}

/// The diagnoses of field failures, worded exactly as the bridge words them for
/// `https://mcp.example.com/mcp` with a client identity configured (the binary's own tests,
/// tests/field_tls.rs and tests/field_http.rs, show it reaching each one against real servers).
fn field_diagnoses() -> Vec<String> {
    use mcp_secure_remote::cli::{self, Command, Program};
    use mcp_secure_remote::http::diagnose::diagnose;
    use mcp_secure_remote::http::encoding::UnsupportedEncoding;
    use mcp_secure_remote::http::response::error_frame;
    use mcp_secure_remote::http::stage::{attach, Stage};
    use mcp_secure_remote::jsonrpc::Id;
    use rustls::{AlertDescription, CertificateError, ExtendedKeyPurpose, OtherError};
    use std::io;
    use std::sync::Arc;

    let args = [
        "https://mcp.example.com/mcp",
        "--tls-cert",
        "./client.crt",
        "--tls-key",
        "./client.key",
    ];
    let Ok(Command::Run(invocation)) = cli::parse(args, |_| None, Program::Proxy) else {
        panic!("the example command line parses");
    };
    let config = invocation.config;
    let io_error = |stage, tls12, e: io::Error| ureq::Error::Io(attach(stage, tls12, e));
    let tls = |stage, tls12, e: rustls::Error| {
        io_error(stage, tls12, io::Error::new(io::ErrorKind::InvalidData, e))
    };
    let certificate = |e| {
        tls(
            Stage::Handshake,
            false,
            rustls::Error::InvalidCertificate(e),
        )
    };
    let sha1_with_rsa = vec![
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00,
    ];
    let errors = [
        tls(
            Stage::FirstExchange,
            false,
            rustls::Error::AlertReceived(AlertDescription::UnknownCA),
        ),
        io_error(
            Stage::FirstExchange,
            false,
            io::ErrorKind::BrokenPipe.into(),
        ),
        io_error(Stage::Handshake, false, io::ErrorKind::UnexpectedEof.into()),
        io_error(
            Stage::Established,
            false,
            io::ErrorKind::UnexpectedEof.into(),
        ),
        certificate(CertificateError::Other(OtherError(Arc::new(
            mcp_secure_remote::tls::WeakServerKey { rsa_bits: 1024 },
        )))),
        certificate(CertificateError::UnsupportedSignatureAlgorithmContext {
            signature_algorithm_id: sha1_with_rsa,
            supported_algorithms: Vec::new(),
        }),
        certificate(CertificateError::InvalidPurposeContext {
            required: ExtendedKeyPurpose::ServerAuth,
            presented: vec![ExtendedKeyPurpose::ClientAuth],
        }),
        certificate(CertificateError::Other(OtherError(Arc::new(
            webpki::Error::CaUsedAsEndEntity,
        )))),
        tls(
            Stage::FirstExchange,
            true,
            rustls::Error::AlertReceived(AlertDescription::HandshakeFailure),
        ),
        tls(
            Stage::Handshake,
            false,
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        ),
        tls(
            Stage::ClientHello,
            false,
            rustls::Error::AlertReceived(AlertDescription::HandshakeFailure),
        ),
        ureq::Error::LargeResponseHeader(16 * 1024, 16 * 1024 - 1),
    ];
    let mut messages: Vec<String> = errors
        .iter()
        .map(|e| diagnose(e, &config).message)
        .collect();
    let frame = error_frame(
        &Id::Num(0),
        401,
        None,
        Some("Bearer realm=\"mcp\""),
        b"",
        false,
    );
    let frame: serde_json::Value = serde_json::from_slice(&frame).unwrap();
    messages.push(frame["error"]["message"].as_str().unwrap().to_string());
    messages.push(UnsupportedEncoding("br".into()).to_string());
    messages
        .push(mcp_secure_remote::http::late_certificate::post_handshake_message("mcp.example.com"));
    messages
}

#[test]
fn troubleshooting_quotes_the_field_diagnoses_exactly() {
    let text = readme();
    let start = text.find("## Troubleshooting").unwrap();
    let end = text.find("## Development").unwrap();
    let section = &text[start..end];
    for message in field_diagnoses() {
        assert!(
            section.contains(&format!("**`{message}`**")),
            "the README's Troubleshooting section does not quote, in bold code, the message:\n{message}"
        );
    }
}

#[test]
fn every_agent_config_shows_the_uvx_form_and_the_plain_binary_path() {
    let text = readme();
    let start = text.find("## AI agent / IDE integration").unwrap();
    let end = text.find("### Generic MCP client").unwrap();
    // Every subsection is an agent, but for the Windows path rules that all of them share.
    let agents: Vec<&str> = text[start..end]
        .split("\n### ")
        .skip(1)
        .filter(|section| !section.starts_with("Windows paths"))
        .collect();
    assert!(
        agents.len() >= 7,
        "expected the agent sections, found {}",
        agents.len()
    );
    for agent in agents {
        let name = agent.lines().next().unwrap_or_default();
        assert!(
            agent.contains("\"uvx\"") || agent.contains("-- uvx mcp-secure-remote"),
            "{name}: no uvx form (existing `uvx mcp-secure-remote` configs must keep working)"
        );
        assert!(
            agent.contains("/usr/local/bin/mcp-secure-remote"),
            "{name}: no plain binary path"
        );
    }
    assert!(text.contains("\n## Docker\n"), "the Docker section is gone");
}
