//! The demo as a test: owner + 2 members over real TCP (Waku and BitTorrent on loopback),
//! full history arrives and matches the owner's store; a week later members fetch only the new
//! archive (issue 7, e2e (a) and (b)).

use std::time::Duration;

use chs_demo::{DemoOptions, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demo_owner_and_two_members_get_identical_history_then_only_the_new_week() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = DemoOptions::new(dir.path());
    options.members = 2;
    options.weeks = 4;
    options.messages_per_week = 60;
    options.debounce = Duration::ZERO;
    options.step_timeout = Duration::from_secs(90);
    let report = run(&options, &|e| eprintln!("{e:?}")).await.expect("demo runs");
    eprintln!("{report:#?}");
    assert_eq!(report.owner_archives, 5, "4 catch-up weeks + the live week");
    assert_eq!(report.members.len(), 2);
    for m in &report.members {
        assert!(m.identical, "{} differs from the owner", m.name);
        assert_eq!(m.messages, report.owner_messages);
        assert_eq!(m.second_round_archives, Some(1), "{} must fetch only the new week", m.name);
        assert_eq!(m.archives, 5);
        assert_eq!(m.readable as u64, report.owner_messages, "every message decodes to chat text");
    }
    assert_eq!(report.owner_messages, 4 * 60 + 2);
}
