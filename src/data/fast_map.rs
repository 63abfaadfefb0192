//! Maps on the path of every transaction (row UUIDs, unique-index values,
//! named UUIDs), hashed with foldhash rather than the standard library's
//! SipHash.
//!
//! Why: every row lookup of a transaction, its commit and its application
//! hashes a UUID, and SipHash made that about 5% of the instructions of a
//! small NB transaction and 9% of a 1,000-row insert (callgrind). foldhash
//! is seeded at random per process (and per map), so a client that picks
//! its rows' UUIDs or values still cannot aim them at one bucket.

use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// The hasher of [`FastMap`].
pub type FastHasher = foldhash::fast::RandomState;

/// A map hashed with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, FastHasher>;

/// A set hashed with [`FastHasher`].
pub type FastSet<K> = HashSet<K, FastHasher>;

/// A map keyed by row UUID.
pub type UuidMap<V> = FastMap<Uuid, V>;
