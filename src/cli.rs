//! Command line and environment → one validated [`Config`]. This is the only place that reads argv
//! or `MCP_REMOTE_*` variables; every rule of the original product's "Parameter rules" lives here.
//!
//! Usage errors are one line that names the flag and points at `--help`; the binaries exit 2 on them.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{
    classify_cert_value, parse_selector, CertValue, ObjectType, Pkcs11Uri, Platform, SourceKind,
    StoreIdentity, SELECTOR_FORMS,
};
use crate::config::{
    ClientIdentity, Config, Pkcs11Identity, ProxySetting, Secret, SpkiPin, TlsOptions, TlsVersion,
    TokenCertSource, ToolPatterns, TransportStrategy, Url,
};
use crate::http::is_tchar;

mod oauth;
pub use oauth::DEFAULT_LOGIN_WAIT;

/// Which binary is parsing: the test client accepts a few extra flags (`--json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    Proxy,
    Client,
}

impl Program {
    pub fn name(self) -> &'static str {
        match self {
            Program::Proxy => "mcp-secure-remote",
            Program::Client => "mcp-secure-remote-client",
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Run(Box<Invocation>),
    /// `mcp-secure-remote login <server-url> [flags]`: run the OAuth login once and keep it.
    Login(Box<Invocation>),
    /// `mcp-secure-remote logout <server-url> [flags]`: revoke and forget the kept login.
    Logout(Box<Invocation>),
    /// `mcp-secure-remote-client --list-identities [server-url]`: what the `--tls-cert` selector's
    /// source holds (`auto` when none is given), and with a URL which of them that server takes.
    /// `url_given` false: `config.url` is a placeholder that nothing connects to.
    ListIdentities {
        invocation: Box<Invocation>,
        url_given: bool,
    },
    Help,
    Version,
}

/// A validated configuration plus what the parser has to say about it.
#[derive(Debug)]
pub struct Invocation {
    pub config: Config,
    /// Test client only: print one JSON document instead of the human layout.
    pub json: bool,
    /// Non-fatal findings (e.g. mTLS flags with an `http://` URL), to log once logging is set up.
    pub warnings: Vec<String>,
}

/// A command-line mistake. Display is the one-line message; the binaries exit 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (see --help)", self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

/// Environment variables that back the TLS flags (flag wins over variable).
pub const ENV_CERT: &str = "MCP_REMOTE_TLS_CERT";
pub const ENV_KEY: &str = "MCP_REMOTE_TLS_KEY";
pub const ENV_CA: &str = "MCP_REMOTE_TLS_CA";
pub const ENV_PFX: &str = "MCP_REMOTE_TLS_PFX";
pub const ENV_PASSPHRASE: &str = "MCP_REMOTE_TLS_PASSPHRASE";
pub const ENV_PKCS11_MODULE: &str = "MCP_REMOTE_TLS_PKCS11_MODULE";
pub const ENV_SERVERNAME: &str = "MCP_REMOTE_TLS_SERVERNAME";
pub const ENV_MIN_VERSION: &str = "MCP_REMOTE_TLS_MIN_VERSION";
pub const ENV_INSECURE: &str = "MCP_REMOTE_TLS_INSECURE";
pub const ENV_NO_COOKIES: &str = "MCP_REMOTE_NO_COOKIES";
pub const ENV_PROXY: &str = "MCP_REMOTE_PROXY";

pub const ENV_MAX_MESSAGE_SIZE: &str = "MCP_REMOTE_MAX_MESSAGE_SIZE";
pub const ENV_MEMORY_BUDGET: &str = "MCP_REMOTE_MEMORY_BUDGET";

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest single message (a stdin line, an SSE event, a JSON body): MCP results with
/// embedded images or files reach tens of MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 64 << 20;
/// All messages held at once (queued for stdout, being read from the server): four of the
/// largest, so that one large result never waits for another.
pub const DEFAULT_MEMORY_BUDGET: usize = 256 << 20;

/// Raw flag values before the environment fallbacks and the cross-flag rules are applied.
#[derive(Default)]
struct Flags {
    url: Option<String>,
    headers: Vec<String>,
    transport: Option<String>,
    allow_http: bool,
    debug: bool,
    json: bool,
    connect_timeout: Option<String>,
    max_message_size: Option<String>,
    memory_budget: Option<String>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca: Option<PathBuf>,
    pfx: Option<PathBuf>,
    passphrase: Option<String>,
    pkcs11_module: Option<PathBuf>,
    servername: Option<String>,
    min_version: Option<String>,
    insecure: bool,
    ignore_tools: Vec<String>,
    allow_tools: Vec<String>,
    no_cookies: bool,
    oauth: oauth::OAuthFlags,
    proxy: Option<String>,
    pins: Vec<String>,
    /// Test client only: `--list-identities`.
    list_identities: bool,
}

/// Parse `args` (without the program name) and the environment (`env` looks a variable up) into a
/// [`Command`]. `env` is a parameter so tests can pass a fake environment.
pub fn parse<I, E>(args: I, env: E, program: Program) -> Result<Command, UsageError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
    E: Fn(&str) -> Option<String>,
{
    let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // `login` / `logout` come first (no URL can be spelt that way).
    let subcommand = match args.first().and_then(|a| a.to_str()) {
        Some(word @ ("login" | "logout")) if program == Program::Proxy => {
            let word = word.to_string();
            args.remove(0);
            Some(word)
        }
        _ => None,
    };
    let flags = match read_flags(args, program)? {
        FlagsOrExit::Flags(f) => f,
        FlagsOrExit::Help => return Ok(Command::Help),
        FlagsOrExit::Version => return Ok(Command::Version),
    };
    if flags.list_identities {
        return list_identities(*flags, &env);
    }
    let invocation = Box::new(validate(*flags, &env)?);
    Ok(match subcommand.as_deref() {
        Some("login") => Command::Login(invocation),
        Some("logout") => Command::Logout(invocation),
        _ => Command::Run(invocation),
    })
}

enum FlagsOrExit {
    Flags(Box<Flags>),
    Help,
    Version,
}

fn read_flags<I>(args: I, program: Program) -> Result<FlagsOrExit, UsageError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    use lexopt::prelude::*;

