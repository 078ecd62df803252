//! The identity selector of `--tls-cert` / `MCP_REMOTE_TLS_CERT` (issue 21): one form for every
//! place that holds several certificates with their keys.
//!
//! ```text
//! windows:user;sha1=8f3a…          the Windows store CurrentUser\My (machine: LocalMachine\My)
//! keychain:login;subject=CN=alice  the macOS login keychain (system: the System keychain)
//! pkcs11:token=mcp                 a PKCS#11 token: certificate and key both on it (RFC 7512)
//! auto                             this platform's store; on Linux the tokens of the module
//! ```
//!
//! `ATTR=VALUE` filters are `sha1` (the thumbprint as Windows shows it; spaces, colons and the
//! invisible marks certmgr copies are ignored, any case), `sha256`, `subject` and `issuer` (a
//! case-insensitive substring of the RFC 4514 name). A selector that still matches several
//! identities leaves the choice to the server's CertificateRequest (`tls::store::choose`).
//!
//! Pure: nothing here touches the file system or a store; `cli` decides what is a path first.

use std::fmt;

use super::pkcs11_uri::{ObjectType, Pkcs11Uri};

/// Where a selector looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// The Windows certificate store: `user` (CurrentUser\My) or `machine` (LocalMachine\My).
    Windows(String),
    /// The macOS Keychain: `login` or `system`.
    Keychain(String),
    /// Certificates on PKCS#11 tokens, narrowed by the URI (`pkcs11:` alone: every token).
    Pkcs11(Box<Pkcs11Uri>),
}

/// One attribute filter of a `windows:` or `keychain:` selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// SHA-1 of the certificate (the Windows thumbprint), 20 bytes.
    Sha1(Vec<u8>),
    /// SHA-256 of the certificate, 32 bytes.
    Sha256(Vec<u8>),
    /// Lower-cased substring of the subject's RFC 4514 name.
    Subject(String),
    /// Lower-cased substring of the issuer's RFC 4514 name.
    Issuer(String),
}

/// A parsed selector: the source and the filters that narrow it.
#[derive(Clone, PartialEq, Eq)]
pub struct Selector {
    pub source: SourceKind,
    pub filters: Vec<Filter>,
    /// As given (`auto` stays `auto`; a `pin-value` is redacted): what messages show.
    shown: String,
}

impl Selector {
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Whether this is `auto`, resolved to the platform's store.
    pub fn is_auto(&self) -> bool {
        self.shown == "auto"
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Selector").field(&self.shown).finish()
    }
}

/// The platform a selector is read for: which stores exist, and what `auto` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Windows,
    MacOs,
    /// Linux and every other Unix: PKCS#11 tokens only.
    Unix,
}

impl Platform {
    pub const fn current() -> Platform {
        if cfg!(windows) {
            Platform::Windows
        } else if cfg!(target_os = "macos") {
            Platform::MacOs
        } else {
            Platform::Unix
        }
    }
}

/// The forms a user can write, for the message that refuses an unknown one.
pub const FORMS: &str = "a file path, pkcs11:token=…, windows:user|machine;sha1=…, \
     keychain:login|system;subject=…, or auto";

/// What a `--tls-cert` value is, before it is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertValue {
    /// A file path (also `C:\…`, which has one letter before its colon).
    Path,
    /// `pkcs11:…`.
    Pkcs11,
    /// `windows:…`, `keychain:…` or `auto`.
    Store,
    /// `word:…` that is none of the above (and, the caller checks, not an existing file).
    Unknown,
}

/// Classifies a `--tls-cert` value by its form alone.
pub fn classify(value: &str) -> CertValue {
    if value == "auto" {
        return CertValue::Store;
    }
    let Some((word, _)) = value.split_once(':') else {
        return CertValue::Path;
    };
    let lower = word.to_ascii_lowercase();
    match lower.as_str() {
        "pkcs11" => CertValue::Pkcs11,
        "windows" | "keychain" => CertValue::Store,
        // `C:\certs\a.pem` and `./a:b.pem` are paths: a scheme is 2+ letters and nothing else.
        _ if word.len() >= 2 && word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => {
            CertValue::Unknown
        }
        _ => CertValue::Path,
    }
}

