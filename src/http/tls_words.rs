//! The names people read in server logs and specifications for TLS things that libraries only
//! carry as numbers or enum variants: alerts (`unknown_ca`), signature algorithms (SHA-1 with RSA),
//! extended key usages (TLS client authentication). Diagnoses use these, never a `{:?}`.

use rustls::{AlertDescription, ExtendedKeyPurpose};
use x509_cert::der::asn1::ObjectIdentifier;

/// The alert's name as in the TLS registry (RFC 8446 §6): `unknown_ca`, `certificate_required`.
pub fn alert_name(alert: AlertDescription) -> String {
    let name = match u8::from(alert) {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        121 => "ech_required",
        other => return format!("number {other}"),
    };
    name.to_string()
}

/// Known signature algorithms, by OID, with the words for them.
const SIGNATURE_ALGORITHMS: &[(&str, &str)] = &[
    ("1.2.840.113549.1.1.4", "MD5 (md5WithRSAEncryption)"),
    ("1.2.840.113549.1.1.5", "SHA-1 (sha1WithRSAEncryption)"),
    ("1.2.840.10045.4.1", "SHA-1 (ecdsa-with-SHA1)"),
    ("1.2.840.10040.4.3", "SHA-1 (dsa-with-sha1)"),
    ("1.2.840.113549.1.1.11", "SHA-256 (sha256WithRSAEncryption)"),
    ("1.2.840.113549.1.1.12", "SHA-384 (sha384WithRSAEncryption)"),
    ("1.2.840.113549.1.1.13", "SHA-512 (sha512WithRSAEncryption)"),
    ("1.2.840.113549.1.1.10", "RSA-PSS"),
    ("1.2.840.10045.4.3.2", "SHA-256 (ecdsa-with-SHA256)"),
    ("1.2.840.10045.4.3.3", "SHA-384 (ecdsa-with-SHA384)"),
    ("1.2.840.10045.4.3.4", "SHA-512 (ecdsa-with-SHA512)"),
    ("1.3.101.112", "Ed25519"),
    ("1.3.101.113", "Ed448"),
];

/// Words for a signature algorithm given as webpki gives it: the DER content of an
/// AlgorithmIdentifier (the OID element, then any parameters). Falls back to the dotted OID.
pub fn signature_algorithm(id: &[u8]) -> String {
    let Some(oid) = leading_oid(id) else {
        return "an unrecognised algorithm".to_string();
    };
    let dotted = oid.to_string();
    SIGNATURE_ALGORITHMS
        .iter()
        .find(|(known, _)| *known == dotted)
        .map_or_else(|| format!("OID {dotted}"), |(_, words)| words.to_string())
}

/// The OID at the start of `der` (tag 6, a short length, the arcs).
fn leading_oid(der: &[u8]) -> Option<ObjectIdentifier> {
    match der {
        [0x06, len, rest @ ..] if usize::from(*len) <= rest.len() && *len < 0x80 => {
            ObjectIdentifier::from_bytes(&rest[..usize::from(*len)]).ok()
        }
        _ => None,
    }
}

/// `TLS server authentication`, `TLS client authentication`, or the dotted OID.
pub fn key_purpose(purpose: &ExtendedKeyPurpose) -> String {
    match purpose {
        ExtendedKeyPurpose::ServerAuth => "TLS server authentication".to_string(),
        ExtendedKeyPurpose::ClientAuth => "TLS client authentication".to_string(),
        ExtendedKeyPurpose::Other(arcs) => arcs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join("."),
        // The enum is non-exhaustive; a future purpose is at least named as such.
        #[allow(unreachable_patterns)]
        _ => "another purpose".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_have_their_registry_names() {
        assert_eq!(alert_name(AlertDescription::UnknownCA), "unknown_ca");
        assert_eq!(
            alert_name(AlertDescription::CertificateRequired),
            "certificate_required"
        );
        assert_eq!(
            alert_name(AlertDescription::BadCertificate),
            "bad_certificate"
        );
        assert_eq!(
            alert_name(AlertDescription::CertificateExpired),
            "certificate_expired"
        );
        assert_eq!(alert_name(AlertDescription::Unknown(200)), "number 200");
    }

    #[test]
    fn signature_algorithms_are_named_from_their_der() {
        // sha1WithRSAEncryption with NULL parameters, as in a certificate.
        let sha1_rsa = [
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00,
        ];
        assert_eq!(
            signature_algorithm(&sha1_rsa),
            "SHA-1 (sha1WithRSAEncryption)"
        );
        let odd = [0x06, 0x03, 0x2a, 0x03, 0x04];
        assert_eq!(signature_algorithm(&odd), "OID 1.2.3.4");
        assert_eq!(signature_algorithm(b"junk"), "an unrecognised algorithm");
    }

    #[test]
    fn key_purposes_are_words() {
        assert_eq!(
            key_purpose(&ExtendedKeyPurpose::ClientAuth),
            "TLS client authentication"
        );
        assert_eq!(
            key_purpose(&ExtendedKeyPurpose::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 4])),
            "1.3.6.1.5.5.7.3.4"
        );
    }
}