    let mut flags = Flags::default();
    let mut parser = lexopt::Parser::from_args(args);
    loop {
        let arg = parser.next().map_err(lexopt_error)?;
        let Some(arg) = arg else { break };
        match arg {
            Short('h') | Long("help") => return Ok(FlagsOrExit::Help),
            Long("version") => return Ok(FlagsOrExit::Version),
            Long("header") => flags.headers.push(string_value(&mut parser, "--header")?),
            Long("transport") => flags.transport = Some(string_value(&mut parser, "--transport")?),
            Long("allow-http") => flags.allow_http = true,
            Long("debug") => flags.debug = true,
            Long("json") if program == Program::Client => flags.json = true,
            Long("list-identities") if program == Program::Client => flags.list_identities = true,
            Long("connect-timeout") => {
                flags.connect_timeout = Some(string_value(&mut parser, "--connect-timeout")?)
            }
            Long("max-message-size") => {
                flags.max_message_size = Some(string_value(&mut parser, "--max-message-size")?)
            }
            Long("memory-budget") => {
                flags.memory_budget = Some(string_value(&mut parser, "--memory-budget")?)
            }
            Long("tls-cert") => flags.cert = Some(path_value(&mut parser, "--tls-cert")?),
            Long("tls-key") => flags.key = Some(path_value(&mut parser, "--tls-key")?),
            Long("tls-ca") => flags.ca = Some(path_value(&mut parser, "--tls-ca")?),
            Long("tls-pfx") => flags.pfx = Some(path_value(&mut parser, "--tls-pfx")?),
            Long("tls-passphrase") => {
                flags.passphrase = Some(string_value(&mut parser, "--tls-passphrase")?)
            }
            Long("tls-pkcs11-module") => {
                flags.pkcs11_module = Some(path_value(&mut parser, "--tls-pkcs11-module")?)
            }
            Long("tls-servername") => {
                flags.servername = Some(string_value(&mut parser, "--tls-servername")?)
            }
            Long("tls-min-version") => {
                flags.min_version = Some(string_value(&mut parser, "--tls-min-version")?)
            }
            Long("tls-insecure-skip-verify") | Long("tls-no-verify") => flags.insecure = true,
            Long("ignore-tool") => flags
                .ignore_tools
                .push(tool_pattern(&mut parser, "--ignore-tool")?),
            Long("allow-tool") => flags
                .allow_tools
                .push(tool_pattern(&mut parser, "--allow-tool")?),
            Long("no-cookies") => flags.no_cookies = true,
            Long("proxy") => flags.proxy = Some(string_value(&mut parser, "--proxy")?),
            Long("tls-pin") => flags.pins.push(string_value(&mut parser, "--tls-pin")?),
            Value(v) if flags.url.is_none() => {
                let url = v
                    .into_string()
                    .map_err(|_| usage("<server-url> is not valid UTF-8"))?;
                flags.url = Some(url);
            }
            Value(v) => {
                return Err(usage(format!(
                    "unexpected argument '{}': only one <server-url> is allowed",
                    v.to_string_lossy()
                )))
            }
            Long(name) => {
                let name = name.to_string();
                if !flags.oauth.read(&name, &mut parser)? {
                    return Err(usage(format!("unknown flag --{name}")));
                }
            }
            Short(c) => return Err(usage(format!("unknown flag -{c}"))),
        }
    }
    Ok(FlagsOrExit::Flags(Box::new(flags)))
}

fn lexopt_error(e: lexopt::Error) -> UsageError {
    match e {
        lexopt::Error::UnexpectedValue { option, .. } => usage(format!("{option} takes no value")),
        lexopt::Error::MissingValue { option: Some(o) } => usage(format!("{o} needs a value")),
        other => usage(other.to_string()),
    }
}

fn string_value(parser: &mut lexopt::Parser, flag: &str) -> Result<String, UsageError> {
    let v = parser
        .value()
        .map_err(|_| usage(format!("{flag} needs a value")))?;
    v.into_string()
        .map_err(|_| usage(format!("{flag}: value is not valid UTF-8")))
}

/// A `--ignore-tool`/`--allow-tool` glob: not empty (it would match no tool name at all).
fn tool_pattern(parser: &mut lexopt::Parser, flag: &str) -> Result<String, UsageError> {
    let pattern = string_value(parser, flag)?;
    if pattern.trim().is_empty() {
        return Err(usage(format!(
            "{flag} needs a tool name or a glob with * (e.g. {flag} 'delete_*')"
        )));
    }
    Ok(pattern.trim().to_string())
}

fn path_value(parser: &mut lexopt::Parser, flag: &str) -> Result<PathBuf, UsageError> {
    let v = parser
        .value()
        .map_err(|_| usage(format!("{flag} needs a file path")))?;
    if v.is_empty() {
        return Err(usage(format!(
            "{flag} needs a file path, got an empty value"
        )));
    }
    Ok(PathBuf::from(v))
}

/// `--list-identities [server-url]`: the selector of `--tls-cert` (or its variable), `auto` when
/// none is given; key files and bundles are refused (they hold one identity, no store).
fn list_identities<E>(mut f: Flags, env: &E) -> Result<Command, UsageError>
where
    E: Fn(&str) -> Option<String>,
{
    let given = |flag: &Option<PathBuf>, var: &str| {
        flag.is_some() || env(var).is_some_and(|v| !v.is_empty())
    };
    if given(&f.key, ENV_KEY) || given(&f.pfx, ENV_PFX) {
        return Err(usage(
            "--list-identities lists what a store or token holds: give --tls-cert with a selector \
             (pkcs11:token=…, windows:user, keychain:login, auto) and no --tls-key or --tls-pfx",
        ));
    }
    if !given(&f.cert, ENV_CERT) {
        f.cert = Some(PathBuf::from("auto"));
    }
    let url_given = f.url.is_some();
    // Without a URL nothing connects; the placeholder only satisfies the configuration's type.
    f.url
        .get_or_insert_with(|| "https://127.0.0.1/".to_string());
    let invocation = validate(f, env)?;
    if !matches!(
        invocation.config.tls.identity,
        Some(ClientIdentity::Store(_))
    ) {
        return Err(usage(
            "--list-identities lists what a store or token holds: --tls-cert must be a selector \
             (pkcs11:token=…, windows:user, keychain:login, auto), not a file",
        ));
    }
    Ok(Command::ListIdentities {
        invocation: Box::new(invocation),
        url_given,
    })
}

