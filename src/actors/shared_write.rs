//! A session's socket write half, shared by the Session actor and its
//! writer task (both run on the session's arbiter), so that a frame goes
//! straight to the socket when nothing waits before it.
//!
//! Handing every frame to the writer task costs a channel push and pop and a
//! task wake-up and poll per frame: in a fan-out to a thousand monitors that
//! is a thousand task hops per commit for frames the socket takes at once.
//! The writer task is still there for what the socket does not take at once
//! (back-pressure), and while it holds anything the session queues behind
//! it, so that frames never overtake each other.

use futures_util::task::noop_waker_ref;
use std::cell::{Cell, RefCell};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;

/// What a direct write did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direct {
    /// The socket took it all.
    Sent,
    /// The socket took it all but it may sit in a buffer of the stream's
    /// (TLS) until flushed: the writer task must flush.
    Unflushed,
    /// The socket took this many bytes (maybe none): the rest goes to the
    /// writer task.
    Partial(usize),
}

struct Inner {
    writer: RefCell<Pin<Box<dyn AsyncWrite>>>,
    /// The writer task waits for frames with nothing queued, nothing held
    /// and its last flush done: only then may the session write directly.
    idle: Cell<bool>,
}

/// The shared write half. Cloning shares it.
#[derive(Clone)]
pub struct SharedWrite(Rc<Inner>);

impl SharedWrite {
    /// Shares `w`; the writer task is not idle until it says so.
    pub fn new<W: AsyncWrite + 'static>(w: W) -> SharedWrite {
        SharedWrite(Rc::new(Inner {
            writer: RefCell::new(Box::pin(w)),
            idle: Cell::new(false),
        }))
    }

    /// Whether the writer task is idle (see [`SharedWrite::set_idle`]).
    pub fn idle(&self) -> bool {
        self.0.idle.get()
    }

    /// The writer task says it waits with nothing queued and nothing to
    /// flush (`true`), or the session or the writer task says frames are
    /// queued (`false`).
    pub fn set_idle(&self, idle: bool) {
        self.0.idle.set(idle);
    }

    /// Writes what the socket takes of `b` without waiting. Only while the
    /// writer task is idle: a write waiting in the writer task must not be
    /// overtaken, nor have its waker replaced by this write's.
    pub fn write_now(&self, b: &[u8]) -> Direct {
        if !self.idle() {
            return Direct::Partial(0);
        }
        let Ok(mut w) = self.0.writer.try_borrow_mut() else {
            return Direct::Partial(0);
        };
        let mut cx = Context::from_waker(noop_waker_ref());
        let mut off = 0;
        while off < b.len() {
            match w.as_mut().poll_write(&mut cx, &b[off..]) {
                Poll::Ready(Ok(n)) if n > 0 => off += n,
                // Pending, an error or a zero write: the writer task meets
                // the same with a real waker, and handles it.
                _ => return Direct::Partial(off),
            }
        }
        match w.as_mut().poll_flush(&mut cx) {
            Poll::Ready(Ok(())) => Direct::Sent,
            _ => Direct::Unflushed,
        }
    }

    /// Runs `f` on the write half; a write half in use (which cannot be on
    /// one thread, since it is never borrowed across a wait) reads as an
    /// error rather than a panic.
    fn with<T>(
        &self,
        f: impl FnOnce(Pin<&mut (dyn AsyncWrite + 'static)>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match self.0.writer.try_borrow_mut() {
            Ok(mut w) => f(w.as_mut()),
            Err(_) => Poll::Ready(Err(io::Error::other("session writer in use"))),
        }
    }
}

impl AsyncWrite for SharedWrite {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.with(|w| w.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|w| w.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|w| w.poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn writes_directly_only_while_the_writer_is_idle() {
        let (a, mut b) = tokio::io::duplex(8);
        let shared = SharedWrite::new(a);
        // Not idle yet: nothing is written.
        assert_eq!(shared.write_now(b"abc"), Direct::Partial(0));
        shared.set_idle(true);
        assert_eq!(shared.write_now(b"abc"), Direct::Sent);
        // The pipe holds 8 bytes: the rest is left for the writer task.
        assert_eq!(shared.write_now(b"defghijk"), Direct::Partial(5));
        let mut got = [0u8; 8];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"abcdefgh");
        // The writer task's own writes go through the same half, in order.
        shared.set_idle(false);
        let mut w = shared.clone();
        w.write_all(b"ijk").await.unwrap();
        let mut rest = [0u8; 3];
        b.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"ijk");
    }
}