/// Why a selector was refused; Display is one line that says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorError(pub String);

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(msg: impl Into<String>) -> SelectorError {
    SelectorError(msg.into())
}

/// Parses a store selector (`windows:…`, `keychain:…`, `pkcs11:…` meaning certificate and key on
/// a token, or `auto`) for `platform`. `have_module`: a PKCS#11 module was given, which `auto`
/// needs on Unix.
pub fn parse(text: &str, platform: Platform, have_module: bool) -> Result<Selector, SelectorError> {
    if text == "auto" {
        let source = match platform {
            Platform::Windows => SourceKind::Windows("user".into()),
            Platform::MacOs => SourceKind::Keychain("login".into()),
            Platform::Unix if have_module => SourceKind::Pkcs11(Box::new(
                Pkcs11Uri::parse("pkcs11:").map_err(|e| err(e.to_string()))?,
            )),
            Platform::Unix => {
                return Err(err(
                    "auto here means the certificates on the PKCS#11 tokens of a module: give \
                     --tls-pkcs11-module (or MCP_REMOTE_TLS_PKCS11_MODULE), e.g. \
                     /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
                ))
            }
        };
        return Ok(Selector {
            source,
            filters: Vec::new(),
            shown: "auto".into(),
        });
    }
    let (word, rest) = text.split_once(':').unwrap_or((text, ""));
    match word.to_ascii_lowercase().as_str() {
        "pkcs11" => {
            let uri = Pkcs11Uri::parse(text).map_err(|e| err(e.to_string()))?;
            if uri.object_type.is_some_and(|t| t != ObjectType::Cert) {
                return Err(err(format!(
                    "{uri} names a type that is not a certificate: use type=cert or leave type out"
                )));
            }
            Ok(Selector {
                shown: uri.to_string(),
                source: SourceKind::Pkcs11(Box::new(uri)),
                filters: Vec::new(),
            })
        }
        "windows" => {
            if platform != Platform::Windows {
                return Err(err(format!(
                    "{text}: the Windows certificate store exists only on Windows; here use {}",
                    here(platform)
                )));
            }
            let (location, filters) = store_parts(text, rest, &["user", "machine"])?;
            Ok(Selector {
                source: SourceKind::Windows(location),
                filters,
                shown: text.to_string(),
            })
        }
        "keychain" => {
            if platform != Platform::MacOs {
                return Err(err(format!(
                    "{text}: the Keychain exists only on macOS; here use {}",
                    here(platform)
                )));
            }
            let (location, filters) = store_parts(text, rest, &["login", "system"])?;
            Ok(Selector {
                source: SourceKind::Keychain(location),
                filters,
                shown: text.to_string(),
            })
        }
        _ => Err(err(format!(
            "'{}' is not a form --tls-cert takes: use {FORMS}",
            shorten(text)
        ))),
    }
}

/// What the selectors of this platform are, for the message that refuses another platform's.
fn here(platform: Platform) -> &'static str {
    match platform {
        Platform::Windows => "windows:user;sha1=… (or auto), a pkcs11: URI, or files",
        Platform::MacOs => "keychain:login;subject=… (or auto), a pkcs11: URI, or files",
        Platform::Unix => {
            "a PKCS#11 token (--tls-cert pkcs11:token=… or auto, with --tls-pkcs11-module), or \
             files (--tls-cert/--tls-key, --tls-pfx)"
        }
    }
}

/// `LOCATION[;ATTR=VALUE]…` after `windows:` / `keychain:`.
fn store_parts(
    text: &str,
    rest: &str,
    locations: &[&str],
) -> Result<(String, Vec<Filter>), SelectorError> {
    let mut parts = rest.split(';');
    let location = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    if !locations.contains(&location.as_str()) {
        return Err(err(format!(
            "{}: the store must be {} (e.g. {}:{};sha1=…), not '{location}'",
            shorten(text),
            locations.join(" or "),
            text.split(':').next().unwrap_or_default(),
            locations[0],
        )));
    }
    let mut filters: Vec<Filter> = Vec::new();
    for part in parts {
        if part.trim().is_empty() {
            continue;
        }
        let filter = parse_filter(part)?;
        if filters
            .iter()
            .any(|f| std::mem::discriminant(f) == std::mem::discriminant(&filter))
        {
            return Err(err(format!(
                "{}: {} is given twice; give each attribute once",
                shorten(text),
                part.split('=').next().unwrap_or_default().trim()
            )));
        }
        filters.push(filter);
    }
    Ok((location, filters))
}

