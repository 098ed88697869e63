//! The change feed (issue #10, item 1): every committed record write is published on
//! `Service::changes()` with its outbox position, cascaded deletes and relation clean-ups
//! included; failed writes publish nothing; `changes_since` replays the outbox; on PostgreSQL a
//! second instance sees the first one's changes on its own feed, in position order.

use std::time::Duration;

use basalt::store::{Action, Change};
use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::broadcast::Receiver;

use crate::helpers::{postgres_server, spawn_app, spawn_app_on, TestApp, TestDb};

/// Receives the next `n` changes (fails the test after 10 s: a readiness bound, not a timing).
/// `_authOrigins`' collection id (PocketBase's).
const AUTH_ORIGINS_ID: &str = "pbc_4275539003";

async fn next(rx: &mut Receiver<Change>, n: usize) -> Vec<Change> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            // A login records its device (`_authOrigins`): on another instance that change may
            // arrive after the test subscribed. The tests here follow their own collections.
            Ok(Ok(c)) if c.collection_id == AUTH_ORIGINS_ID => {}
            Ok(Ok(c)) => out.push(c),
            other => panic!("expected {n} changes, got {} then {other:?}", out.len()),
        }
    }
    out
}

/// What a change says, without positions: `(collection name, record id, action)`.
fn summary(app: &TestApp, changes: &[Change]) -> Vec<(String, String, Action)> {
    let schema = app.svc.schema();
    changes
        .iter()
        .map(|c| {
            let name = schema.get(&c.collection_id).map(|x| x.name.clone()).unwrap_or_default();
            (name, c.record_id.clone(), c.action)
        })
        .collect()
}

/// posts ← comments (cascade) ← likes (cascade); bookmarks → posts (multi, clean-up);
/// pins → posts (required single: blocks deletes). Returns (post, comment, like, bookmark).
async fn blog(app: &TestApp, su: &str) -> (String, String, String, String) {
    let posts = app
        .create_collection(su, json!({"name": "posts", "fields": [{"name": "t", "type": "text"}]}))
        .await["id"]
        .clone();
    let comments = app
        .create_collection(
            su,
            json!({"name": "comments", "fields": [{"name": "post", "type": "relation",
                   "collectionId": posts, "maxSelect": 1, "cascadeDelete": true}]}),
        )
        .await["id"]
        .clone();
    app.create_collection(
        su,
        json!({"name": "likes", "fields": [{"name": "comment", "type": "relation",
               "collectionId": comments, "maxSelect": 1, "cascadeDelete": true}]}),
    )
    .await;
    app.create_collection(
        su,
        json!({"name": "bookmarks", "fields": [{"name": "posts", "type": "relation",
               "collectionId": posts, "maxSelect": 5}]}),
    )
    .await;
    app.create_collection(
        su,
        json!({"name": "pins", "fields": [{"name": "post", "type": "relation",
               "collectionId": posts, "maxSelect": 1, "required": true}]}),
    )
    .await;
    let post = app.create_id(Some(su), "posts", json!({"t": "hello"})).await;
    let other = app.create_id(Some(su), "posts", json!({"t": "other"})).await;
    let comment = app.create_id(Some(su), "comments", json!({"post": post})).await;
    let like = app.create_id(Some(su), "likes", json!({"comment": comment})).await;
    let bookmark = app.create_id(Some(su), "bookmarks", json!({"posts": [post, other]})).await;
    (post, comment, like, bookmark)
}

