//! Tests of the test server itself.
mod support;

#[test]
fn placeholder() {
    let server = support::server::TestServer::start(Default::default());
    assert!(server.port() > 0);
}
