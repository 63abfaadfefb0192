//! What a client is told when its transaction can't be committed: the
//! database is not open yet or its store is out of reach, the store failed
//! the commit, or the transaction lost too many races. Pure: the Database
//! actor says where things stand and sends the error.

use crate::error::OvsdbError;
use crate::replica::commit_queue::{Failure, MAX_COMMIT_RETRIES};
use crate::storage::StorageError;

/// Where a database stands with its store when a write arrives.
#[derive(Debug, Clone, Copy)]
pub struct Standing<'a> {
    /// The database.
    pub name: &'a str,
    /// The store's kind (`file`, `memory`, `etcd`).
    pub kind: &'static str,
    /// Whether the replica holds the store's data.
    pub loaded: bool,
    /// Whether the store answers.
    pub connected: bool,
    /// Why the last attempt to open the database failed, if one did.
    pub load_error: Option<&'a str>,
}

/// Why a write can't be committed now, if it can't; `unreachable` asks the
/// store why it was last found out of reach (only when that is said).
pub fn unavailable(
    s: Standing<'_>,
    unreachable: impl FnOnce() -> Option<String>,
) -> Option<OvsdbError> {
    if !s.loaded {
        // Until the first open attempt fails there is no load error yet;
        // the store's liveness already tells whether it can be reached.
        let why = match (s.load_error, s.connected) {
            (_, false) => format!(
                "it is being opened, but the {} store cannot be reached: {}",
                s.kind,
                // The store's own reason is the latest.
                unreachable()
                    .or_else(|| s.load_error.map(str::to_string))
                    .as_deref()
                    .unwrap_or("no reply yet")
            ),
            (Some(e), true) => e.to_string(),
            (None, true) => "it is being opened".to_string(),
        };
        return Some(OvsdbError::new(
            "not leader",
            format!(
                "database {} is not available on this server yet ({why}); retry, or use another server",
                s.name,
            ),
        ));
    }
    if !s.connected {
        return Some(OvsdbError::new(
            "not leader",
            format!(
                "this server has lost its connection to the {} store, so nothing can be committed \
                 (nothing was); retry, or use another server",
                s.kind
            ),
        ));
    }
    None
}

/// What a store error on a group's commit means for the commit queue, and
/// what its writers are told (`kind`: the store's kind).
pub fn store_failure(e: &StorageError, kind: &str) -> (Failure, OvsdbError) {
    match e {
        StorageError::TooLarge(m) => (
            Failure::TooLarge,
            OvsdbError::new("resources exhausted", m.clone()),
        ),
        StorageError::Unavailable(m) => (
            Failure::Other,
            OvsdbError::new(
                "not leader",
                format!(
                    "lost the {kind} store while committing ({m}): the transaction may or may not have \
                     been committed; check, retry or use another server"
                ),
            ),
        ),
        other => (
            Failure::Other,
            OvsdbError::new(
                "ovsdb error",
                format!("cannot commit to the {kind} store: {other}"),
            ),
        ),
    }
}

/// The error of a transaction that lost [`MAX_COMMIT_RETRIES`] races.
pub fn too_many_races() -> OvsdbError {
    OvsdbError::new(
        "timed out",
        format!(
            "transaction lost {MAX_COMMIT_RETRIES} commit races against other servers; try again"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn standing(loaded: bool, connected: bool, load_error: Option<&str>) -> Standing<'_> {
        Standing {
            name: "OVN_Northbound",
            kind: "etcd",
            loaded,
            connected,
            load_error,
        }
    }

    fn details(e: Option<OvsdbError>) -> Option<(String, String)> {
        let j = e?.to_json();
        Some((
            j["error"].as_str()?.to_string(),
            j["details"].as_str()?.to_string(),
        ))
    }

    #[test]
    fn a_loaded_connected_database_commits() {
        assert!(unavailable(standing(true, true, None), || unreachable!()).is_none());
        // An old load error does not matter once loaded.
        assert!(unavailable(standing(true, true, Some("old")), || None).is_none());
    }

    #[test]
    fn a_database_being_opened_says_why() {
        let not_yet = |why: &str| {
            Some((
                "not leader".to_string(),
                format!(
                    "database OVN_Northbound is not available on this server yet ({why}); \
                     retry, or use another server"
                ),
            ))
        };
        assert_eq!(
            details(unavailable(standing(false, true, None), || unreachable!())),
            not_yet("it is being opened")
        );
        assert_eq!(
            details(unavailable(
                standing(false, true, Some("bad schema")),
                || unreachable!()
            )),
            not_yet("bad schema")
        );
        let down = "it is being opened, but the etcd store cannot be reached";
        assert_eq!(
            details(unavailable(standing(false, false, Some("timeout")), || {
                Some("refused".into())
            })),
            not_yet(&format!("{down}: refused"))
        );
        assert_eq!(
            details(unavailable(standing(false, false, Some("timeout")), || {
                None
            })),
            not_yet(&format!("{down}: timeout"))
        );
        assert_eq!(
            details(unavailable(standing(false, false, None), || None)),
            not_yet(&format!("{down}: no reply yet"))
        );
    }

    #[test]
    fn a_lost_store_fails_writes() {
        let (tag, text) =
            details(unavailable(standing(true, false, None), || None)).expect("an error");
        assert_eq!(tag, "not leader");
        assert!(text.starts_with("this server has lost its connection to the etcd store"));
    }

    #[test]
    fn store_errors_map_to_failures_and_client_errors() {
        let (f, e) = store_failure(&StorageError::TooLarge("over --max-txn-ops".into()), "etcd");
        assert_eq!(f, Failure::TooLarge);
        assert_eq!(
            e.to_json(),
            json!({"error": "resources exhausted", "details": "over --max-txn-ops"})
        );
        let (f, e) = store_failure(&StorageError::Unavailable("gone".into()), "etcd");
        assert_eq!(f, Failure::Other);
        assert_eq!(e.to_json()["error"], "not leader");
        assert!(e.to_json()["details"]
            .as_str()
            .is_some_and(|d| d.starts_with("lost the etcd store while committing (gone)")));
        let (f, e) = store_failure(&StorageError::Corrupt("bad".into()), "etcd");
        assert_eq!(f, Failure::Other);
        assert_eq!(
            e.to_json(),
            json!({"error": "ovsdb error",
                   "details": "cannot commit to the etcd store: storage corrupt: bad"})
        );
        assert_eq!(too_many_races().to_json()["error"], "timed out");
    }
}