/// Apply the environment fallbacks and every cross-flag rule.
fn validate<E>(f: Flags, env: &E) -> Result<Invocation, UsageError>
where
    E: Fn(&str) -> Option<String>,
{
    // Empty variables count as unset: agents often write `"MCP_REMOTE_TLS_CA": ""` in templates.
    let var = |name: &str| env(name).filter(|v| !v.is_empty());
    let var_path = |name: &str| var(name).map(PathBuf::from);

    let raw_url = f.url.ok_or_else(|| {
        usage("missing <server-url>, e.g. mcp-secure-remote https://mcp.example.com/mcp")
    })?;
    let url = parse_url(&raw_url)?;

    let transport = match f.transport.as_deref() {
        None => TransportStrategy::HttpFirst,
        Some(s) => TransportStrategy::parse(s).ok_or_else(|| {
            usage(format!(
                "--transport: '{s}' is not one of {}",
                TransportStrategy::NAMES.join(", ")
            ))
        })?,
    };

    let min_version = match (f.min_version, var(ENV_MIN_VERSION)) {
        (Some(s), _) => Some(parse_tls_version(&s, "--tls-min-version")?),
        (None, Some(s)) => Some(parse_tls_version(&s, ENV_MIN_VERSION)?),
        (None, None) => None,
    };

    let insecure = f.insecure
        || match env(ENV_INSECURE) {
            None => false,
            Some(v) => parse_bool_env(&v).ok_or_else(|| {
                usage(format!(
                    "{ENV_INSECURE}: '{v}' is not a boolean (use 1/true/yes or 0/false/no)"
                ))
            })?,
        };

    let no_cookies = f.no_cookies
        || match env(ENV_NO_COOKIES) {
            None => false,
            Some(v) => parse_bool_env(&v).ok_or_else(|| {
                usage(format!(
                    "{ENV_NO_COOKIES}: '{v}' is not a boolean (use 1/true/yes or 0/false/no)"
                ))
            })?,
        };

    let mut warnings = Vec::new();
    let identity = client_identity(
        IdentityFlags {
            cert: f.cert.or_else(|| var_path(ENV_CERT)),
            key: f.key.or_else(|| var_path(ENV_KEY)),
            pfx: f.pfx.or_else(|| var_path(ENV_PFX)),
            passphrase: f
                .passphrase
                .or_else(|| var(ENV_PASSPHRASE))
                .map(Secret::new),
            module: f.pkcs11_module.or_else(|| var_path(ENV_PKCS11_MODULE)),
        },
        &mut warnings,
    )?;
    let tls = TlsOptions {
        identity,
        ca: f.ca.or_else(|| var_path(ENV_CA)),
        servername: match (f.servername, var(ENV_SERVERNAME)) {
            (Some(name), _) => Some(validate_servername(&name, "--tls-servername")?),
            (None, Some(name)) => Some(validate_servername(&name, ENV_SERVERNAME)?),
            (None, None) => None,
        },
        min_version,
        insecure_skip_verify: insecure,
        pins: f
            .pins
            .iter()
            .flat_map(|p| p.split(';')) // curl takes several pins in one value
            .map(|p| SpkiPin::parse(p).map_err(usage))
            .collect::<Result<_, _>>()?,
    };
    let proxy = match (f.proxy, var(ENV_PROXY)) {
        (Some(p), _) => ProxySetting::parse(&p, "--proxy").map_err(usage)?,
        (None, Some(p)) => ProxySetting::parse(&p, ENV_PROXY).map_err(usage)?,
        (None, None) => ProxySetting::FromEnvironment,
    };

    if !url.is_https() {
        if !f.allow_http {
            return Err(usage(format!(
                "refusing plain-HTTP URL {raw_url}: the client certificate is only sent over https:// \
                 (pass --allow-http to connect anyway)"
            )));
        }
        if tls.has_identity() {
            warnings.push(format!(
                "{raw_url} is plain HTTP: the client certificate from --tls-cert/--tls-pfx will NOT be sent"
            ));
        }
    }

    let headers = f
        .headers
        .iter()
        .map(|h| parse_header(h, env))
        .collect::<Result<Vec<_>, _>>()?;

    let connect_timeout = match f.connect_timeout {
        None => DEFAULT_CONNECT_TIMEOUT,
        Some(s) => parse_seconds(&s).ok_or_else(|| {
            usage(format!(
                "--connect-timeout: '{s}' is not a number of seconds > 0"
            ))
        })?,
    };

    let max_message = size_setting(
        f.max_message_size,
        env,
        "--max-message-size",
        ENV_MAX_MESSAGE_SIZE,
    )?;
    let memory_budget = size_setting(f.memory_budget, env, "--memory-budget", ENV_MEMORY_BUDGET)?;
    let (max_message, memory_budget) = match (max_message, memory_budget) {
        (Some((message, message_from)), Some((budget, budget_from))) if budget < message => {
            return Err(usage(format!(
                "{budget_from} ({budget} bytes) is smaller than {message_from} ({message} bytes): \
                 the budget must hold at least one message of the largest size"
            )))
        }
        (Some((message, _)), Some((budget, _))) => (message, budget),
        // Only the budget given: the largest message is whatever fits in it.
        (None, Some((budget, _))) => (DEFAULT_MAX_MESSAGE.min(budget), budget),
        (Some((message, _)), None) => (message, DEFAULT_MEMORY_BUDGET.max(message)),
        (None, None) => (DEFAULT_MAX_MESSAGE, DEFAULT_MEMORY_BUDGET),
    };

    let mut oauth = f
        .oauth
        .validate(env, f.allow_http, &headers, &mut warnings)?;
    oauth::with_tls_identity(&mut oauth, &tls)?;
    Ok(Invocation {
        config: Config {
            url,
            headers,
            transport,
            debug: f.debug,
            tls,
            connect_timeout,
            max_message,
            memory_budget,
            tools: ToolPatterns {
                ignore: f.ignore_tools,
                allow: f.allow_tools,
            },
            cookies: !no_cookies,
            oauth,
            proxy,
        },
        json: f.json,
        warnings,
    })
}

/// A byte size from its flag, else its variable (empty counts as unset), with where it came
/// from (for messages); None when neither is set.
fn size_setting(
    flag: Option<String>,
    env: &impl Fn(&str) -> Option<String>,
    flag_name: &str,
    var: &str,
) -> Result<Option<(usize, String)>, UsageError> {
    let (text, from) = match flag {
        Some(text) => (text, flag_name.to_string()),
        None => match env(var).filter(|v| !v.trim().is_empty()) {
            Some(text) => (text, var.to_string()),
            None => return Ok(None),
        },
    };
    let size = parse_size(&text).ok_or_else(|| {
        usage(format!(
            "{from}: '{text}' is not a size: give bytes, or a number with K, M or G (KiB, MiB, GiB), at least 1K"
        ))
    })?;
    Ok(Some((size, from)))
}

