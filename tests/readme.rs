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
