//! A small tolerant PEM scanner for what `rustls-pki-types` does not handle: encrypted keys.
//!
//! pki-types' parser silently skips `ENCRYPTED PRIVATE KEY` sections and fails on the RFC 1421
//! headers (`Proc-Type`, `DEK-Info`) of legacy encrypted keys, so those are found here. Bodies are
//! re-wrapped at 64 columns and then decoded by the strict RFC 7468 decoder, which rejects other
//! line lengths that OpenSSL itself accepts.

use pkcs8::der::pem as strict_pem;

/// One `-----BEGIN label-----` … `-----END label-----` section.
#[derive(Debug)]
pub(crate) struct PemBlock<'a> {
    pub label: &'a str,
    /// RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`, `DEK-Info: …`) in file order.
    pub headers: Vec<(&'a str, &'a str)>,
    /// The base64 body with all whitespace removed.
    body: String,
}

impl PemBlock<'_> {
    /// The value of the header `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| *value)
    }

    /// The DER bytes of the body. The error is a short description for a user message.
    pub fn decode(&self) -> Result<Vec<u8>, String> {
        let mut rewrapped = format!("-----BEGIN {}-----\n", self.label);
        // The body is ASCII base64 once validated below, so slicing by bytes is safe; anything else
        // is reported rather than sliced.
        if !self.body.is_ascii() {
            return Err(format!(
                "non-ASCII characters in the {} section",
                self.label
            ));
        }
        for line in self.body.as_bytes().chunks(64) {
            rewrapped.push_str(&String::from_utf8_lossy(line));
            rewrapped.push('\n');
        }
        rewrapped.push_str(&format!("-----END {}-----\n", self.label));
        strict_pem::decode_vec(rewrapped.as_bytes())
            .map(|(_, der)| der)
            .map_err(|e| format!("bad base64 in the {} section: {e}", self.label))
    }
}

/// Every complete section in `text`, in order. Text outside sections (comments, `Bag Attributes`
/// written by `openssl pkcs12`) is ignored. A section without its END line is an error.
pub(crate) fn blocks(text: &str) -> Result<Vec<PemBlock<'_>>, String> {
    let mut found = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = begin_label(line) else {
            continue;
        };
        let end_line = format!("-----END {label}-----");
        let mut headers = Vec::new();
        let mut body = String::new();
        let mut in_headers = true;
        let mut closed = false;
        for line in lines.by_ref() {
            if line == end_line {
                closed = true;
                break;
            }
            if in_headers {
                if let Some((key, value)) = line.split_once(':') {
                    headers.push((key.trim(), value.trim()));
                    continue;
                }
                in_headers = false;
                if line.is_empty() {
                    continue;
                }
            }
            body.extend(line.chars().filter(|c| !c.is_whitespace()));
        }
        if !closed {
            return Err(format!("missing the line {end_line}"));
        }
        found.push(PemBlock {
            label,
            headers,
            body,
        });
    }
    Ok(found)
}

fn begin_label(line: &str) -> Option<&str> {
    line.strip_prefix("-----BEGIN ")?.strip_suffix("-----")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_headers_and_decodes_body_of_any_line_width() {
        // "hello world!" in base64 split at odd widths, with CRLF line ends and a header block.
        let text = "junk\r\n-----BEGIN THING-----\r\nProc-Type: 4,ENCRYPTED\r\n\
                    DEK-Info: AES-256-CBC,00\r\n\r\naGVsbG8g\r\nd29y bGQh\r\n-----END THING-----\r\n";
        let found = blocks(text).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].label, "THING");
        assert_eq!(found[0].header("proc-type"), Some("4,ENCRYPTED"));
        assert_eq!(found[0].header("DEK-Info"), Some("AES-256-CBC,00"));
        assert_eq!(found[0].decode().unwrap(), b"hello world!");
    }

    #[test]
    fn reports_a_section_without_its_end_line() {
        let err = blocks("-----BEGIN X-----\naGk=\n").unwrap_err();
        assert!(err.contains("-----END X-----"), "{err}");
    }

    #[test]
    fn reports_bad_base64() {
        let found = blocks("-----BEGIN X-----\n@@@@\n-----END X-----\n").unwrap();
        assert!(found[0].decode().unwrap_err().contains("base64"));
    }
}