/// `4096`, `512K`, `64M`, `1G` (binary units, case-insensitive, an optional `iB`/`B`); at least
/// 1 KiB and at most 1 TiB.
pub fn parse_size(text: &str) -> Option<usize> {
    let t = text.trim().to_ascii_uppercase();
    let t = t
        .strip_suffix("IB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(&t);
    let (digits, shift) = match t.as_bytes().last()? {
        b'K' => (&t[..t.len() - 1], 10),
        b'M' => (&t[..t.len() - 1], 20),
        b'G' => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    let n: u64 = digits.trim().parse().ok()?;
    let bytes = n.checked_shl(shift).filter(|b| b >> shift == n)?;
    if !(1024..=1 << 40).contains(&bytes) {
        return None;
    }
    usize::try_from(bytes).ok()
}

/// The identity flags after their environment fallbacks, before the rules that combine them.
struct IdentityFlags {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    pfx: Option<PathBuf>,
    passphrase: Option<Secret>,
    module: Option<PathBuf>,
}

/// The one [`ClientIdentity`] the flags describe, or the usage error that says why they do not
/// fit together. `pkcs11:` values of `--tls-key`/`--tls-cert` are parsed here (RFC 7512).
fn client_identity(
    flags: IdentityFlags,
    warnings: &mut Vec<String>,
) -> Result<Option<ClientIdentity>, UsageError> {
    let IdentityFlags {
        cert,
        key,
        pfx,
        passphrase,
        module,
    } = flags;
    let as_uri = |value: &Option<PathBuf>| {
        value
            .as_ref()
            .and_then(|v| v.to_str())
            .filter(|v| crate::tls::is_pkcs11_uri(v))
            .map(str::to_string)
    };
    let key_uri = as_uri(&key);
    let cert_uri = as_uri(&cert);
    if pfx.is_some() && (cert.is_some() || key.is_some()) {
        return Err(usage(
            "--tls-pfx cannot be combined with --tls-cert/--tls-key (or their MCP_REMOTE_TLS_* variables): \
             use either a PKCS#12 bundle or a PEM certificate and key",
        ));
    }
    // A selector in --tls-cert (a `pkcs11:` URI with no --tls-key pkcs11: beside it is one).
    let cert_text = cert.as_ref().and_then(|c| c.to_str());
    let selector_text = match cert_text.map(|t| (t, classify_cert_value(t))) {
        Some((text, CertValue::Store)) => Some(text),
        Some((text, CertValue::Pkcs11)) if key_uri.is_none() && key.is_none() => Some(text),
        Some((text, CertValue::Unknown)) if !std::path::Path::new(text).exists() => {
            return Err(usage(format!(
                "--tls-cert: '{text}' is neither a file nor a form it takes: use {SELECTOR_FORMS}"
            )))
        }
        _ => None,
    };
    if let Some(text) = selector_text {
        if key.is_some() {
            return Err(usage(format!(
                "--tls-key cannot be given with --tls-cert {}: a selector picks a certificate and \
                 its key together, and the key stays where it is; leave --tls-key (and \
                 MCP_REMOTE_TLS_KEY) out",
                cert_text.unwrap_or_default()
            )));
        }
        let selector = parse_selector(text, Platform::current(), module.is_some())
            .map_err(|e| usage(format!("--tls-cert: {e}")))?;
        if module.is_some() && !matches!(selector.source, SourceKind::Pkcs11(_)) {
            warnings.push(format!(
                "--tls-pkcs11-module (or MCP_REMOTE_TLS_PKCS11_MODULE) is ignored: --tls-cert {selector} \
                 is not on a PKCS#11 token"
            ));
        }
        return Ok(Some(ClientIdentity::Store(Box::new(StoreIdentity {
            selector,
            module,
            pin: passphrase,
        }))));
    }
    if module.is_some() && key_uri.is_none() {
        warnings.push(
            "--tls-pkcs11-module (or MCP_REMOTE_TLS_PKCS11_MODULE) is ignored: it is only used \
             with --tls-key pkcs11:… or a --tls-cert pkcs11:…/auto selector"
                .to_string(),
        );
    }
    if let Some(text) = key_uri {
        let uri = parse_uri("--tls-key", &text)?;
        if uri.object_type.is_some_and(|t| t != ObjectType::Private) {
            return Err(usage(format!(
                "--tls-key {uri} names a type that is not a private key: use type=private \
                 or leave type out"
            )));
        }
        let cert = match (cert_uri, cert) {
            (Some(text), _) => {
                let cert = parse_uri("--tls-cert", &text)?;
                if cert.object_type.is_some_and(|t| t != ObjectType::Cert) {
                    return Err(usage(format!(
                        "--tls-cert {cert} names a type that is not a certificate: use type=cert \
                         or leave type out"
                    )));
                }
                TokenCertSource::Token(Box::new(cert))
            }
            (None, Some(path)) => TokenCertSource::File(path),
            (None, None) => TokenCertSource::BesideKey,
        };
        return Ok(Some(ClientIdentity::Pkcs11(Box::new(Pkcs11Identity {
            key: uri,
            cert,
            module,
            pin: passphrase,
        }))));
    }
    if cert_uri.is_some() {
        return Err(usage(
            "--tls-cert pkcs11:… cannot go with a key file in --tls-key: leave --tls-key out \
             (certificate and key both on the token) or give --tls-key pkcs11:…",
        ));
    }
    match (cert, key, pfx) {
        (_, _, Some(bundle)) => Ok(Some(ClientIdentity::Pkcs12 { bundle, passphrase })),
        (Some(cert), Some(key), None) => Ok(Some(ClientIdentity::PemFiles {
            cert,
            key,
            passphrase,
        })),
        (Some(_), None, None) => Err(usage(
            "--tls-cert needs --tls-key (or MCP_REMOTE_TLS_KEY): the certificate and its private key go together",
        )),
        (None, Some(_), None) => Err(usage(
            "--tls-key needs --tls-cert (or MCP_REMOTE_TLS_CERT): the private key and its certificate go together",
        )),
        (None, None, None) => Ok(None),
    }
}

fn parse_uri(flag: &str, text: &str) -> Result<Pkcs11Uri, UsageError> {
    Pkcs11Uri::parse(text).map_err(|e| usage(format!("{flag}: {e}")))
}

fn parse_tls_version(s: &str, source: &str) -> Result<TlsVersion, UsageError> {
    TlsVersion::parse(s)
        .ok_or_else(|| usage(format!("{source}: '{s}' is not one of TLSv1.2, TLSv1.3")))
}

/// `1/true/yes` (any case) are on; `0/false/no` and empty are off; anything else is a mistake.
fn parse_bool_env(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Some(true),
        "0" | "false" | "no" | "" => Some(false),
        _ => None,
    }
}

fn parse_seconds(s: &str) -> Option<Duration> {
    let secs: f64 = s.trim().parse().ok()?;
    (secs.is_finite() && secs > 0.0 && secs < 86_400.0).then(|| Duration::from_secs_f64(secs))
}

/// `source` is the flag or variable the name came from, so the message points at what to fix.
fn validate_servername(name: &str, source: &str) -> Result<String, UsageError> {
    let name = name.trim();
    if rustls::pki_types::ServerName::try_from(name).is_err() {
        return Err(usage(format!(
            "{source}: '{name}' is not a valid DNS name or IP address"
        )));
    }
    Ok(name.to_string())
}

/// Parse an absolute `http(s)://host[:port][/path][?query]` URL (see [`Url::parse`]).
pub fn parse_url(raw: &str) -> Result<Url, UsageError> {
    Url::parse(raw).map_err(|e| usage(format!("<server-url> '{raw}' is not a valid URL: {}", e.0)))
}

/// Parse `--header "Name: value"`, expanding `${VAR}` in the value from the environment.
fn parse_header<E>(raw: &str, env: &E) -> Result<(String, String), UsageError>
where
    E: Fn(&str) -> Option<String>,
{
    let (name, value) = raw.split_once(':').ok_or_else(|| {
        usage(format!(
            "--header '{}' must look like \"Name: value\"",
            redact_header(raw)
        ))
    })?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(usage(format!(
            "--header: '{name}' is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)"
        )));
    }
    if RESERVED_HEADERS
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name))
    {
        return Err(usage(format!(
            "--header: {name} is managed by the proxy itself and cannot be set"
        )));
    }
    let value = expand_env(value.trim(), env).map_err(|var| {
        usage(format!(
            "--header {name}: environment variable {var} is not set"
        ))
    })?;
    if value.contains(['\r', '\n', '\0']) {
        return Err(usage(format!(
            "--header {name}: the value contains a line break or NUL, which would inject headers"
        )));
    }
    Ok((name.to_string(), value))
}

