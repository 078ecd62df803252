//! TLS: the client identity (certificate + key), server trust, and the rustls client configuration.
