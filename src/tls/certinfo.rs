//! Facts about an X.509 certificate (subject, issuer, SANs, validity) for display, and the
//! validity classification used to refuse expired client certificates and warn before expiry.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use x509_cert::der::{DateTime, Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

use super::TlsError;

/// How long before `not_after` a client certificate starts producing a warning.
pub const EXPIRY_WARNING_WINDOW: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// A summary of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// RFC 4514 form, most specific first: `CN=mcp-test-client-rsa,O=mcp-secure-remote tests`.
    pub subject: String,
    /// RFC 4514 form of the issuer's name.
    pub issuer: String,
    /// Subject alternative names as `DNS:localhost`, `IP:127.0.0.1`, `email:a@b`, `URI:…`.
    pub sans: Vec<String>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

/// Where `now` falls in a certificate's validity period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    NotYetValid,
    /// Valid, and more than [`EXPIRY_WARNING_WINDOW`] left.
    Valid,
    /// Valid, but expires within [`EXPIRY_WARNING_WINDOW`]; `remaining` is the time left.
    ExpiresSoon {
        remaining: Duration,
    },
    Expired,
}

/// Why the DER could not be summarised (a short phrase for [`TlsError::BadCertificate`]).
#[derive(Debug)]
pub struct CertParseError(String);

impl fmt::Display for CertParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl CertInfo {
    /// Summarises a DER-encoded certificate.
    pub fn from_der(der: &[u8]) -> Result<CertInfo, TlsError> {
        Self::parse(der).map_err(|e| TlsError::BadCertificate {
            origin: None,
            detail: e.0,
        })
    }

    /// Like [`CertInfo::from_der`] with a bare error, for callers that know which file it came from.
    pub(crate) fn parse(der: &[u8]) -> Result<CertInfo, CertParseError> {
        let cert = Certificate::from_der(der)
            .map_err(|e| CertParseError(format!("not an X.509 certificate: {e}")))?;
        let tbs = cert.tbs_certificate();
        let sans = match tbs.get_extension::<SubjectAltName>() {
            Ok(Some((_critical, san))) => san.0.iter().map(describe_general_name).collect(),
            Ok(None) => Vec::new(),
            Err(e) => return Err(CertParseError(format!("bad subjectAltName: {e}"))),
        };
        let validity = tbs.validity();
        Ok(CertInfo {
            subject: tbs.subject().to_string(),
            issuer: tbs.issuer().to_string(),
            sans,
            not_before: UNIX_EPOCH + validity.not_before.to_unix_duration(),
            not_after: UNIX_EPOCH + validity.not_after.to_unix_duration(),
        })
    }

    /// The DER `SubjectPublicKeyInfo` of a certificate of any X.509 version (v1 and v2 too, which
    /// webpki refuses but OpenSSL-based servers accept), to check that a key belongs to it.
    pub(crate) fn public_key_info(der: &[u8]) -> Result<Vec<u8>, CertParseError> {
        let cert = Certificate::from_der(der)
            .map_err(|e| CertParseError(format!("not an X.509 certificate: {e}")))?;
        cert.tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|e| CertParseError(format!("bad public key: {e}")))
    }

    /// Classifies `now` against the validity period. A pure function so that the 14-day warning can
    /// be tested without a certificate that is about to expire.
    pub fn validity_at(&self, now: SystemTime) -> Validity {
        if now < self.not_before {
            return Validity::NotYetValid;
        }
        match self.not_after.duration_since(now) {
            Err(_) => Validity::Expired,
            Ok(remaining) if remaining <= EXPIRY_WARNING_WINDOW => {
                Validity::ExpiresSoon { remaining }
            }
            Ok(_) => Validity::Valid,
        }
    }

    /// The first `CN=` value of the subject, when there is one.
    pub fn common_name(&self) -> Option<&str> {
        self.subject
            .split(',')
            .find_map(|rdn| rdn.trim().strip_prefix("CN="))
    }
}

impl fmt::Display for CertInfo {
    /// `CN=…,O=… (issued by CN=…, valid until 2126-11-01 13:34:41 UTC)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (issued by {}, valid until {})",
            self.subject,
            self.issuer,
            format_utc(self.not_after)
        )
    }
}

