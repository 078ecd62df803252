//! RFC 7512 `pkcs11:` URIs, the convention of curl, OpenSSL, GnuTLS and p11-kit for naming an
//! object on a token: `pkcs11:token=mcp;object=client;type=private?module-path=/usr/lib/…`.
//!
//! Path attributes select the token and the object; query attributes say how to reach it (the
//! module, the PIN). Unknown standard-looking attributes are refused rather than ignored, so that
//! a typo (`lable=`) does not silently match a different object; vendor `x-` attributes are ignored.

use std::fmt;
use std::path::PathBuf;

use super::Secret;

/// The object classes the `type` attribute can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    Private,
    Public,
    Cert,
    SecretKey,
    Data,
}

impl ObjectType {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "private" => Some(Self::Private),
            "public" => Some(Self::Public),
            "cert" => Some(Self::Cert),
            "secret-key" => Some(Self::SecretKey),
            "data" => Some(Self::Data),
            _ => None,
        }
    }
}

/// A parsed `pkcs11:` URI. Every selector is optional: an absent one matches anything.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Pkcs11Uri {
    /// The URI as given, with a `pin-value` replaced by `<redacted>`: what messages show.
    shown: String,
    pub token: Option<String>,
    pub manufacturer: Option<String>,
    pub serial: Option<String>,
    pub model: Option<String>,
    pub slot_id: Option<u64>,
    pub slot_description: Option<String>,
    pub slot_manufacturer: Option<String>,
    pub library_manufacturer: Option<String>,
    pub library_description: Option<String>,
    /// The object's label (`CKA_LABEL`).
    pub object: Option<String>,
    /// The object's `CKA_ID`, raw bytes.
    pub id: Option<Vec<u8>>,
    pub object_type: Option<ObjectType>,
    /// A file holding the user PIN.
    pub pin_source: Option<PathBuf>,
    pub pin_value: Option<Secret>,
    pub module_path: Option<PathBuf>,
}

/// Why a string is not a usable `pkcs11:` URI; Display is one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriError(String);

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UriError {}

/// Whether a `--tls-key`/`--tls-cert` value names a token object rather than a file.
pub fn is_pkcs11_uri(value: &str) -> bool {
    value
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("pkcs11:"))
}

impl Pkcs11Uri {
    pub fn parse(text: &str) -> Result<Self, UriError> {
        if !is_pkcs11_uri(text) {
            return Err(UriError(format!("'{text}' does not start with pkcs11:")));
        }
        let rest = &text[7..];
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut uri = Pkcs11Uri::default();
        let mut shown = String::from("pkcs11:");
        shown.push_str(path);

        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, raw) = split_attr(attr)?;
            let value = || decode_text(name, raw);
            match name {
                "token" => set(&mut uri.token, name, value()?)?,
                "manufacturer" => set(&mut uri.manufacturer, name, value()?)?,
                "serial" => set(&mut uri.serial, name, value()?)?,
                "model" => set(&mut uri.model, name, value()?)?,
                "slot-description" => set(&mut uri.slot_description, name, value()?)?,
                "slot-manufacturer" => set(&mut uri.slot_manufacturer, name, value()?)?,
                "library-manufacturer" => set(&mut uri.library_manufacturer, name, value()?)?,
                "library-description" => set(&mut uri.library_description, name, value()?)?,
                // Any module version is accepted: the attribute only narrows, and we load one module.
                "library-version" => {}
                "object" => set(&mut uri.object, name, value()?)?,
                "id" => set(&mut uri.id, name, percent_decode(name, raw)?)?,
                "slot-id" => {
                    let text = value()?;
                    let id = text.parse::<u64>().map_err(|_| {
                        UriError(format!("slot-id={text} in the pkcs11: URI is not a number"))
                    })?;
                    set(&mut uri.slot_id, name, id)?
                }
                "type" => {
                    let text = value()?;
                    let kind = ObjectType::parse(&text).ok_or_else(|| {
                        UriError(format!(
                            "type={text} in the pkcs11: URI is not one of private, public, cert, \
                             secret-key, data"
                        ))
                    })?;
                    set(&mut uri.object_type, name, kind)?
                }
                vendor if vendor.starts_with("x-") => {}
                other => {
                    return Err(UriError(format!(
                        "unknown attribute '{other}' in the pkcs11: URI (path attributes: token, \
                         manufacturer, serial, model, object, id, type, slot-id, slot-description, \
                         slot-manufacturer, library-manufacturer, library-description, \
                         library-version)"
                    )))
                }
            }
        }

        if let Some(query) = query {
            let mut shown_query = Vec::new();
            for attr in query.split('&').filter(|a| !a.is_empty()) {
                let (name, raw) = split_attr(attr)?;
                match name {
                    "pin-value" => {
                        set(
                            &mut uri.pin_value,
                            name,
                            Secret::new(decode_text(name, raw)?),
                        )?;
                        shown_query.push("pin-value=<redacted>".to_string());
                        continue;
                    }
                    "pin-source" => {
                        let source = decode_text(name, raw)?;
                        // RFC 7512 allows a file: URI or a plain path.
                        let path = source.strip_prefix("file://").unwrap_or(&source);
                        set(&mut uri.pin_source, name, PathBuf::from(path))?
                    }
                    "module-path" => set(
                        &mut uri.module_path,
                        name,
                        PathBuf::from(decode_text(name, raw)?),
                    )?,
                    "module-name" => {
                        return Err(UriError(format!(
                            "module-name={} in the pkcs11: URI is not supported: give the module's \
                             file with module-path=… or --tls-pkcs11-module PATH",
                            decode_text(name, raw)?
                        )))
                    }
                    vendor if vendor.starts_with("x-") => {}
                    other => {
                        return Err(UriError(format!(
                            "unknown query attribute '{other}' in the pkcs11: URI (query \
                             attributes: module-path, pin-source, pin-value)"
                        )))
                    }
                }
                shown_query.push(attr.to_string());
            }
            if !shown_query.is_empty() {
                shown.push('?');
                shown.push_str(&shown_query.join("&"));
            }
        }
        uri.shown = shown;
        Ok(uri)
    }

    /// The URI as given, without a `pin-value`.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// A short description of the object for messages: `object 'client' (id 01)`.
    pub fn describe_object(&self) -> String {
        match (&self.object, &self.id) {
            (Some(label), Some(id)) => format!("object '{label}' (id {})", hex(id)),
            (Some(label), None) => format!("object '{label}'"),
            (None, Some(id)) => format!("the object with id {}", hex(id)),
            (None, None) => "any object".to_string(),
        }
    }
}

