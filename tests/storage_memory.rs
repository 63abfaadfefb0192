//! The storage conformance suite against the in-memory store.

mod support;

crate::storage_conformance_tests!(oxsdb::storage::MemoryStore::new());

/// The same checks all at once on one shared store, as they will run against
/// one etcd: this keeps the checks honest about other writers.
mod shared {
    use oxsdb::storage::MemoryStore;
    use std::sync::{Arc, OnceLock};

    static STORE: OnceLock<Arc<MemoryStore>> = OnceLock::new();

    crate::storage_conformance_tests!(shared: STORE.get_or_init(MemoryStore::new).clone());
}