/// `2021-01-01 00:00:00 UTC`: how dates appear in messages.
pub fn format_utc(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    match DateTime::from_unix_duration(since_epoch) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minutes(),
            t.seconds()
        ),
        // Only past year 9999; say something rather than fail.
        Err(_) => format!("{} s after 1970-01-01 UTC", since_epoch.as_secs()),
    }
}

fn describe_general_name(name: &GeneralName) -> String {
    match name {
        GeneralName::DnsName(dns) => format!("DNS:{}", dns.as_str()),
        GeneralName::IpAddress(ip) => describe_ip(ip.as_bytes()),
        GeneralName::Rfc822Name(email) => format!("email:{}", email.as_str()),
        GeneralName::UniformResourceIdentifier(uri) => format!("URI:{}", uri.as_str()),
        GeneralName::DirectoryName(dn) => format!("DirName:{dn}"),
        GeneralName::RegisteredId(oid) => format!("RID:{oid}"),
        GeneralName::OtherName(other) => format!("othername:{}", other.type_id),
        GeneralName::EdiPartyName(_) => "EdiPartyName".to_string(),
    }
}

fn describe_ip(bytes: &[u8]) -> String {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        format!("IP:{}", Ipv4Addr::from(v4))
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        format!("IP:{}", Ipv6Addr::from(v6))
    } else {
        format!("IP:<{} bytes>", bytes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    fn info(pem: &str) -> CertInfo {
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        CertInfo::from_der(&der).unwrap()
    }

    fn sample(not_before: u64, not_after: u64) -> CertInfo {
        CertInfo {
            subject: "CN=x".into(),
            issuer: "CN=ca".into(),
            sans: vec![],
            not_before: UNIX_EPOCH + Duration::from_secs(not_before),
            not_after: UNIX_EPOCH + Duration::from_secs(not_after),
        }
    }

    #[test]
    fn classifies_validity_relative_to_now() {
        let start = 1_000 * DAY.as_secs();
        let end = 2_000 * DAY.as_secs();
        let cert = sample(start, end);
        let at = |secs: u64| cert.validity_at(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(start - 1), Validity::NotYetValid);
        assert_eq!(at(start), Validity::Valid);
        assert_eq!(at(end - 15 * DAY.as_secs()), Validity::Valid);
        assert_eq!(
            at(end - 14 * DAY.as_secs()),
            Validity::ExpiresSoon {
                remaining: 14 * DAY
            }
        );
        assert_eq!(
            at(end - 3 * DAY.as_secs()),
            Validity::ExpiresSoon { remaining: 3 * DAY }
        );
        assert_eq!(
            at(end),
            Validity::ExpiresSoon {
                remaining: Duration::ZERO
            }
        );
        assert_eq!(at(end + 1), Validity::Expired);
    }

    #[test]
    fn summarises_the_server_certificate() {
        let server = info(include_str!("../../fixtures/server.crt"));
        assert_eq!(server.subject, "CN=localhost,O=mcp-secure-remote tests");
        assert_eq!(
            server.issuer,
            "CN=mcp-secure-remote test CA,O=mcp-secure-remote tests"
        );
        assert_eq!(server.sans, ["DNS:localhost", "IP:127.0.0.1", "IP:::1"]);
        assert_eq!(server.common_name(), Some("localhost"));
        assert!(server.not_before < server.not_after);
    }

    #[test]
    fn reads_past_dates_of_the_expired_certificate() {
        let expired = info(include_str!("../../fixtures/client-expired.crt"));
        assert_eq!(format_utc(expired.not_before), "2020-01-01 00:00:00 UTC");
        assert_eq!(format_utc(expired.not_after), "2021-01-01 00:00:00 UTC");
        assert_eq!(expired.validity_at(SystemTime::now()), Validity::Expired);
        assert!(expired.sans.is_empty());
    }

    #[test]
    fn rejects_non_certificates() {
        assert!(CertInfo::from_der(b"not der").is_err());
    }
}
