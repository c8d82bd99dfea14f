//! Connection hygiene over real TCP on 127.0.0.1: thousands of half-open unauthenticated
//! connections neither exhaust the server nor delay a keyed client (answered within 1 s); the
//! header timeout closes them; connections over the limit are closed at once; a body that does
//! not arrive in time gets 408; an idle keep-alive connection is closed; one key cannot hold
//! more than its concurrency limit (429).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cr_service::{serve, AppState, ServeConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{env, limits, models, Env};

/// Raise the soft open-file limit to the hard one; returns the new soft limit.
fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a stack struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(e: &Env, edit: impl FnOnce(&mut ServeConfig)) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = ServeConfig::new(&e.db, addr);
    config.limits = limits();
    config.shutdown_timeout = Duration::from_secs(2);
    edit(&mut config);
    let st = AppState::open(&e.db, config.limits.clone()).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        serve(st, listener, &config, async {
            let _ = stop_rx.await;
        })
        .await
        .unwrap();
    });
    Server {
        addr,
        stop: Some(stop_tx),
        task,
    }
}

impl Server {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

fn post_head(key: &str, len: usize, close: bool) -> String {
    format!(
        "POST /v1/score HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n\
         content-type: application/json\r\ncontent-length: {len}\r\n{}\r\n",
        if close { "connection: close\r\n" } else { "" }
    )
}

/// Read one response's status and body (content-length framed).
async fn read_one(s: &mut TcpStream) -> Option<(u16, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let status = head.split_whitespace().nth(1)?.parse().ok()?;
            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
            return Some((status, body));
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Whether the server closes `s` (EOF or reset) within `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut b = [0u8; 256];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut b)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // an error response before the close
        }
    }
}

async fn keyed_request(addr: SocketAddr, key: &str) -> (Duration, u16) {
    let body = serde_json::to_vec(&models().a.decls[0]).unwrap();
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(post_head(key, body.len(), true).as_bytes())
        .await
        .unwrap();
    s.write_all(&body).await.unwrap();
    let (status, _) = read_one(&mut s).await.expect("a response");
    (t.elapsed(), status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_flood_does_not_stop_a_keyed_client() {
    let soft = raise_nofile();
    // Each connection costs two descriptors here (client and server end) plus the tests'
    // other files; aim for 3000.
    let n = 3000usize.min((soft.saturating_sub(600) / 2) as usize);
    assert!(n >= 500, "open-file limit {soft} too low for this test");
    eprintln!("open-file limit {soft}; {n} half-open connections");
    let e = env(Some("a"));
    let server = start(&e, |c| {
        c.connections.max_connections = n + 100;
        c.connections.header_read_timeout = Duration::from_secs(3);
    })
    .await;
    let addr = server.addr;
    let mut flood = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = TcpStream::connect(addr).await.unwrap();
        // Half a header, never finished (and no key).
        if i % 2 == 0 {
            s.write_all(b"POST /v1/score HTTP/1.1\r\nhost: x\r\n")
                .await
                .unwrap();
        }
        flood.push(s);
    }
    let opened = Instant::now();
    for _ in 0..3 {
        let (took, status) = keyed_request(addr, &e.score_key).await;
        assert_eq!(status, 200);
        assert!(took < Duration::from_secs(1), "keyed request took {took:?}");
    }
    // Over the limit: closed at once, not left hanging.
    let mut extra = Vec::new();
    for _ in 0..200 {
        extra.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut closed_at_once = 0;
    for s in extra.iter_mut() {
        if closed_within(s, Duration::from_millis(300)).await {
            closed_at_once += 1;
        }
    }
    assert!(
        closed_at_once >= 90,
        "{closed_at_once} of 200 over-limit connections closed"
    );
    // The header timeout ends every half-open connection.
    let mut tasks = Vec::new();
    for mut s in flood {
        let wait = Duration::from_secs(3 + 4).saturating_sub(opened.elapsed());
        tasks.push(tokio::spawn(
            async move { closed_within(&mut s, wait).await },
        ));
    }
    let mut still_open = 0;
    for t in tasks {
        if !t.await.unwrap() {
            still_open += 1;
        }
    }
    assert_eq!(
        still_open, 0,
        "half-open connections outlived the header timeout"
    );
    // And the server still answers.
    let (_, status) = keyed_request(addr, &e.score_key).await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_body_idle_keep_alive_and_per_key_limit() {
    let e = env(Some("a"));
    let server = start(&e, |c| {
        c.limits.body_read_timeout = Duration::from_millis(500);
        c.limits.per_key_concurrency = 2;
        c.connections.idle_timeout = Duration::from_secs(1);
        c.connections.header_read_timeout = Duration::from_secs(30);
    })
    .await;
    let addr = server.addr;
    // Two requests of the same key whose bodies never finish hold both of its slots...
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(post_head(&e.score_key, 100, false).as_bytes())
            .await
            .unwrap();
        s.write_all(b"{\"decl_id\"").await.unwrap();
        slow.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ... so a third is refused at once with 429 and Retry-After.
    let (took, status) = keyed_request(addr, &e.score_key).await;
    assert_eq!(status, 429);
    assert!(took < Duration::from_millis(400));
    // The slow bodies get 408 after the body timeout.
    for s in slow.iter_mut() {
        let (status, body) = tokio::time::timeout(Duration::from_secs(3), read_one(s))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status, 408, "{body}");
        assert!(body.contains("body_timeout"), "{body}");
    }
    // Slots are free again.
    let (_, status) = keyed_request(addr, &e.score_key).await;
    assert_eq!(status, 200);

    // An idle keep-alive connection is closed after the idle timeout (the header timeout is
    // 30 s here, so it is the idle timeout that acts).
    let body = serde_json::to_vec(&models().a.decls[1]).unwrap();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(post_head(&e.score_key, body.len(), false).as_bytes())
        .await
        .unwrap();
    s.write_all(&body).await.unwrap();
    assert_eq!(read_one(&mut s).await.unwrap().0, 200);
    let t = Instant::now();
    assert!(
        closed_within(&mut s, Duration::from_secs(4)).await,
        "idle connection kept open"
    );
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "closed too early: {:?}",
        t.elapsed()
    );
    server.stop().await;
}
