//! Real HTTP on 127.0.0.1: serve, score, graceful shutdown that drains an in-flight request
//! and flushes every decision to the audit trail.

use std::time::Duration;

use cr_service::{serve, ServeConfig};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{assert_score, env, limits, models, state};

fn request_head(method: &str, path: &str, key: &str, len: usize) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {key}\r\n\
         content-type: application/json\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n"
    )
}

/// Read a whole `connection: close` response; returns (status, body).
async fn read_response(mut s: TcpStream) -> (u16, Value) {
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("http response");
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

async fn post(addr: std::net::SocketAddr, path: &str, key: &str, body: &[u8]) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request_head("POST", path, key, body.len()).as_bytes())
        .await
        .unwrap();
    s.write_all(body).await.unwrap();
    read_response(s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_over_tcp_and_drains_on_shutdown() {
    let e = env(Some("a"));
    let st = state(&e);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = ServeConfig::new(&e.db, addr);
    config.limits = limits();
    config.shutdown_timeout = Duration::from_secs(20);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        serve(st, listener, &config, async {
            let _ = stop_rx.await;
        })
        .await
    });

    let decls = &models().a.decls;
    for d in &decls[..10] {
        let (status, body) = post(
            addr,
            "/v1/score",
            &e.score_key,
            &serde_json::to_vec(d).unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_score(
            "a",
            body["declaration_id"].as_str().unwrap(),
            body["score"].as_f64().unwrap(),
        );
    }
    let (status, body) = post(addr, "/v1/score", "nope", b"{}").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );

    // Start a request and send only half its body, then ask the server to stop.
    let last = serde_json::to_vec(&decls[10]).unwrap();
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(request_head("POST", "/v1/score", &e.score_key, last.len()).as_bytes())
        .await
        .unwrap();
    slow.write_all(&last[..last.len() / 2]).await.unwrap();
    slow.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop_tx.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The in-flight request still completes.
    slow.write_all(&last[last.len() / 2..]).await.unwrap();
    let (status, body) = read_response(slow).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["declaration_id"], decls[10]["decl_id"]);

    server.await.expect("server task").expect("serve");
    // New connections are refused after shutdown.
    assert!(TcpStream::connect(addr).await.is_err());
    // Every decision reached the audit trail.
    let conn = rusqlite::Connection::open(&e.db).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 11);
}
