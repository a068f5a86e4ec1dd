//! `GET /v1/jobs/{id}/log`
use http_body_util::BodyExt;

use crate::support::{request, send, Daemon};

#[tokio::test(flavor = "multi_thread")]
async fn the_log_holds_stdout_and_stderr() {
    let daemon = Daemon::start(|_| {}).await;
    let id = daemon
        .submit(&["sh", "-c", "echo to-stdout; echo to-stderr >&2"])
        .await;
    daemon.wait_finished(id).await;
    let (status, log) = daemon.text(&format!("/v1/jobs/{id}/log")).await;
    assert_eq!(status, 200);
    assert_eq!(log, "to-stdout\nto-stderr\n");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_is_capped() {
    let daemon = Daemon::start(|config| config.log_limit_bytes = 1000).await;
    let id = daemon
        .submit(&[
            "sh",
            "-c",
            "i=0; while [ $i -lt 500 ]; do echo line-$i; i=$((i+1)); done",
        ])
        .await;
    let job = daemon.wait_finished(id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let (_, log) = daemon.text(&format!("/v1/jobs/{id}/log")).await;
    assert!(log.starts_with("line-0\n"), "{log}");
    assert!(
        log.contains("[hermeticd] log truncated: the limit is 1000 bytes"),
        "{log}"
    );
    assert!(log.len() < 1100, "{}", log.len());
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_followed_log_streams_live_until_the_job_ends() {
    let daemon = Daemon::start(|_| {}).await;
    // The job prints a line, then takes a while before the next: the first line must
    // arrive while the job is still running.
    let id = daemon
        .submit(&["sh", "-c", "echo first; sleep 3; echo second"])
        .await;
    let response = send(
        &daemon.socket,
        "GET",
        &format!("/v1/jobs/{id}/log?follow=true"),
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut seen = String::new();
    while !seen.contains("first") {
        let frame = body.frame().await.expect("the stream ended early").unwrap();
        if let Ok(data) = frame.into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
        }
    }
    let (_, job) = daemon.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(
        job["state"], "running",
        "the first line came before the job ended"
    );
    let rest = body.collect().await.unwrap().to_bytes();
    seen.push_str(&String::from_utf8_lossy(&rest));
    assert_eq!(seen, "first\nsecond\n");
    assert_eq!(
        daemon.get(&format!("/v1/jobs/{id}")).await.1["state"],
        "succeeded"
    );
    daemon.stop().await;
}

/// `GET path` on the daemon's socket: the status and the framed answer, split.
async fn get_frames(daemon: &Daemon, path: &str) -> (u16, Vec<(u8, Vec<u8>)>) {
    let (status, body) = request(&daemon.socket, "GET", path, None).await;
    (status, frames(&body))
}

/// Splits a framed log (`wire::FRAMED_LOG_CONTENT_TYPE`) into (stream byte, bytes).
fn frames(mut body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while !body.is_empty() {
        let length = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        frames.push((body[0], body[5..5 + length].to_vec()));
        body = &body[5 + length..];
    }
    frames
}

#[tokio::test(flavor = "multi_thread")]
async fn a_framed_log_keeps_the_streams_apart_and_a_followed_one_ends_with_the_job() {
    let daemon = Daemon::start(|_| {}).await;
    let id = daemon
        .submit(&["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"])
        .await;
    let response = send(
        &daemon.socket,
        "GET",
        &format!("/v1/jobs/{id}/log?follow=true&framed=true"),
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        hermetic_contract::wire::FRAMED_LOG_CONTENT_TYPE
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let mut frames = frames(&body);
    let (last, record) = frames.pop().expect("no frames");
    assert_eq!(last, hermetic_contract::wire::FRAME_JOB);
    let job: serde_json::Value = serde_json::from_slice(&record).unwrap();
    assert_eq!(
        (job["state"].as_str(), job["exit_code"].as_i64()),
        (Some("failed"), Some(3))
    );
    let text = |wanted: u8| -> String {
        frames
            .iter()
            .filter(|(stream, _)| *stream == wanted)
            .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
            .collect()
    };
    assert_eq!(text(1), "to-stdout\n");
    assert_eq!(text(2), "to-stderr\n");

    // Not followed: the same frames, without the job's record.
    let (status, frames) = get_frames(&daemon, &format!("/v1/jobs/{id}/log?framed=true")).await;
    assert_eq!(status, 200);
    assert!(frames
        .iter()
        .all(|(stream, _)| *stream != hermetic_contract::wire::FRAME_JOB));
    daemon.stop().await;
}

/// A client that waits for its job submits and follows in one request.
#[tokio::test(flavor = "multi_thread")]
async fn a_submission_can_answer_with_the_followed_framed_log() {
    let daemon = Daemon::start(|_| {}).await;
    let request = daemon.run_request(&["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"]);
    let response = send(
        &daemon.socket,
        "POST",
        "/v1/jobs?follow=true&framed=true",
        Some(request.as_bytes()),
    )
    .await;
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.headers()["content-type"],
        hermetic_contract::wire::FRAMED_LOG_CONTENT_TYPE
    );
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let mut frames = frames(&body);
    let (last, record) = frames.pop().expect("no frames");
    assert_eq!(last, hermetic_contract::wire::FRAME_JOB);
    let job: serde_json::Value = serde_json::from_slice(&record).unwrap();
    assert_eq!(location, format!("/v1/jobs/{}", job["id"]));
    assert_eq!(
        (job["state"].as_str(), job["exit_code"].as_i64()),
        (Some("failed"), Some(3))
    );
    assert!(frames.contains(&(1, b"to-stdout\n".to_vec())), "{frames:?}");
    assert!(frames.contains(&(2, b"to-stderr\n".to_vec())), "{frames:?}");

    // Following needs frames: a plain log cannot carry the job's record.
    let (status, body) = daemon.post("/v1/jobs?follow=true", &request).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad-request")),
        "{body}"
    );
    let (_, jobs) = daemon.get("/v1/jobs").await;
    assert_eq!(
        jobs["jobs"].as_array().unwrap().len(),
        1,
        "the refused request made a job"
    );
    daemon.stop().await;
}

/// A job's log is created when the job starts: a queued job's reads as empty, and a
/// follower that came before it existed still gets all of it and the job's end.
#[tokio::test(flavor = "multi_thread")]
async fn a_queued_job_has_an_empty_log_that_a_follower_sees_grow() {
    let daemon = Daemon::start(|config| config.max_concurrent = 1).await;
    let first = daemon.submit(&["sh", "-c", "sleep 1"]).await;
    let queued = daemon.submit(&["sh", "-c", "echo out; echo err >&2"]).await;
    let (_, job) = daemon.get(&format!("/v1/jobs/{queued}")).await;
    assert_eq!(job["state"], "queued", "{job}");
    let (status, log) = daemon.text(&format!("/v1/jobs/{queued}/log")).await;
    assert_eq!((status, log.as_str()), (200, ""));
    assert!(!std::path::Path::new(job["log_path"].as_str().unwrap()).exists());

    let (status, frames) = get_frames(
        &daemon,
        &format!("/v1/jobs/{queued}/log?follow=true&framed=true"),
    )
    .await;
    assert_eq!(status, 200);
    let (last, record) = frames.last().unwrap();
    assert_eq!(*last, hermetic_contract::wire::FRAME_JOB);
    let record: serde_json::Value = serde_json::from_slice(record).unwrap();
    assert_eq!(record["state"], "succeeded", "{record}");
    assert!(frames.contains(&(1, b"out\n".to_vec())), "{frames:?}");
    assert!(frames.contains(&(2, b"err\n".to_vec())), "{frames:?}");
    daemon.wait_finished(first).await;
    daemon.stop().await;
}

/// A log that cannot be created fails the job and says why, rather than losing its
/// output in silence.
#[tokio::test(flavor = "multi_thread")]
async fn a_job_whose_log_cannot_be_created_fails_and_says_why() {
    let daemon = Daemon::start(|_| {}).await;
    // Answering, it has made its directories.
    let (status, _) = daemon.get("/v1/health").await;
    assert_eq!(status, 200);
    let logs = daemon.state_dir.join("logs");
    std::fs::remove_dir(&logs).unwrap();
    std::fs::write(&logs, "not a directory").unwrap();
    let id = daemon.submit(&["sh", "-c", "echo lost"]).await;
    let job = daemon.wait_finished(id).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["verdict"], "sandbox-failed", "{job}");
    assert_eq!(job["exit_code"], 125, "{job}");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("failed to create the job's log"),
        "{job}"
    );
    daemon.stop().await;
}