fn parse_filter(part: &str) -> Result<Filter, SelectorError> {
    let Some((name, value)) = part.split_once('=') else {
        return Err(err(format!(
            "'{}' is not ATTR=VALUE: the attributes are sha1, sha256, subject and issuer",
            shorten(part)
        )));
    };
    let name = name.trim().to_ascii_lowercase();
    match name.as_str() {
        "sha1" => fingerprint(value, 20, "sha1").map(Filter::Sha1),
        "sha256" => fingerprint(value, 32, "sha256").map(Filter::Sha256),
        "subject" | "issuer" => {
            let value = value.trim();
            if value.is_empty() {
                return Err(err(format!(
                    "{name}= is empty: give part of the name, e.g. {name}=CN=alice"
                )));
            }
            let lower = value.to_lowercase();
            Ok(if name == "subject" {
                Filter::Subject(lower)
            } else {
                Filter::Issuer(lower)
            })
        }
        _ => Err(err(format!(
            "'{}' is not an attribute of a store selector: use sha1, sha256, subject or issuer",
            shorten(&name)
        ))),
    }
}

/// Hex digits of a fingerprint, ignoring what copying one from certmgr or Keychain Access adds:
/// spaces, colons, and the invisible left-to-right mark certmgr puts in front.
fn fingerprint(value: &str, len: usize, name: &str) -> Result<Vec<u8>, SelectorError> {
    let digits: String = value
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, ':' | '\u{200e}' | '\u{200f}' | '\u{feff}'))
        .collect();
    let bad = || {
        err(format!(
            "{name}={} is not a {}-digit hex fingerprint{}",
            shorten(value.trim()),
            len * 2,
            if name == "sha1" {
                " (the thumbprint as certmgr shows it)"
            } else {
                ""
            }
        ))
    };
    if digits.len() != len * 2 || !digits.is_ascii() {
        return Err(bad());
    }
    (0..len)
        .map(|i| u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).map_err(|_| bad()))
        .collect()
}