fn expected_cascade(
    post: &str,
    comment: &str,
    like: &str,
    bookmark: &str,
) -> Vec<(String, String, Action)> {
    let mut want = vec![
        ("likes".to_string(), like.to_string(), Action::Delete),
        ("comments".to_string(), comment.to_string(), Action::Delete),
        ("bookmarks".to_string(), bookmark.to_string(), Action::Update),
        ("posts".to_string(), post.to_string(), Action::Delete),
    ];
    want.sort();
    want
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_reports_every_row_of_a_cascading_delete() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let mut rx = app.svc.changes();
    let (post, comment, like, bookmark) = blog(&app, &su).await;

    // The five creates, in order, with the record as written.
    let created = next(&mut rx, 5).await;
    assert!(created.iter().all(|c| c.action == Action::Create && c.local), "{created:?}");
    assert!(created.windows(2).all(|w| w[0].pos < w[1].pos), "positions increase");
    assert_eq!(created[0].record_id, post);
    assert_eq!(created[0].record.as_ref().map(|r| r["t"].clone()), Some(json!("hello")));

    // A blocked delete (required relation) changes nothing and publishes nothing.
    let pin = app.create_id(Some(&su), "pins", json!({"post": post})).await;
    let pinned = next(&mut rx, 1).await;
    assert_eq!(summary(&app, &pinned), [("pins".into(), pin.clone(), Action::Create)]);
    let (status, _) =
        app.delete(&format!("/api/collections/posts/records/{post}"), Some(&su)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.delete(&format!("/api/collections/pins/records/{pin}"), Some(&su)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let unpinned = next(&mut rx, 1).await;
    assert_eq!(summary(&app, &unpinned), [("pins".into(), pin, Action::Delete)]);

    // The cascade: the like and the comment deleted, the bookmark cleaned up, the post deleted.
    let (status, _) =
        app.delete(&format!("/api/collections/posts/records/{post}"), Some(&su)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let cascade = next(&mut rx, 4).await;
    let mut got = summary(&app, &cascade);
    got.sort();
    assert_eq!(got, expected_cascade(&post, &comment, &like, &bookmark));
    assert_eq!(cascade.last().map(|c| c.record_id.clone()), Some(post.clone()), "root last");
    // The feed's position metric follows what was published.
    assert_eq!(app.svc.feed_stats().0, cascade.last().expect("cascade").pos);

    // An update carries the record as written.
    let (status, _) = app
        .patch(
            &format!("/api/collections/bookmarks/records/{bookmark}"),
            Some(&su),
            json!({"posts": []}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let updated = next(&mut rx, 1).await;
    assert_eq!(updated[0].action, Action::Update);
    assert_eq!(updated[0].record.as_ref().map(|r| r["posts"].clone()), Some(json!([])));

    // The outbox replays the same changes, from any position.
    let all: Vec<Change> =
        [created, pinned, unpinned, cascade, updated].into_iter().flatten().collect();
    // (The superuser created before we subscribed has the positions before the first one.)
    let replay = app.svc.changes_since(all[0].pos - 1, 1000).await.expect("outbox");
    let strip = |cs: &[Change]| -> Vec<(i64, String, Action)> {
        cs.iter().map(|c| (c.pos, c.record_id.clone(), c.action)).collect()
    };
    assert_eq!(strip(&replay), strip(&all));
    let after = app.svc.changes_since(all[4].pos, 2).await.expect("outbox");
    assert_eq!(strip(&after), strip(&all[5..7]));
    assert!(tokio::time::timeout(Duration::from_millis(200), rx.recv()).await.is_err(), "no more");

    // Pruning: nothing is older than a day; with no retention everything written so far goes,
    // and resuming from before the cut is refused rather than silently skipping changes.
    assert_eq!(app.svc.prune_changes(chrono::Duration::hours(24)).await.expect("prune"), 0);
    tokio::time::sleep(Duration::from_millis(5)).await; // `created` has millisecond precision
    let through = app.svc.prune_changes(chrono::Duration::zero()).await.expect("prune");
    assert_eq!(through, all.last().map(|c| c.pos).unwrap_or_default());
    let refused = app.svc.changes_since(all[0].pos, 10).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(app.svc.changes_since(through, 10).await.expect("after the cut").len(), 0);
    // Positions are never reused after pruning: the next write continues after the floor.
    let again = app.create_id(Some(&su), "posts", json!({"t": "after the cut"})).await;
    let next_change = next(&mut rx, 1).await;
    assert_eq!(next_change[0].record_id, again);
    assert_eq!(next_change[0].pos, through + 1);
    let replay = app.svc.changes_since(through, 10).await.expect("after the cut");
    assert_eq!(replay.iter().map(|c| c.pos).collect::<Vec<_>>(), [through + 1]);
    app.stop().await;
}

/// Two instances on one PostgreSQL database: B's feed carries A's changes (not local), the whole
/// cascade, in position order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_instance_sees_the_cascade_on_its_feed() {
    let Some(server) = postgres_server() else {
        eprintln!("SKIPPED: set BASALT_TEST_POSTGRES to run the multi-instance feed test");
        return;
    };
    let db = TestDb::create(&server).await;
    let a = spawn_app_on(&db.url()).await;
    let b = spawn_app_on(&db.url()).await;
    let su = a.su_token().await;
    let mut rx_b = b.svc.changes();
    let (post, comment, like, bookmark) = blog(&a, &su).await;
    let created = next(&mut rx_b, 5).await;
    assert!(created.iter().all(|c| !c.local && c.action == Action::Create), "{created:?}");
    assert_eq!(created[0].record_id, post);

    let (status, _) = a.delete(&format!("/api/collections/posts/records/{post}"), Some(&su)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let cascade = next(&mut rx_b, 4).await;
    assert!(cascade.windows(2).all(|w| w[0].pos < w[1].pos), "position order: {cascade:?}");
    // B may not have loaded A's schema yet; compare by id through A's snapshot.
    let mut got = summary(&a, &cascade);
    got.sort();
    assert_eq!(got, expected_cascade(&post, &comment, &like, &bookmark));
    // B's feed metrics follow what it published from A's commits.
    let (position, lag_ms) = b.svc.feed_stats();
    assert_eq!(position, cascade.last().expect("cascade").pos);
    assert!((0..60_000).contains(&lag_ms), "lag {lag_ms} ms");

    // Writes from both instances at once reach the other one, none lost.
    let mut rx_a = a.svc.changes();
    let mut rx_b = b.svc.changes();
    let su_b = b.su_token().await;
    let (ra, rb) = tokio::join!(
        async {
            for i in 0..20 {
                a.create_id(Some(&su), "posts", json!({"t": format!("a{i}")})).await;
            }
        },
        async {
            for i in 0..20 {
                b.create_id(Some(&su_b), "posts", json!({"t": format!("b{i}")})).await;
            }
        }
    );
    let ((), ()) = (ra, rb);
    for (rx, name) in [(&mut rx_a, "A"), (&mut rx_b, "B")] {
        let seen = next(rx, 40).await;
        let remote = seen.iter().filter(|c| !c.local).count();
        assert_eq!(remote, 20, "{name} saw {remote} of the other instance's 20 changes");
    }
    a.stop().await;
    b.stop().await;
}
