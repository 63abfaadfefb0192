//! The `/metrics` endpoint: a strict, bounded HTTP/1.x responder. It
//! answers `GET /metrics` with the text exposition and anything else with
//! an error status, one request per connection, then closes. A request head
//! is at most [`MAX_HEAD`] bytes and must arrive within [`TIMEOUT`]; at most
//! [`MAX_CONNECTIONS`] scrapes are served at once (the rest wait in the
//! listen queue).

use crate::actors::registry::Registry;
use crate::metrics::sample::sample;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head (request line and headers) read.
pub const MAX_HEAD: usize = 8192;
/// How long one connection may take, from accept to the response written.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 8;

/// Most input read and discarded after a response.
const MAX_DRAIN: usize = 1 << 20;
/// How long to wait for the peer to close after a response.
const LINGER: Duration = Duration::from_secs(1);

/// The OpenMetrics text format that `prometheus-client` writes.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a request asks for, or the status that refuses it.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    /// `GET /metrics`.
    Metrics,
    /// Refused with this status line.
    Refused(&'static str),
}

/// Binds the metrics listener (before anything is served, so a taken port
/// is a start-up error).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves scrapes of `registry`'s metrics on `listener` until the current
/// actix system stops; must run inside it (scrapes ask the databases).
pub fn serve(listener: TcpListener, registry: Arc<Registry>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    actix::spawn(async move {
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of descriptors, say: back off instead of spinning.
                    tracing::warn!("metrics: accept failed: {e}; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let registry = registry.clone();
            actix::spawn(async move {
                let _ = tokio::time::timeout(TIMEOUT, respond(stream, &registry)).await;
                drop(permit);
            });
        }
    });
}

/// Reads one request head and writes its response.
async fn respond(mut stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    let request = match read_head(&mut stream).await? {
        Some(head) => parse(&head),
        None => Request::Refused("431 Request Header Fields Too Large"),
    };
    let (status, content_type, body) = match request {
        Request::Metrics => {
            sample(registry).await;
            ("200 OK", CONTENT_TYPE, registry.metrics.render())
        }
        Request::Refused(status) => (status, "text/plain", format!("{status}\n")),
    };
    let mut response = format!(
        "HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status.starts_with("405") {
        response.push_str("Allow: GET\r\n");
    }
    response.push_str("\r\n");
    response.push_str(&body);
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    // Closing with unread input resets the connection, and the peer may
    // lose the response: read what it still sends (bounded) until it closes.
    let mut rest = [0u8; 4096];
    let mut left = MAX_DRAIN;
    while left > 0 {
        match tokio::time::timeout(LINGER, stream.read(&mut rest)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => break,
        }
    }
    Ok(())
}

/// The request head up to its blank line; `None` if it exceeds [`MAX_HEAD`]
/// or the peer stops sending before the blank line.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut len = 0;
    loop {
        if let Some(end) = head_end(&buf[..len]) {
            buf.truncate(end);
            return Ok(Some(buf));
        }
        if len == MAX_HEAD {
            return Ok(None);
        }
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok(None);
        }
        len += n;
    }
}

/// Where the head ends (`\r\n\r\n`, or bare `\n\n` as lenient clients send).
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What a request head asks for: only `GET /metrics` (with or without a
/// query) over HTTP/1.x is served.
fn parse(head: &[u8]) -> Request {
    let Ok(head) = std::str::from_utf8(head) else {
        return Request::Refused("400 Bad Request");
    };
    let line = head.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Request::Refused("400 Bad Request");
    };
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
        return Request::Refused("400 Bad Request");
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    if path != "/metrics" {
        return Request::Refused("404 Not Found");
    }
    if method != "GET" {
        return Request::Refused("405 Method Not Allowed");
    }
    Request::Metrics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_is_served() {
        assert_eq!(parse(b"GET /metrics HTTP/1.1\r\nHost: x"), Request::Metrics);
        assert_eq!(parse(b"GET /metrics?x=1 HTTP/1.0"), Request::Metrics);
        assert_eq!(parse(b"GET / HTTP/1.1"), Request::Refused("404 Not Found"));
        assert_eq!(
            parse(b"POST /metrics HTTP/1.1"),
            Request::Refused("405 Method Not Allowed")
        );
        for bad in [
            &b"GET /metrics"[..],
            b"GET /metrics HTTP/2",
            b"GET  /metrics HTTP/1.1",
            b"\xff\xfe",
            b"",
        ] {
            assert_eq!(parse(bad), Request::Refused("400 Bad Request"));
        }
    }

    #[test]
    fn the_head_ends_at_the_first_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.0\r\n\r\nrest"), Some(14));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\n"), Some(14));
        assert_eq!(head_end(b"GET / HTTP/1.0\r\n"), None);
    }
}
