//! SASL exchanges through the Directory on a real embedded store: PLAIN, LOGIN, and
//! SCRAM-SHA-256 with a real client library (Python `scramp`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{IP, PASSWORD, ScrampClient, directory, fast_config};
use wharf_directory::{AuthError, DirectoryConfig, Mechanism, SaslStep};

fn challenge(step: SaslStep) -> Vec<u8> {
    match step {
        SaslStep::Challenge(c) => c,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

#[tokio::test]
async fn plain_with_and_without_initial_response() {
    let (_tmp, dir) = directory(fast_config()).await;
    let a = dir
        .add_account("alice@example.test", PASSWORD, 0)
        .await
        .unwrap();

    let mut ex = dir.start_sasl(Mechanism::Plain, IP);
    match ex
        .step(b"\0alice@example.test\0correct horse battery")
        .await
    {
        SaslStep::Success {
            account,
            server_final,
        } => {
            assert_eq!(account.id, a.id);
            assert_eq!(server_final, None);
        }
        other => panic!("{other:?}"),
    }
    assert!(ex.is_done());
    assert!(matches!(
        ex.step(b"more").await,
        SaslStep::Failure(AuthError::Malformed(_))
    ));

    let mut ex = dir.start_sasl(Mechanism::Plain, IP);
    assert_eq!(challenge(ex.step(b"").await), b"");
    assert!(matches!(
        ex.step(b"alice@example.test\0alice@example.test\0correct horse battery")
            .await,
        SaslStep::Success { .. }
    ));

    // Wrong password, foreign authzid, malformed forms.
    let mut ex = dir.start_sasl(Mechanism::Plain, IP);
    assert_eq!(
        ex.step(b"\0alice@example.test\0wrong password").await,
        SaslStep::Failure(AuthError::InvalidCredentials)
    );
    let mut ex = dir.start_sasl(Mechanism::Plain, IP);
    assert_eq!(
        ex.step(b"bob@example.test\0alice@example.test\0correct horse battery")
            .await,
        SaslStep::Failure(AuthError::InvalidCredentials)
    );
    for bad in [
        &b"alice@example.test correct horse battery"[..],
        b"\0alice@example.test",
        b"\0\0password",
        b"\0alice@example.test\0",
        b"\0alice@example.test\0pass\0extra",
        b"\0alice@example.test\0\xff\xfe",
    ] {
        let mut ex = dir.start_sasl(Mechanism::Plain, IP);
        assert!(
            matches!(
                ex.step(bad).await,
                SaslStep::Failure(AuthError::Malformed(_))
            ),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // An empty answer to the empty challenge is malformed, not a second challenge.
    let mut ex = dir.start_sasl(Mechanism::Plain, IP);
    challenge(ex.step(b"").await);
    assert!(matches!(
        ex.step(b"").await,
        SaslStep::Failure(AuthError::Malformed(_))
    ));
}

#[tokio::test]
async fn login_exchange() {
    let (_tmp, dir) = directory(fast_config()).await;
    let a = dir
        .add_account("alice@example.test", PASSWORD, 0)
        .await
        .unwrap();

    let mut ex = dir.start_sasl(Mechanism::Login, IP);
    assert_eq!(challenge(ex.step(b"").await), b"Username:");
    assert_eq!(
        challenge(ex.step(b"alice@example.test").await),
        b"Password:"
    );
    match ex.step(PASSWORD.as_bytes()).await {
        SaslStep::Success {
            account,
            server_final: None,
        } => assert_eq!(account.id, a.id),
        other => panic!("{other:?}"),
    }

    // Initial response carries the user name.
    let mut ex = dir.start_sasl(Mechanism::Login, IP);
    assert_eq!(
        challenge(ex.step(b"alice@example.test").await),
        b"Password:"
    );
    assert_eq!(
        ex.step(b"nope nope nope").await,
        SaslStep::Failure(AuthError::InvalidCredentials)
    );

    let mut ex = dir.start_sasl(Mechanism::Login, IP);
    challenge(ex.step(b"").await);
    assert!(matches!(
        ex.step(b"").await,
        SaslStep::Failure(AuthError::Malformed(_))
    ));
}

/// Runs a SCRAM exchange between `scramp` and the directory.
async fn scram(
    dir: &wharf_directory::Directory,
    user: &str,
    password: &str,
) -> (SaslStep, ScrampClient) {
    let mut client = ScrampClient::start(user, password);
    let mut ex = dir.start_sasl(Mechanism::ScramSha256, IP);
    assert_eq!(challenge(ex.step(b"").await), b"");
    let server_first = challenge(ex.step(client.read().as_bytes()).await);
    client.send(std::str::from_utf8(&server_first).unwrap());
    let last = ex.step(client.read().as_bytes()).await;
    (last, client)
}

#[tokio::test]
async fn scram_with_a_real_client() {
    let (_tmp, dir) = directory(fast_config()).await;
    let a = dir
        .add_account("alice@example.test", PASSWORD, 0)
        .await
        .unwrap();
    let (step, mut client) = scram(&dir, "alice@example.test", PASSWORD).await;
    match step {
        SaslStep::Success {
            account,
            server_final: Some(f),
        } => {
            assert_eq!(account.id, a.id);
            client.send(std::str::from_utf8(&f).unwrap());
            assert_eq!(client.read(), "OK", "client verified the server signature");
        }
        other => panic!("{other:?}"),
    }
    // After set_password the new verifier is used.
    dir.set_password("alice@example.test", "another good one")
        .await
        .unwrap();
    let (step, _) = scram(&dir, "alice@example.test", PASSWORD).await;
    assert_eq!(step, SaslStep::Failure(AuthError::InvalidCredentials));
    let (step, _) = scram(&dir, "alice@example.test", "another good one").await;
    assert!(matches!(step, SaslStep::Success { .. }));
}

#[tokio::test]
async fn scram_failures() {
    let (_tmp, dir) = directory(fast_config()).await;
    dir.add_account("alice@example.test", PASSWORD, 0)
        .await
        .unwrap();
    let (step, _) = scram(&dir, "alice@example.test", "wrong password").await;
    assert_eq!(step, SaslStep::Failure(AuthError::InvalidCredentials));
    // Unknown users get a server-first too, and fail at the proof.
    let (step, _) = scram(&dir, "ghost@example.test", PASSWORD).await;
    assert_eq!(step, SaslStep::Failure(AuthError::InvalidCredentials));
    dir.set_disabled("alice@example.test", true).await.unwrap();
    let (step, _) = scram(&dir, "alice@example.test", PASSWORD).await;
    assert_eq!(step, SaslStep::Failure(AuthError::Disabled));

    for bad in [
        &b"p=tls-server-end-point,,n=alice@example.test,r=abcdef"[..],
        b"n,,n=alice@example.test",
        b"garbage",
        b"n,,m=x,n=alice@example.test,r=abc",
    ] {
        let mut ex = dir.start_sasl(Mechanism::ScramSha256, IP);
        assert!(
            matches!(
                ex.step(bad).await,
                SaslStep::Failure(AuthError::Malformed(_))
            ),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // Proxy authorization is refused.
    let mut ex = dir.start_sasl(Mechanism::ScramSha256, IP);
    assert_eq!(
        ex.step(b"n,a=bob@example.test,n=alice@example.test,r=abcdef")
            .await,
        SaslStep::Failure(AuthError::InvalidCredentials)
    );
    // A malformed client-final after a good client-first.
    let mut ex = dir.start_sasl(Mechanism::ScramSha256, IP);
    challenge(ex.step(b"n,,n=alice@example.test,r=abcdef").await);
    assert!(matches!(
        ex.step(b"c=biws,r=abcdef,p=AAAA").await,
        SaslStep::Failure(AuthError::Malformed(_))
    ));
}

#[tokio::test]
async fn scram_failures_are_throttled() {
    let (_tmp, dir) = directory(DirectoryConfig {
        auth_ip_lockout_after: 5,
        ..fast_config()
    })
    .await;
    dir.add_account("alice@example.test", PASSWORD, 0)
        .await
        .unwrap();
    for _ in 0..5 {
        let (step, _) = scram(&dir, "alice@example.test", "wrong password").await;
        assert_eq!(step, SaslStep::Failure(AuthError::InvalidCredentials));
    }
    let mut ex = dir.start_sasl(Mechanism::ScramSha256, IP);
    assert!(matches!(
        ex.step(b"n,,n=alice@example.test,r=abcdef").await,
        SaslStep::Failure(AuthError::Throttled { .. })
    ));
}

fn assert_send<T: Send>(_: &T) {}

#[tokio::test]
async fn exchanges_can_move_between_tasks() {
    let (_tmp, dir) = directory(fast_config()).await;
    let mut ex = dir.start_sasl(Mechanism::ScramSha256, IP);
    assert_send(&ex);
    let fut = ex.step(b"");
    assert_send(&fut);
    fut.await;
    let auth = dir.authenticate("a@example.test", PASSWORD, IP);
    assert_send(&auth);
    let resolve = dir.resolve_recipient("a@example.test");
    assert_send(&resolve);
}