/// At most 60 characters of a user's text, for messages (a pasted certificate stays readable).
fn shorten(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(text: &str) -> Result<Selector, SelectorError> {
        parse(text, Platform::Windows, false)
    }

    #[test]
    fn values_are_classified_by_their_form() {
        assert_eq!(classify("client.pem"), CertValue::Path);
        assert_eq!(classify("/etc/a:b.pem"), CertValue::Path);
        assert_eq!(classify(r"C:\certs\client.pem"), CertValue::Path);
        assert_eq!(classify("pkcs11:token=mcp"), CertValue::Pkcs11);
        assert_eq!(classify("PKCS11:token=mcp"), CertValue::Pkcs11);
        assert_eq!(classify("windows:user"), CertValue::Store);
        assert_eq!(classify("keychain:login"), CertValue::Store);
        assert_eq!(classify("auto"), CertValue::Store);
        assert_eq!(classify("cng:user"), CertValue::Unknown);
        assert_eq!(classify("file:client.pem"), CertValue::Unknown);
        assert_eq!(classify("./x:y"), CertValue::Path);
    }

    #[test]
    fn windows_selectors_take_thumbprints_as_certmgr_shows_them() {
        let s = windows(
            "windows:user;sha1=\u{200e}8f 3a 00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 01 02",
        )
        .unwrap();
        assert_eq!(s.source, SourceKind::Windows("user".into()));
        assert_eq!(s.filters.len(), 1);
        let Filter::Sha1(bytes) = &s.filters[0] else {
            panic!("{s:?}")
        };
        assert_eq!(bytes[0], 0x8f);
        assert_eq!(bytes.len(), 20);
        let s = windows("windows:Machine;subject=CN=Alice;issuer=Corp CA").unwrap();
        assert_eq!(s.source, SourceKind::Windows("machine".into()));
        assert_eq!(
            s.filters,
            vec![
                Filter::Subject("cn=alice".into()),
                Filter::Issuer("corp ca".into())
            ]
        );
        assert_eq!(s.shown(), "windows:Machine;subject=CN=Alice;issuer=Corp CA");
    }

    #[test]
    fn store_selectors_refuse_what_they_cannot_mean() {
        for (text, says) in [
            ("windows:users", "the store must be user or machine"),
            ("windows:user;sha1=12", "not a 40-digit hex fingerprint"),
            ("windows:user;sha256=zz", "not a 64-digit hex fingerprint"),
            (
                "windows:user;serial=1",
                "not an attribute of a store selector",
            ),
            ("windows:user;subject=", "subject= is empty"),
            ("windows:user;cn", "is not ATTR=VALUE"),
            ("windows:user;subject=a;subject=b", "subject is given twice"),
            ("webdav:x", "is not a form --tls-cert takes"),
        ] {
            let e = windows(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn another_platforms_store_is_refused_with_what_to_use_here() {
        let e = parse("windows:user;sha1=00", Platform::Unix, true).unwrap_err();
        assert!(e.0.contains("only on Windows"), "{e}");
        assert!(e.0.contains("pkcs11:token="), "{e}");
        let e = parse("keychain:login", Platform::Windows, false).unwrap_err();
        assert!(e.0.contains("only on macOS"), "{e}");
        assert!(e.0.contains("windows:user"), "{e}");
        let s = parse("keychain:System;sha256=", Platform::MacOs, false);
        assert!(s.is_err());
        let s = parse("keychain:system", Platform::MacOs, false).unwrap();
        assert_eq!(s.source, SourceKind::Keychain("system".into()));
    }

    #[test]
    fn auto_is_the_platforms_store() {
        let s = parse("auto", Platform::Windows, false).unwrap();
        assert_eq!(s.source, SourceKind::Windows("user".into()));
        assert!(s.is_auto());
        let s = parse("auto", Platform::MacOs, false).unwrap();
        assert_eq!(s.source, SourceKind::Keychain("login".into()));
        let s = parse("auto", Platform::Unix, true).unwrap();
        assert!(matches!(s.source, SourceKind::Pkcs11(_)));
        assert_eq!(s.to_string(), "auto");
        let e = parse("auto", Platform::Unix, false).unwrap_err();
        assert!(e.0.contains("--tls-pkcs11-module"), "{e}");
    }

    #[test]
    fn a_token_selector_is_an_rfc7512_uri_of_certificates() {
        let s = parse("pkcs11:token=mcp;object=client-rsa", Platform::Unix, true).unwrap();
        let SourceKind::Pkcs11(uri) = &s.source else {
            panic!("{s:?}")
        };
        assert_eq!(uri.token.as_deref(), Some("mcp"));
        let e = parse("pkcs11:token=mcp;type=private", Platform::Unix, true).unwrap_err();
        assert!(e.0.contains("not a certificate"), "{e}");
        let e = parse("pkcs11:token=mcp;sha1=00", Platform::Unix, true).unwrap_err();
        assert!(!e.0.is_empty());
        let s = parse("pkcs11:token=mcp?pin-value=1234", Platform::Unix, true).unwrap();
        assert!(!s.to_string().contains("1234"), "{s}");
    }

    proptest::proptest! {
        #[test]
        fn the_parser_never_panics(text in "\\PC{0,80}", unix in proptest::bool::ANY) {
            let platform = if unix { Platform::Unix } else { Platform::Windows };
            let _ = classify(&text);
            let _ = parse(&text, platform, unix);
            let _ = parse(&format!("windows:user;{text}"), Platform::Windows, false);
            let _ = parse(&format!("keychain:login;sha1={text}"), Platform::MacOs, false);
        }
    }
}
