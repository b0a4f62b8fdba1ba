//! The background purge deletes what has expired, in batches, and nothing that is still live.

use castellan::domain::{AuditEntry, AuditKind};

use crate::harness::spawn_app_with;

#[tokio::test]
async fn housekeeping_purges_expired_rows_in_batches_and_keeps_live_ones() {
    // A batch of 3 makes the purge loop over several batches.
    let app = spawn_app_with(|s| s.housekeeping.batch_size = 3).await;
    let store = &app.store;
    let now = {
        use castellan::clock::Clock;
        app.clock.time()
    };
    for i in 0..10 {
        store
            .revoke_token_id(&format!("expired-{i}"), now.minus(10))
            .await
            .expect("insert");
    }
    store
        .revoke_token_id("live", now.plus(600))
        .await
        .expect("insert");
    let old = now.minus(91 * 86_400);
    for _ in 0..7 {
        store
            .audit(
                AuditEntry {
                    detail: "test_old".into(),
                    ..AuditEntry::new(AuditKind::SessionEnded)
                },
                old,
            )
            .await
            .expect("audit");
    }
    store
        .audit(
            AuditEntry {
                detail: "test_recent".into(),
                ..AuditEntry::new(AuditKind::SessionEnded)
            },
            now,
        )
        .await
        .expect("audit");

    let deleted = castellan::services::housekeeping::run_once(&housekeeping(&app))
        .await
        .expect("purge");
    assert_eq!(deleted, 17);
    assert_eq!(app.count("revoked_tokens").await, 1);
    assert_eq!(app.count("revoked_tokens WHERE id = 'live'").await, 1);
    assert_eq!(app.count("audit_events WHERE detail = 'test_old'").await, 0);
    assert_eq!(
        app.count("audit_events WHERE detail = 'test_recent'").await,
        1
    );
    // A second pass finds nothing.
    assert_eq!(
        castellan::services::housekeeping::run_once(&housekeeping(&app))
            .await
            .expect("purge"),
        0
    );
}

/// The purge of `app`, run by the test instead of waiting for its interval.
fn housekeeping(app: &crate::harness::TestApp) -> castellan::services::housekeeping::Housekeeping {
    castellan::services::housekeeping::Housekeeping {
        store: app.store.clone(),
        settings: app.state.settings.clone(),
        clock: std::sync::Arc::new(app.clock.clone()),
        kek: None,
        holder: "test".into(),
    }
}
