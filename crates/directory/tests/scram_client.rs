//! The SCRAM-SHA-256 server state machine against a real client library (Python `scramp`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::ScrampClient;
use wharf_directory::scram::{ClientFirst, ScramError, ScramServer, ScramVerifier, server_nonce};

fn exchange(user: &str, client_password: &str, server_password: &str) -> Result<(), ScramError> {
    let verifier = ScramVerifier::generate(server_password);
    let mut client = ScrampClient::start(user, client_password);
    let first = ClientFirst::parse(client.read().as_bytes())?;
    assert_eq!(first.username, user);
    let server = ScramServer::new(first, verifier, &server_nonce());
    client.send(server.server_first());
    let server_final = server.finish(client.read().as_bytes())?;
    client.send(&server_final);
    // The client checks the server's signature: mutual authentication.
    assert_eq!(client.read(), "OK");
    Ok(())
}

#[test]
fn scramp_client_authenticates() {
    exchange("user@example.test", "pencil and paper", "pencil and paper").unwrap();
}

#[test]
fn scramp_client_with_escaped_name_and_saslprep_password() {
    // `=` and `,` travel as =3D / =2C; the soft hyphen vanishes under SASLprep (RFC 4013 §3).
    exchange(
        "we=ird,name@example.test",
        "I\u{00AD}X-long-password",
        "IX-long-password",
    )
    .unwrap();
}

#[test]
fn scramp_client_wrong_password_is_rejected() {
    assert_eq!(
        exchange("user@example.test", "pencil", "not the pencil"),
        Err(ScramError::InvalidProof)
    );
}
