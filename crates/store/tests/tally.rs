//! Report tallies (`TallyStore`) on SQLite and PostgreSQL: counts add up across batches and
//! reopenings, a report is claimed exactly once even when claimers race, claimed days are no
//! longer due, and pruning forgets old days only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use wharf_store::tally::{Tally, utc_day};
use wharf_testkit::{Backend, TestStore, on_both_backends};

fn t(domain: &str, item: &str, count: u64) -> Tally {
    Tally {
        domain: domain.into(),
        item: item.into(),
        count,
    }
}

fn sums(list: Vec<Tally>) -> BTreeMap<(String, String), u64> {
    list.into_iter()
        .map(|t| ((t.domain, t.item), t.count))
        .collect()
}

async fn counts_add_up_and_claims_are_exclusive(backend: Backend) {
    let files = TestStore::new(backend);
    let day = utc_day(1_765_000_000);
    {
        let opened = files.open_all().await;
        let tallies = opened.tallies;
        // An item longer than any index key may be: the key is its hash.
        let long = format!("{{\"x\":\"{}\"}}", "y".repeat(20_000));
        tallies
            .add_tallies(
                "dmarc",
                day,
                &[t("a.example", "{\"r\":1}", 2), t("b.example", &long, 1)],
            )
            .await
            .unwrap();
        tallies
            .add_tallies("dmarc", day, &[t("a.example", "{\"r\":1}", 3)])
            .await
            .unwrap();
        tallies
            .add_tallies("tlsrpt", day, &[t("a.example", "{\"r\":1}", 7)])
            .await
            .unwrap();
        tallies
            .add_tallies("dmarc", day - 1, &[t("c.example", "{}", 1)])
            .await
            .unwrap();
        tallies.add_tallies("dmarc", day, &[]).await.unwrap();
        let got = sums(tallies.tallies("dmarc", day, None).await.unwrap());
        assert_eq!(got[&("a.example".into(), "{\"r\":1}".into())], 5);
        assert_eq!(got[&("b.example".into(), long.clone())], 1);
        assert_eq!(got.len(), 2);
        let only_a = tallies
            .tallies("dmarc", day, Some("a.example"))
            .await
            .unwrap();
        assert_eq!(only_a.len(), 1);
    }
    // After a restart the counts are still there and keep adding up.
    let opened = files.open_all().await;
    let tallies = opened.tallies;
    tallies
        .add_tallies("dmarc", day, &[t("a.example", "{\"r\":1}", 1)])
        .await
        .unwrap();
    let got = sums(
        tallies
            .tallies("dmarc", day, Some("a.example"))
            .await
            .unwrap(),
    );
    assert_eq!(got[&("a.example".into(), "{\"r\":1}".into())], 6);

    // Before the day is over nothing of it is due; after, each domain once.
    let due = tallies.unreported("dmarc", day).await.unwrap();
    assert_eq!(due, vec![(day - 1, "c.example".to_string())]);
    let due = tallies.unreported("dmarc", day + 1).await.unwrap();
    assert_eq!(due.len(), 3);

    // Eight racing claimers (as from several nodes): exactly one wins.
    let mut racers = Vec::new();
    for i in 0..8 {
        let tallies = tallies.clone();
        racers.push(tokio::spawn(async move {
            tallies
                .claim_report("dmarc", day, "a.example", &format!("node{i}"), 1)
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for r in racers {
        if r.await.unwrap() {
            won += 1;
        }
    }
    assert_eq!(won, 1);
    // The same domain's other kind of report is a different claim.
    assert!(
        tallies
            .claim_report("tlsrpt", day, "a.example", "n", 1)
            .await
            .unwrap()
    );
    let due = tallies.unreported("dmarc", day + 1).await.unwrap();
    assert_eq!(
        due,
        vec![
            (day - 1, "c.example".to_string()),
            (day, "b.example".to_string())
        ]
    );

    // Pruning forgets the days before the horizon, counts and claims alike.
    assert_eq!(tallies.prune_tallies(day).await.unwrap(), 1);
    assert!(
        tallies
            .tallies("dmarc", day - 1, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(tallies.tallies("dmarc", day, None).await.unwrap().len(), 2);
    assert!(
        !tallies
            .claim_report("dmarc", day, "a.example", "late", 2)
            .await
            .unwrap()
    );
}

on_both_backends!(counts_add_up_and_claims_are_exclusive);
