//! Frames ready together leave in one write (DESIGN.md, Session): when a
//! session's output queue holds several small frames (a commit's reply and
//! the updates of the commits before it, or the updates of several commits
//! to a monitor that fell a little behind), they are copied into one buffer
//! and sent with one system call instead of one each. A frame as big as the
//! batch limit is sent on its own, uncopied.

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedReceiver;

/// The most bytes gathered into one write: the session's high-water mark,
/// so that a batch never holds more than back-pressure lets queue anyway.
pub const BATCH_LIMIT: usize = crate::actors::session::HIGH_WATER;

/// Gathers a session's ready frames into writes.
#[derive(Default)]
pub struct WriteBatch {
    buf: Vec<u8>,
    /// A frame taken from the queue that did not fit the last batch.
    held: Option<Bytes>,
}

/// One write: a frame as it was queued, or several copied together.
pub enum Write<'a> {
    /// A single frame.
    One(Bytes),
    /// Several frames, in order.
    Many(&'a [u8]),
}

impl Write<'_> {
    /// The bytes to write.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Write::One(b) => b,
            Write::Many(b) => b,
        }
    }
}

impl WriteBatch {
    /// The next write, waiting for a frame if none is ready; `None` once
    /// the queue is closed and drained.
    pub async fn next<'a>(&'a mut self, rx: &mut UnboundedReceiver<Bytes>) -> Option<Write<'a>> {
        let first = match self.held.take() {
            Some(b) => b,
            None => rx.recv().await?,
        };
        if first.len() >= BATCH_LIMIT || rx.is_empty() {
            return Some(Write::One(first));
        }
        self.buf.clear();
        // A burst of big frames once should not pin a big buffer forever.
        if self.buf.capacity() > 2 * BATCH_LIMIT {
            self.buf.shrink_to(BATCH_LIMIT);
        }
        self.buf.extend_from_slice(&first);
        while let Ok(b) = rx.try_recv() {
            if self.buf.len() + b.len() > BATCH_LIMIT {
                self.held = Some(b);
                break;
            }
            self.buf.extend_from_slice(&b);
        }
        Some(Write::Many(&self.buf))
    }

    /// Whether a frame is held for the next write (so the writer should
    /// not flush yet).
    pub fn holds(&self) -> bool {
        self.held.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc::unbounded_channel;

    fn frame(n: usize, byte: u8) -> Bytes {
        Bytes::from(vec![byte; n])
    }

    #[tokio::test]
    async fn ready_frames_leave_together_in_order_and_big_ones_alone() {
        let (tx, mut rx) = unbounded_channel();
        let mut w = WriteBatch::default();
        // A lone frame is sent as queued.
        tx.send(frame(10, b'a')).unwrap();
        assert!(matches!(w.next(&mut rx).await, Some(Write::One(b)) if b.len() == 10));
        // Three small ready frames: one write, in order.
        for (n, c) in [(3, b'x'), (4, b'y'), (5, b'z')] {
            tx.send(frame(n, c)).unwrap();
        }
        let got = w.next(&mut rx).await.unwrap().bytes().to_vec();
        assert_eq!(got, b"xxxyyyyzzzzz");
        // Frames past the limit wait for the next write, still in order.
        let half = BATCH_LIMIT / 2 + 1;
        for c in [b'1', b'2', b'3'] {
            tx.send(frame(half, c)).unwrap();
        }
        let first = w.next(&mut rx).await.unwrap().bytes().to_vec();
        assert_eq!(first, vec![b'1'; half]);
        assert!(w.holds());
        let second = w.next(&mut rx).await.unwrap().bytes().to_vec();
        assert_eq!(second, vec![b'2'; half]);
        let third = w.next(&mut rx).await.unwrap().bytes().to_vec();
        assert_eq!(third, vec![b'3'; half]);
        // A frame of the limit or more goes alone, uncopied.
        tx.send(frame(BATCH_LIMIT, b'b')).unwrap();
        tx.send(frame(1, b'c')).unwrap();
        assert!(matches!(w.next(&mut rx).await, Some(Write::One(b)) if b.len() == BATCH_LIMIT));
        assert!(matches!(w.next(&mut rx).await, Some(Write::One(b)) if b.len() == 1));
        drop(tx);
        assert!(w.next(&mut rx).await.is_none());
    }

    #[tokio::test]
    async fn every_byte_queued_is_written_once() {
        let (tx, mut rx) = unbounded_channel();
        let mut w = WriteBatch::default();
        let mut sent = Vec::new();
        let mut seed = 7u64;
        for i in 0..2_000u32 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let n = 1 + (seed >> 33) as usize % (BATCH_LIMIT / 3);
            let b = frame(n, (i % 251) as u8);
            sent.extend_from_slice(&b);
            tx.send(b).unwrap();
        }
        drop(tx);
        let mut got = Vec::new();
        let mut batches = 0;
        while let Some(write) = w.next(&mut rx).await {
            if let Write::Many(b) = &write {
                assert!(b.len() <= BATCH_LIMIT, "a batch of {} bytes", b.len());
                batches += 1;
            }
            got.extend_from_slice(write.bytes());
        }
        assert!(batches > 0);
        assert_eq!(got, sent);
    }
}