/// Shown in messages: the URI as given, without a `pin-value`.
impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// `--debug` shows the URI as given (without a `pin-value`), not every empty selector.
impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pkcs11Uri").field(&self.shown).finish()
    }
}

/// `01a2`-style bytes, as pkcs11-tool prints ids.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join("")
}

fn split_attr(attr: &str) -> Result<(&str, &str), UriError> {
    attr.split_once('=')
        .ok_or_else(|| UriError(format!("'{attr}' in the pkcs11: URI has no '=value'")))
}

fn set<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), UriError> {
    if slot.is_some() {
        return Err(UriError(format!(
            "the pkcs11: URI gives '{name}' twice; keep one"
        )));
    }
    *slot = Some(value);
    Ok(())
}

fn decode_text(name: &str, raw: &str) -> Result<String, UriError> {
    String::from_utf8(percent_decode(name, raw)?).map_err(|_| {
        UriError(format!(
            "{name}= in the pkcs11: URI is not UTF-8 once percent-decoded"
        ))
    })
}

fn percent_decode(name: &str, raw: &str) -> Result<Vec<u8>, UriError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let byte = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    UriError(format!(
                        "{name}= in the pkcs11: URI has a bad percent escape (expected %XX)"
                    ))
                })?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_rfc_examples_and_ours() {
        let uri = Pkcs11Uri::parse(
            "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;\
             model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=\
             ?pin-source=file:/etc/token_pin",
        )
        .unwrap();
        assert_eq!(uri.token.as_deref(), Some("The Software PKCS#11 Softtoken"));
        assert_eq!(uri.manufacturer.as_deref(), Some("Snake Oil, Inc."));
        assert_eq!(uri.object_type, Some(ObjectType::Cert));
        assert_eq!(
            uri.id.as_deref(),
            Some(&[0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91][..])
        );
        assert_eq!(uri.serial.as_deref(), Some(""));
        assert_eq!(uri.pin_source, Some(PathBuf::from("file:/etc/token_pin")));

        let uri = Pkcs11Uri::parse(
            "pkcs11:token=mcp;object=client;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so",
        )
        .unwrap();
        assert_eq!(uri.object.as_deref(), Some("client"));
        assert_eq!(
            uri.module_path,
            Some(PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"))
        );
        assert_eq!(uri.describe_object(), "object 'client'");
    }

    #[test]
    fn pin_value_never_shows() {
        let uri = Pkcs11Uri::parse("pkcs11:object=k?pin-value=12%334&module-path=/m.so").unwrap();
        assert_eq!(uri.pin_value.as_ref().map(Secret::expose), Some("1234"));
        let shown = format!("{uri} {uri:?}");
        assert!(
            !shown.contains("1234") && !shown.contains("12%334"),
            "{shown}"
        );
        assert!(shown.contains("pkcs11:object=k?pin-value=<redacted>&module-path=/m.so"));
    }

    #[test]
    fn mistakes_are_refused_with_the_reason() {
        for (text, says) in [
            ("pkcs11:lable=x", "unknown attribute 'lable'"),
            ("pkcs11:object=a;object=b", "'object' twice"),
            ("pkcs11:id=%zz", "bad percent escape"),
            ("pkcs11:type=key", "type=key"),
            ("pkcs11:object", "no '=value'"),
            ("pkcs11:slot-id=one", "not a number"),
            ("pkcs11:?module-name=softhsm2", "module-path"),
            ("pkcs11:?pin=1", "unknown query attribute 'pin'"),
            ("file:/x", "does not start with pkcs11:"),
        ] {
            let err = Pkcs11Uri::parse(text).unwrap_err().to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
        assert!(Pkcs11Uri::parse("pkcs11:x-vendor=1;object=a?x-q=2").is_ok());
        assert!(Pkcs11Uri::parse("PKCS11:object=a").is_ok());
        assert!(Pkcs11Uri::parse("pkcs11:").is_ok());
    }
}
