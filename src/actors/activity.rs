//! Signs of life of a client, for the inactivity probe: as in ovsdb-server
//! (lib/jsonrpc.c, `jsonrpc_session_recv` and `jsonrpc_session_run`), any
//! bytes received, even part of a message, and output that had to wait for
//! the socket going out. A client slowly sending a large request or slowly
//! reading a large reply is alive, though it cannot answer an echo then.
//!
//! Both record the time in an [`Activity`] shared with the session actor.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The last time the peer showed it was alive, shared between tasks.
#[derive(Clone, Debug)]
pub struct Activity {
    born: Instant,
    /// Milliseconds after `born`.
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    /// Activity as of now.
    pub fn new() -> Activity {
        Activity {
            born: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Records activity now.
    pub fn touch(&self) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::SeqCst);
    }

    /// When activity was last recorded.
    pub fn last(&self) -> Instant {
        self.born + Duration::from_millis(self.last_ms.load(Ordering::SeqCst))
    }
}

impl Default for Activity {
    fn default() -> Self {
        Activity::new()
    }
}

/// A reader that records activity whenever bytes come in.
pub struct ActivityRead<R> {
    inner: R,
    activity: Activity,
}

impl<R> ActivityRead<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, activity: Activity) -> ActivityRead<R> {
        ActivityRead { inner, activity }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for ActivityRead<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

/// Writes `b` whole. Bytes the socket takes at once are not activity (they
/// may only be queued downstream, in a connection that will never recover);
/// bytes that go out after having had to wait are: the peer is reading.
pub async fn write_counting_drain<W: AsyncWrite + Unpin>(
    wr: &mut W,
    b: &[u8],
    activity: &Activity,
) -> std::io::Result<()> {
    use futures_util::FutureExt;
    let mut off = 0;
    while off < b.len() {
        let n = match wr.write(&b[off..]).now_or_never() {
            Some(r) => r?,
            None => {
                let n = wr.write(&b[off..]).await?;
                activity.touch();
                n
            }
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        off += n;
    }
    Ok(())
}
