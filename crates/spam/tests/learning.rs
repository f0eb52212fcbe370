//! The learning target of issue 18: a user moves 20 messages of a new spam campaign into Junk,
//! and the next message of that campaign scores above the Junk threshold for that user — but
//! not for another user while the global model has no data. Uses the in-memory token store
//! through the same async `TokenStore` calls the server's store implements.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use wharf_spam::bayes::{MemoryTokenStore, load_model};
use wharf_spam::{
    Action, AuthVerdicts, Class, Config, Facts, Scan, Scope, SenderLists, TokenStore, classify,
    evaluate, training_delta,
};

const ALICE: i64 = 1;
const BOB: i64 = 2;

/// One message of the campaign: shared pitch, varying names, numbers and filler.
fn campaign(i: usize) -> Vec<u8> {
    let names = [
        "Jordan", "Casey", "Morgan", "Taylor", "Riley", "Avery", "Quinn",
    ];
    let name = names[i % names.len()];
    format!(
        "From: \"{name} at Veltrix\" <{}@mailer{}.veltrix-yield.example>\r\n\
         To: alice@example.org\r\n\
         Subject: {name}, your Veltrix staking bonus #{} is waiting\r\n\
         Message-ID: <{i}.{}@veltrix-yield.example>\r\n\
         Date: Mon, 7 Dec 2026 0{}:00:00 +0000\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         Hello {name},\r\n\r\n\
         Your Veltrix staking bonus of {} USDT is ready to claim. Guaranteed yield,\r\n\
         withdraw anytime, verified wallets only. Claim before midnight:\r\n\
         https://claim{}.veltrix-yield.example/bonus?id={}\r\n\r\n\
         Veltrix Rewards Desk\r\n",
        name.to_lowercase(),
        i % 5,
        1000 + i * 7,
        i * 31,
        i % 10,
        250 + i * 13,
        i % 3,
        i * 977
    )
    .into_bytes()
}

async fn verdict_for(store: &MemoryTokenStore, user: i64, raw: &[u8]) -> wharf_spam::Verdict {
    let cfg = Config::default();
    let scan = Scan::new(raw);
    let model = load_model(store, Some(user), scan.tokens.hashes())
        .await
        .unwrap();
    let classification = classify(&model, scan.tokens.hashes(), &cfg.bayes);
    let auth = AuthVerdicts::default();
    let lists = SenderLists::default();
    let facts = Facts {
        auth: &auth,
        envelope_from: "bounce@veltrix-yield.example",
        local_domains: &[],
        domain_lists: &lists,
        user_lists: &lists,
        known_correspondent: false,
        reputation: None,
        classification: classification.as_ref(),
        dnsbl_hits: &[],
        rspamd: None,
    };
    evaluate(&cfg, &scan.analysis, &facts)
}

async fn train(store: &MemoryTokenStore, scope: Scope, raw: &[u8], class: Class) {
    let scan = Scan::new(raw);
    let delta = training_delta(&scan.tokens, None, Some(class)).unwrap();
    store.apply(scope, &delta).await.unwrap();
}

#[tokio::test]
async fn twenty_junk_moves_teach_the_campaign_to_that_user_only() {
    let store = MemoryTokenStore::default();
    let next = campaign(20);
    // Before training: the campaign message itself looks like ordinary mail.
    let before = verdict_for(&store, ALICE, &next).await;
    assert_eq!(before.action, Action::Deliver, "{}", before.log_line());

    for i in 0..20 {
        train(&store, Scope::User(ALICE), &campaign(i), Class::Spam).await;
    }
    let alice = verdict_for(&store, ALICE, &next).await;
    println!("alice: {}", alice.log_line());
    assert!(
        alice.score >= Config::default().junk_threshold,
        "{}",
        alice.log_line()
    );
    assert_eq!(alice.action, Action::Junk);

    // Bob trained nothing and the global model is empty: no classifier opinion, delivered.
    let bob = verdict_for(&store, BOB, &next).await;
    println!("bob: {}", bob.log_line());
    assert!(bob.bayes_probability.is_none());
    assert_eq!(bob.action, Action::Deliver);
}

/// With a global model that knows ordinary mail, the user's training still catches the
/// campaign, and the user's ordinary mail is not junked by their one-sided training.
#[tokio::test]
async fn campaign_training_on_top_of_a_global_model() {
    let store = MemoryTokenStore::default();
    let topics = [
        "budget review",
        "release notes",
        "team lunch",
        "travel plans",
        "code review",
    ];
    for i in 0..40 {
        let topic = topics[i % topics.len()];
        let ham = format!(
            "From: colleague{i}@example.org\r\nTo: alice@example.org\r\nSubject: Re: {topic}\r\nMessage-ID: <h{i}@example.org>\r\nDate: Mon, 7 Dec 2026 01:00:00 +0000\r\n\r\nHi Alice,\r\nhere are my notes on the {topic}; can we talk tomorrow at ten?\r\nThe draft is in the shared folder, version {i}.\r\nThanks, Sam\r\n"
        );
        train(&store, Scope::Global, ham.as_bytes(), Class::Ham).await;
        let spam = format!(
            "From: promo{i}@deals.example\r\nSubject: Cheap watches {i}\r\nMessage-ID: <s{i}@deals.example>\r\nDate: Mon, 7 Dec 2026 01:00:00 +0000\r\n\r\nReplica watches at discount prices, order now, limited stock {i}!\r\n"
        );
        train(&store, Scope::Global, spam.as_bytes(), Class::Spam).await;
    }
    for i in 0..20 {
        train(&store, Scope::User(ALICE), &campaign(i), Class::Spam).await;
    }
    let next = verdict_for(&store, ALICE, &campaign(21)).await;
    println!("alice campaign: {}", next.log_line());
    assert_eq!(next.action, Action::Junk);
    let ham = b"From: colleague7@example.org\r\nTo: alice@example.org\r\nSubject: Re: budget review\r\nMessage-ID: <x@example.org>\r\nDate: Mon, 7 Dec 2026 02:00:00 +0000\r\n\r\nHi Alice,\r\nthe budget review draft is in the shared folder; can we talk tomorrow?\r\nThanks, Sam\r\n";
    let v = verdict_for(&store, ALICE, ham).await;
    println!("alice ham: {}", v.log_line());
    assert_eq!(v.action, Action::Deliver);
}
