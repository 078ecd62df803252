//! A client certificate asked for after the handshake, which the bridge cannot answer.
//!
//! Apache with `SSLVerifyClient require` inside a `<Location>` or `<Directory>` (and IIS with
//! client certificates required for one path) asks for the certificate only once it has read the
//! request: with TLS 1.3 by post-handshake authentication, with TLS 1.2 by renegotiation. rustls
//! does neither, so Apache answers `403 … Cannot perform Post-Handshake Authentication` (TLS 1.3)
//! or the renegotiation fails (TLS 1.2). Both have one fix, on the server: require the certificate
//! for the whole virtual host, so that it is asked for in the handshake. Enabling TLS 1.3 does not
//! help: it only trades renegotiation for post-handshake authentication.

/// The server asked for the certificate by TLS 1.3 post-handshake authentication.
pub fn post_handshake_message(host: &str) -> String {
    format!(
        "{host} asked for the client certificate after the TLS 1.3 handshake (post-handshake \
         authentication: Apache's SSLVerifyClient require inside a <Location> or <Directory>), \
         which this bridge cannot answer: {FIX}"
    )
}

/// The server asked for the certificate by renegotiating TLS 1.2.
pub fn renegotiation_message(host: &str) -> String {
    format!(
        "{host} asked to renegotiate TLS 1.2 after the handshake (how Apache and IIS ask for a \
         client certificate on some paths only), which this bridge cannot answer: {FIX}"
    )
}

/// The server-side fix, the same for both (enabling TLS 1.3 would not help).
const FIX: &str = "have the server require the client certificate for the whole virtual host \
     (Apache: SSLVerifyClient require at the <VirtualHost> level, not inside <Location>; IIS: for \
     the whole site), so that it is asked for during the handshake";

/// The message for an HTTP error body in which the server says it could not ask for the
/// certificate (Apache's 403 pages), `None` for any other body.
pub fn from_error_body(body: &[u8], host: &str) -> Option<String> {
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]).to_ascii_lowercase();
    if text.contains("cannot perform post-handshake authentication") {
        return Some(post_handshake_message(host));
    }
    // mod_ssl: "Re-negotiation handshake failed" (AH02261) and "Cannot perform SSL renegotiation".
    if text.contains("re-negotiation handshake failed")
        || text.contains("renegotiation handshake failed")
        || text.contains("cannot perform ssl renegotiation")
    {
        return Some(renegotiation_message(host));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apaches_403_pages_are_recognised() {
        let pha = b"<html><body><h1>Forbidden</h1><p>You don't have permission to access this \
                    resource.Reason: Cannot perform Post-Handshake Authentication.<br /></p>";
        assert_eq!(
            from_error_body(pha, "a.example"),
            Some(post_handshake_message("a.example"))
        );
        let reneg = b"<p>Reason: Re-negotiation handshake failed<br /></p>";
        assert_eq!(
            from_error_body(reneg, "a.example"),
            Some(renegotiation_message("a.example"))
        );
        assert_eq!(from_error_body(b"<h1>Forbidden</h1>", "a.example"), None);
    }
}
