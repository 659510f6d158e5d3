use std::time::{Duration, Instant};

use dataplane::distributor::PollResponse;
use dataplane::inbox::Inbox;
use reqwest::StatusCode;
use serde_json::Value;

use crate::{TestDistributor, token};

async fn poll(d: &TestDistributor, query: &str) -> reqwest::Response {
    let url = format!("{}/v1/connect/poll?token={}&{query}", d.url, token("u"));
    d.http
        .get(url)
        .send()
        .await
        .expect("the distributor answers")
}

async fn ids(response: reqwest::Response) -> (Vec<String>, Option<u64>) {
    assert_eq!(response.status(), StatusCode::OK);
    let body: PollResponse = response.json().await.expect("a poll answer");
    (
        body.notifications.into_iter().map(|n| n.id).collect(),
        body.next,
    )
}

#[tokio::test]
async fn a_poll_answers_with_the_inbox_and_its_cursor_acknowledges() {
    let d = TestDistributor::start().await;
    d.fill_inbox("u", &["n1", "n2", "n3"]).await;

    assert_eq!(
        ids(poll(&d, "wait=1").await).await,
        (vec!["n1".into(), "n2".into()], Some(20)),
        "a page at most"
    );
    assert_eq!(
        ids(poll(&d, "after=10&wait=1").await).await,
        (vec!["n2".into(), "n3".into()], Some(30))
    );
    let left = d.inbox.pending("u", None, 10, 0).await.expect("the inbox");
    assert_eq!(left.len(), 2, "the cursor 10 acknowledged n1 only");

    let started = Instant::now();
    assert_eq!(
        ids(poll(&d, "after=30&wait=1").await).await,
        (vec![], Some(30)),
        "nothing more within the wait"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the poll waited"
    );
    assert!(
        d.inbox
            .pending("u", None, 10, 0)
            .await
            .expect("the inbox")
            .is_empty(),
        "all acknowledged"
    );
    d.db.drop_database().await;
}

#[tokio::test]
async fn a_poll_that_does_not_wait_still_answers_with_the_inbox() {
    let d = TestDistributor::start().await;
    d.fill_inbox("u", &["n1", "n2", "n3"]).await;
    for _ in 0..5 {
        assert_eq!(
            ids(poll(&d, "wait=0").await).await,
            (vec!["n1".into(), "n2".into()], Some(20)),
            "wait=0 waits for no live notification, but reads the inbox"
        );
    }
    assert_eq!(
        ids(poll(&d, "after=20&wait=0").await).await,
        (vec!["n3".into()], Some(30))
    );
    d.db.drop_database().await;
}

#[tokio::test]
async fn a_bad_poll_is_refused() {
    let d = TestDistributor::start().await;
    let response = poll(&d, "wait=61").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error: Value = response.json().await.expect("a JSON error");
    assert_eq!(
        (
            error["error"]["code"].as_str(),
            error["error"]["field"].as_str()
        ),
        (Some("invalid_wait"), Some("wait"))
    );
    let anonymous = d
        .http
        .get(format!("{}/v1/connect/poll", d.url))
        .send()
        .await
        .expect("answer");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    d.db.drop_database().await;
}