/// Headers whose values the HTTP layer or the MCP transport owns; letting a user set them would
/// break framing or sessions.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "content-type",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
];

/// Expand `${VAR}` occurrences; returns the name of the first unset variable as the error.
fn expand_env<E>(value: &str, env: &E) -> Result<String, String>
where
    E: Fn(&str) -> Option<String>,
{
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        let val = env(name).ok_or_else(|| name.to_string())?;
        out.push_str(&val);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// For messages about a malformed `--header`: never echo what may be a secret value.
fn redact_header(raw: &str) -> String {
    if raw.len() > 24 {
        format!("{}…", &raw[..raw.floor_char_boundary_compat(24)])
    } else {
        raw.to_string()
    }
}

trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, index: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, mut index: usize) -> usize {
        while index > 0 && !self.is_char_boundary(index) {
            index -= 1;
        }
        index
    }
}

/// The `--help` text, grouped like the product's parameter tables.
pub fn help(program: Program) -> String {
    let name = program.name();
    let what = match program {
        Program::Proxy => "Bridge a stdio MCP client to a remote MCP server over HTTPS with a TLS client certificate.",
        Program::Client => "Connect to a remote MCP server like the proxy would, check the TLS handshake and list\nwhat the server offers (tools, resources, prompts).",
    };
    let subcommands = match program {
        Program::Proxy => "       {name} login <server-url> [options]    sign in once (OAuth), keep the tokens\n       {name} logout <server-url> [options]   revoke and forget them\n",
        Program::Client => "",
    }
    .replace("{name}", name);
    let client_flags = match program {
        Program::Proxy => "",
        Program::Client => "  --json                           Print one JSON document instead of the readable report\n  --list-identities                List the identities of the --tls-cert selector (default\n                                   auto) with the selector of each; with <server-url>, mark\n                                   those the server would accept (none is presented)\n",
    };
    format!(
        "{name} {version}
{what}

Usage: {name} <server-url> [options]
{subcommands}
Arguments:
  <server-url>                     Remote MCP endpoint, https://… (http:// only with --allow-http)

General:
  --header \"Name: value\"           Extra HTTP header on every request (repeatable); ${{VAR}} in the
                                   value is taken from the environment
  --transport <strategy>           http-first (default), sse-first, http-only or sse-only
  --allow-http                     Permit plain http:// URLs (the client certificate is not sent)
  --connect-timeout <seconds>      Timeout for each new connection [default: 10]
  --max-message-size <size>        Largest single message, either way [default: 64M]
                                   (env MCP_REMOTE_MAX_MESSAGE_SIZE; K, M, G suffixes)
  --memory-budget <size>           All messages held at once: beyond it the bridge
                                   stops reading the server until stdout drains
                                   [default: 256M] (env MCP_REMOTE_MEMORY_BUDGET)
  --no-cookies                     Do not keep or send cookies (kept in memory per
                                   origin by default, for load-balancer stickiness)
                                   (env MCP_REMOTE_NO_COOKIES=1/true/yes)
  --proxy <url|none>               HTTP CONNECT proxy for this server alone, overriding
                                   HTTPS_PROXY and NO_PROXY; none connects directly
                                   (env MCP_REMOTE_PROXY)
  --debug                          Verbose logging to stderr (secrets redacted)
{client_flags}  --version                        Print the version and exit
  -h, --help                       Print this help and exit

Tool filtering (globs: * matches anything, case-insensitive; repeatable):
  --ignore-tool <glob>             Hide matching tools from tools/list and refuse
                                   their tools/call (e.g. --ignore-tool 'delete_*')
  --allow-tool <glob>              Show and allow only matching tools; a tool matching
                                   both --allow-tool and --ignore-tool is hidden

Authorization (OAuth; on when the server asks for it):       Environment fallback:
  --oauth <auto|off>               off: never log in          MCP_REMOTE_OAUTH
                                   (also off with --header Authorization)
  --oauth-client-id <id>           Pre-registered client      MCP_REMOTE_OAUTH_CLIENT_ID
  --oauth-client-secret <secret>   Its secret (prefer the     MCP_REMOTE_OAUTH_CLIENT_SECRET
                                   variable)
  --oauth-client-metadata-url <url>  Client ID metadata       MCP_REMOTE_OAUTH_CLIENT_METADATA_URL
                                   document (https)
  --oauth-redirect-uri <uri>       Registered loopback        MCP_REMOTE_OAUTH_REDIRECT_URI
                                   redirect [default: http://127.0.0.1:<free port>/callback]
  --oauth-browser <cmd|none>       Opens the sign-in URL      MCP_REMOTE_OAUTH_BROWSER
                                   (URL appended) [default: system browser]
  --oauth-token-store <where>      auto, memory or file:PATH  MCP_REMOTE_OAUTH_TOKEN_STORE
                                   [default: auto = OS credential store]
  --oauth-login-wait <seconds>     How long a request waits   MCP_REMOTE_OAUTH_LOGIN_WAIT
                                   for the sign-in [default: 45]
  --oauth-dpop <auto|on|off>       DPoP-bound tokens where    MCP_REMOTE_OAUTH_DPOP
                                   the server offers them (auto: when the TLS key can
                                   prove possession, or nothing is shared)
  --oauth-dpop-key <process|tls>   The DPoP proof key         MCP_REMOTE_OAUTH_DPOP_KEY
                                   [default: the TLS key if it can sign, else per process]

Machine identity (no browser):
  --oauth-grant <grant>            authorization-code         MCP_REMOTE_OAUTH_GRANT
                                   (default), client-credentials, jwt-bearer, id-jag
  --oauth-client-auth <method>     client_secret_basic,       MCP_REMOTE_OAUTH_CLIENT_AUTH
                                   client_secret_post, private_key_jwt, tls_client_auth,
                                   self_signed_tls_client_auth, none
  --oauth-jwt-key <file|pkcs11:URI|tls>  Key that signs       MCP_REMOTE_OAUTH_JWT_KEY
                                   private_key_jwt (tls: the TLS client key, token too)
  --oauth-assertion-file <path>    Workload JWT for           MCP_REMOTE_OAUTH_ASSERTION_FILE
                                   jwt-bearer (read on each use)
  --oauth-idp-token-endpoint <url> Enterprise IdP (id-jag)    MCP_REMOTE_OAUTH_IDP_TOKEN_ENDPOINT
  --oauth-idp-client-id <id>       Client at the IdP          MCP_REMOTE_OAUTH_IDP_CLIENT_ID
                                   (its secret: MCP_REMOTE_OAUTH_IDP_CLIENT_SECRET)
  --oauth-idp-id-token-file <path> The user's ID token        MCP_REMOTE_OAUTH_IDP_ID_TOKEN_FILE

mTLS / TLS:                                                  Environment fallback:
  --tls-cert <path|selector>       PEM client certificate     MCP_REMOTE_TLS_CERT
                                   (leaf, then intermediates),
                                   a token object, or alone an
                                   identity in a store:
                                   pkcs11:token=…, windows:user
                                   [;sha1=…], keychain:login
                                   [;subject=…], or auto
  --tls-key <path|pkcs11:URI>      PEM private key for it,    MCP_REMOTE_TLS_KEY
                                   or an RFC 7512 URI of a
                                   key on a PKCS#11 token
  --tls-pkcs11-module <path>       The token's PKCS#11        MCP_REMOTE_TLS_PKCS11_MODULE
                                   module (.so/.dylib/.dll)
  --tls-ca <path>                  PEM CA bundle that         MCP_REMOTE_TLS_CA
                                   verifies the server
                                   (replaces the OS roots)
  --tls-pfx <path>                 PKCS#12 (.p12/.pfx) with   MCP_REMOTE_TLS_PFX
                                   certificate and key
  --tls-passphrase <value>         Passphrase of the key or   MCP_REMOTE_TLS_PASSPHRASE
                                   PKCS#12, or the token's
                                   PIN (prefer the variable)
  --tls-servername <name>          Name for SNI and server    MCP_REMOTE_TLS_SERVERNAME
                                   certificate check
                                   [default: URL host]
  --tls-min-version <ver>          TLSv1.2 or TLSv1.3         MCP_REMOTE_TLS_MIN_VERSION
                                   [default: TLSv1.2]
  --tls-insecure-skip-verify       Do not verify the server   MCP_REMOTE_TLS_INSECURE
  --tls-no-verify                  certificate. DEV ONLY      (1/true/yes)
  --tls-pin sha256//<base64>       Accept the server only if
                                   a certificate it sends has
                                   this key (SHA-256 of its
                                   SubjectPublicKeyInfo, as
                                   curl's --pinnedpubkey;
                                   repeatable)

Rules:
  --tls-cert and --tls-key go together; --tls-pfx excludes both.
  With --tls-key pkcs11:…, --tls-cert may be left out (the certificate beside the key is used).
  A --tls-cert selector takes no --tls-key; when it matches several identities, each handshake
  presents the one whose CA the server asks for (mcp-secure-remote-client --list-identities).
  A flag overrides its environment variable.
  Exit codes: 0 success, 1 runtime error, 2 usage error.
",
        version = env!("CARGO_PKG_VERSION"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes_and_refuse_nonsense() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("512K"), Some(512 << 10));
        assert_eq!(parse_size("64m"), Some(64 << 20));
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size(" 1G "), Some(1 << 30));
        for bad in [
            "",
            "M",
            "-1M",
            "1.5M",
            "12X",
            "100",
            "2000G",
            "99999999999999999999",
        ] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    fn env_none(_: &str) -> Option<String> {
        None
    }

    fn run(args: &[&str]) -> Result<Invocation, UsageError> {
        run_env(args, &env_none)
    }

    fn run_env(
        args: &[&str],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Invocation, UsageError> {
        match parse(args.iter().copied(), env, Program::Proxy)? {
            Command::Run(inv) => Ok(*inv),
            other => panic!("expected Run, got {other:?}"),
        }
    }

    #[test]
    fn the_dpop_key_is_process_or_tls_and_tls_needs_a_client_key() {
        let url = "https://h/mcp";
        let key = |args: &[&str]| run(args).map(|inv| inv.config.oauth.dpop_key);
        assert_eq!(key(&[url]).ok(), Some(crate::config::DpopKey::Auto));
        assert_eq!(
            key(&[url, "--oauth-dpop-key", "process"]).ok(),
            Some(crate::config::DpopKey::Process)
        );
        let env = |name: &str| (name == "MCP_REMOTE_OAUTH_DPOP_KEY").then(|| "tls".to_string());
        let tls = run_env(&[url], &env);
        assert!(tls.is_err_and(|e| e.0.contains("--oauth-dpop-key tls needs a TLS client key")));
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
        let (cert, tls_key) = (
            format!("{fixtures}/client-ec.crt"),
            format!("{fixtures}/client-ec.key"),
        );
        let with_key = [url, "--tls-cert", &cert, "--tls-key", &tls_key];
        assert_eq!(
            run_env(&with_key, &env)
                .map(|i| i.config.oauth.dpop_key)
                .ok(),
            Some(crate::config::DpopKey::Tls)
        );
        let bad = key(&[url, "--oauth-dpop-key", "hsm"]);
        assert!(bad.is_err_and(|e| e.0.contains("'hsm' is not one of process, tls")));
        let off = key(&[url, "--oauth-dpop", "off", "--oauth-dpop-key", "tls"]);
        assert!(off.is_err_and(|e| e.0.contains("--oauth-dpop off")));
    }

    #[test]
    fn a_token_jwt_key_takes_the_module_and_pin_of_the_tls_token_unless_its_uri_names_them() {
        use crate::config::JwtKeySource;
        let url = "https://h/mcp";
        let tls = [
            url,
            "--tls-key",
            "pkcs11:token=t;object=tls",
            "--tls-pkcs11-module",
            "/lib/tls-module.so",
            "--tls-passphrase",
            "1234",
        ];
        let jwt_key = |extra: &[&str]| {
            let args: Vec<&str> = tls.iter().chain(extra).copied().collect();
            match run(&args).map(|inv| inv.config.oauth.jwt_key) {
                Ok(Some(JwtKeySource::Pkcs11(token))) => *token,
                other => panic!("{extra:?}: {:?}", other.map(|_| ())),
            }
        };
        let inherited = jwt_key(&["--oauth-jwt-key", "pkcs11:token=t;object=jwt"]);
        assert_eq!(inherited.key.object.as_deref(), Some("jwt"));
        assert_eq!(inherited.module, Some(PathBuf::from("/lib/tls-module.so")));
        assert!(inherited.pin.is_some());
        let own = jwt_key(&[
            "--oauth-jwt-key",
            "pkcs11:token=u;object=jwt?module-path=/lib/other.so&pin-source=/run/pin",
        ]);
        assert_eq!(own.module, None);
        assert!(own.pin.is_none());
        let not_a_key = run(&[url, "--oauth-jwt-key", "pkcs11:token=t;object=c;type=cert"]);
        assert!(not_a_key.is_err_and(|e| e.0.contains("not a private key")));
    }

    #[test]
    fn parses_ipv6_url_with_port() {
        let u = parse_url("https://[::1]:8443/mcp?x=1#frag").unwrap();
        assert_eq!(u.host, "::1");
        assert_eq!(u.port, 8443);
        assert_eq!(u.path_and_query, "/mcp?x=1");
        assert_eq!(u.authority(), "[::1]:8443");
        assert_eq!(u.full, "https://[::1]:8443/mcp?x=1");
        assert_eq!(parse_url("HTTPS://H:443/a#f").unwrap().full, "https://h/a");
    }

    #[test]
    fn default_ports_and_root_path() {
        assert_eq!(parse_url("https://h").unwrap().port, 443);
        assert_eq!(parse_url("http://h?q").unwrap().path_and_query, "/?q");
        assert_eq!(parse_url("HTTPS://H:1/").unwrap().origin(), "https://h:1");
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "mcp.example.com",
            "ftp://x/",
            "https://",
            "https://u:p@h/",
            "https://h:0/",
            "https://h:99999/",
            "https://::1/",
            "https://h/a b",
        ] {
            assert!(parse_url(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn header_expands_env_and_refuses_unset() {
        let env = |n: &str| (n == "AUTH").then(|| "Bearer abc".to_string());
        let inv = run_env(&["https://h/", "--header", "Authorization:${AUTH}"], &env).unwrap();
        assert_eq!(
            inv.config.headers,
            vec![("Authorization".to_string(), "Bearer abc".to_string())]
        );
        let err = run_env(&["https://h/", "--header", "X: ${NOPE}"], &env).unwrap_err();
        assert!(err.0.contains("NOPE"), "{err}");
    }

    #[test]
    fn header_injection_is_refused() {
        // Only V is set: a value for every variable would trip the MCP_REMOTE_TLS_* checks first.
        let env = |n: &str| (n == "V").then(|| "a\r\nEvil: 1".to_string());
        let err = run_env(&["https://h/", "--header", "X: ${V}"], &env).unwrap_err();
        assert!(err.0.contains("line break"), "{err}");
        assert!(run(&["https://h/", "--header", "Bad Name: v"]).is_err());
        assert!(run(&["https://h/", "--header", "novalue"]).is_err());
        assert!(run(&["https://h/", "--header", "Host: x"]).is_err());
    }

    #[test]
    fn the_proxy_comes_from_the_flag_then_the_variable_then_the_environment() {
        let proxy = |args: &[&str], var: Option<&'static str>| {
            let env = move |n: &str| (n == ENV_PROXY).then(|| var.unwrap_or_default().to_string());
            run_env(args, &env).map(|i| i.config.proxy)
        };
        assert_eq!(
            proxy(&["https://h/"], None),
            Ok(ProxySetting::FromEnvironment)
        );
        assert_eq!(
            proxy(&["https://h/", "--proxy", "NONE"], Some("http://p:3128")),
            Ok(ProxySetting::Direct)
        );
        assert_eq!(
            proxy(&["https://h/"], Some("http://p:3128")),
            Ok(ProxySetting::Url("http://p:3128".into()))
        );
        let socks = proxy(&["https://h/", "--proxy", "socks5://u:pw@p:1080"], None).unwrap_err();
        assert!(
            socks.0.contains("SOCKS") && !socks.0.contains("pw"),
            "{}",
            socks.0
        );
        assert!(proxy(&["https://h/"], Some("ftp://p")).is_err());
    }

    #[test]
    fn pins_are_repeatable_and_take_curls_lists() {
        let a = "sha256//YhKJKSzoTt2b5FP18fvpHo7fJYqQCjAa3HWY3tvRMwE=";
        let b = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let joined = format!("{a};{b}");
        let pins = run(&["https://h/", "--tls-pin", &joined, "--tls-pin", a])
            .unwrap()
            .config
            .tls
            .pins;
        assert_eq!(pins.len(), 3);
        assert_eq!(pins[1].to_string(), b);
        assert!(run(&["https://h/", "--tls-pin", "sha1//abc"]).is_err());
    }

    #[test]
    fn insecure_env_values() {
        for (v, on) in [
            ("1", true),
            ("TRUE", true),
            ("Yes", true),
            ("0", false),
            ("no", false),
            ("", false),
        ] {
            let env = move |n: &str| (n == ENV_INSECURE).then(|| v.to_string());
            assert_eq!(
                run_env(&["https://h/"], &env)
                    .unwrap()
                    .config
                    .tls
                    .insecure_skip_verify,
                on,
                "{v}"
            );
        }
        let env = |n: &str| (n == ENV_INSECURE).then(|| "maybe".to_string());
        assert!(run_env(&["https://h/"], &env)
            .unwrap_err()
            .0
            .contains(ENV_INSECURE));
    }

    #[test]
    fn cookies_are_on_unless_the_flag_or_the_variable_says_no() {
        assert!(run(&["https://h/"]).unwrap().config.cookies);
        assert!(!run(&["https://h/", "--no-cookies"]).unwrap().config.cookies);
        for (v, on) in [("1", false), ("yes", false), ("false", true), ("", true)] {
            let env = move |n: &str| (n == ENV_NO_COOKIES).then(|| v.to_string());
            assert_eq!(
                run_env(&["https://h/"], &env).unwrap().config.cookies,
                on,
                "{v}"
            );
        }
        let env = |n: &str| (n == ENV_NO_COOKIES).then(|| "sometimes".to_string());
        let e = run_env(&["https://h/"], &env).unwrap_err().0;
        assert!(
            e.contains(ENV_NO_COOKIES) && e.contains("1/true/yes"),
            "{e}"
        );
    }

    #[test]
    fn tool_patterns_repeat_and_refuse_empty_ones() {
        let inv = run(&[
            "https://h/",
            "--ignore-tool",
            "a*",
            "--allow-tool",
            "b",
            "--ignore-tool",
            "c",
        ])
        .unwrap();
        assert_eq!(inv.config.tools.ignore, ["a*", "c"]);
        assert_eq!(inv.config.tools.allow, ["b"]);
        let e = run(&["https://h/", "--allow-tool", " "]).unwrap_err().0;
        assert!(e.contains("--allow-tool needs a tool name"), "{e}");
    }

    #[test]
    fn flag_overrides_env() {
        let env = |n: &str| match n {
            ENV_CA => Some("/env/ca.pem".to_string()),
            ENV_SERVERNAME => Some("env.example".to_string()),
            _ => None,
        };
        let inv = run_env(&["https://h/", "--tls-ca", "/flag/ca.pem"], &env).unwrap();
        assert_eq!(inv.config.tls.ca.unwrap(), PathBuf::from("/flag/ca.pem"));
        assert_eq!(inv.config.tls.servername.as_deref(), Some("env.example"));
    }

    #[test]
    fn each_identity_source_is_one_variant() {
        let identity = |args: &[&str]| {
            let mut all = vec!["https://h/"];
            all.extend_from_slice(args);
            run(&all).map(|inv| inv.config.tls.identity)
        };
        assert_eq!(identity(&[]).unwrap(), None);
        assert!(matches!(
            identity(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]).unwrap(),
            Some(ClientIdentity::PemFiles { .. })
        ));
        assert!(matches!(
            identity(&["--tls-pfx", "a.p12"]).unwrap(),
            Some(ClientIdentity::Pkcs12 { .. })
        ));
        let token = |args: &[&str]| match identity(args).unwrap() {
            Some(ClientIdentity::Pkcs11(token)) => *token,
            other => panic!("{other:?}"),
        };
        let t = token(&[
            "--tls-key",
            "pkcs11:token=mcp;object=client",
            "--tls-pkcs11-module",
            "/m.so",
            "--tls-passphrase",
            "1234",
        ]);
        assert_eq!(t.cert, TokenCertSource::BesideKey);
        assert_eq!(t.module, Some(PathBuf::from("/m.so")));
        assert_eq!(t.pin.as_ref().map(Secret::expose), Some("1234"));
        let t = token(&["--tls-key", "pkcs11:object=k", "--tls-cert", "c.pem"]);
        assert_eq!(t.cert, TokenCertSource::File(PathBuf::from("c.pem")));
        let t = token(&[
            "--tls-key",
            "pkcs11:object=k",
            "--tls-cert",
            "pkcs11:object=c",
        ]);
        assert!(matches!(t.cert, TokenCertSource::Token(_)));
        // The module from the environment.
        let env = |n: &str| (n == ENV_PKCS11_MODULE).then(|| "/env.so".to_string());
        let inv = run_env(&["https://h/", "--tls-key", "pkcs11:object=k"], &env).unwrap();
        match inv.config.tls.identity {
            Some(ClientIdentity::Pkcs11(t)) => assert_eq!(t.module, Some("/env.so".into())),
            other => panic!("{other:?}"),
        }
        // A selector alone in --tls-cert (or its variable): certificate and key in one source.
        let store = |args: &[&str], env: &dyn Fn(&str) -> Option<String>| {
            let mut all = vec!["https://h/"];
            all.extend_from_slice(args);
            match run_env(&all, env).unwrap().config.tls.identity {
                Some(ClientIdentity::Store(s)) => *s,
                other => panic!("{other:?}"),
            }
        };
        let s = store(
            &["--tls-cert", "pkcs11:token=mcp", "--tls-passphrase", "1"],
            &env,
        );
        assert!(matches!(
            s.selector.source,
            crate::config::SourceKind::Pkcs11(_)
        ));
        assert_eq!(s.module, Some("/env.so".into()));
        let s = store(&[], &|n: &str| match n {
            ENV_CERT => Some("auto".to_string()),
            ENV_PKCS11_MODULE => Some("/m.so".to_string()),
            _ => None,
        });
        assert!(s.selector.is_auto());
    }

    #[test]
    fn impossible_identity_combinations_are_usage_errors() {
        for (args, says) in [
            (
                &["--tls-cert", "pkcs11:object=c", "--tls-key", "k.pem"][..],
                "cannot go with a key file",
            ),
            (
                &["--tls-cert", "auto", "--tls-key", "k.pem"][..],
                "--tls-key cannot be given with --tls-cert auto",
            ),
            (
                &["--tls-cert", "cng:user;sha1=00"][..],
                "is neither a file nor a form it takes",
            ),
            (
                &["--tls-key", "pkcs11:object=k;type=cert"][..],
                "type=private",
            ),
            (
                &[
                    "--tls-key",
                    "pkcs11:object=k",
                    "--tls-cert",
                    "pkcs11:object=c;type=private",
                ][..],
                "type=cert",
            ),
            (
                &["--tls-key", "pkcs11:objekt=k"][..],
                "--tls-key: unknown attribute 'objekt'",
            ),
            (
                &["--tls-pfx", "a.p12", "--tls-key", "pkcs11:object=k"][..],
                "--tls-pfx cannot be combined",
            ),
            (&["--tls-key", "k.pem"][..], "--tls-key needs --tls-cert"),
        ] {
            let mut all = vec!["https://h/"];
            all.extend_from_slice(args);
            let err = run(&all).unwrap_err();
            assert!(err.0.contains(says), "{args:?}: {err}");
        }
        let inv = run(&["https://h/", "--tls-pkcs11-module", "/m.so"]).unwrap();
        assert!(inv.warnings.iter().any(|w| w.contains("is ignored")));
    }

    /// On Linux (and the other Unixes) the stores of Windows and macOS are refused in one line
    /// that says what to use here, and `auto` needs a PKCS#11 module.
    #[cfg(all(unix, not(target_os = "macos")))]
    #[test]
    fn other_platforms_stores_are_usage_errors_here() {
        for (args, says) in [
            (&["--tls-cert", "auto"][..], "--tls-pkcs11-module"),
            (
                &["--tls-cert", "windows:user;sha1=00"][..],
                "the Windows certificate store exists only on Windows; here use a PKCS#11 token",
            ),
            (&["--tls-cert", "keychain:login"][..], "only on macOS"),
        ] {
            let mut all = vec!["https://h/"];
            all.extend_from_slice(args);
            let err = run(&all).unwrap_err();
            assert!(err.0.contains(says), "{args:?}: {err}");
        }
    }

    #[test]
    fn pin_values_never_in_debug_output() {
        let inv = run(&[
            "https://h/",
            "--tls-key",
            "pkcs11:object=k?pin-value=9876",
            "--tls-passphrase",
            "s3cret-pin",
        ])
        .unwrap();
        let shown = format!("{:?}", inv.config);
        assert!(
            !shown.contains("9876") && !shown.contains("s3cret-pin"),
            "{shown}"
        );
    }

    #[test]
    fn passphrase_never_in_debug_output() {
        let inv = run(&[
            "https://h/",
            "--tls-pfx",
            "a.p12",
            "--tls-passphrase",
            "s3cret-xyz",
        ])
        .unwrap();
        assert!(!format!("{:?}", inv.config).contains("s3cret-xyz"));
    }
}
