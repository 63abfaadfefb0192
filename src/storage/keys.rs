//! The key layout of OVSDB data in the store (kept from the original etcd
//! design):
//!
//! ```text
//! <prefix>/<service>/<database>/<table>/<uuid>   -> the row as JSON
//! <prefix>/<service>/_Server/Database/<database> -> _Server row: schema, model, ...
//! <prefix>/<service>/_/_locks/<lock-id>          -> owner (bound to a lease)
//! <prefix>/<service>/_/_comments/<timestamp>     -> comment of a transaction
//! <prefix>/<service>/_/_txn/<database>           -> fence: rewritten by every commit
//! ```
//!
//! `<database>` in a row key is the database's *key space*: its name until
//! the first online conversion that does not fit one store transaction,
//! then `<name>.<token>` (see `replica::conversion`); the `_Server` record
//! says which space is current. `<space>/_/converted` marks the commit that
//! replaced the space's schema (a table name can't begin with `_`).
//!
//! Every part is non-empty and contains no `/`. Prefixes end with `/`, so that
//! the prefix of database `OVN` does not cover database `OVN_Northbound`.
//! The database names `_` and `_Server` are reserved for the metadata above
//! and can't hold rows. UUIDs are written in lower-case hyphenated form.

use bytes::Bytes;
use uuid::Uuid;

/// The default first part of every key.
pub const DEFAULT_PREFIX: &str = "ovsdb";
/// The database part of `_Server` row keys.
pub const SERVER_DB: &str = "_Server";
/// The table part of `_Server` row keys.
pub const SERVER_DB_TABLE: &str = "Database";
/// The database part of the metadata keys (locks, comments, fences).
pub const META: &str = "_";
/// The metadata part of lock keys.
pub const LOCKS: &str = "_locks";
/// The metadata part of comment keys.
pub const COMMENTS: &str = "_comments";
/// The metadata part of fence keys.
pub const FENCES: &str = "_txn";
/// The last part of a conversion's marker key, `<space>/_/converted`.
pub const CONVERTED: &str = "converted";
/// The last part of the key that asks the other servers to hold their
/// commits while a conversion finishes, `<space>/_/converting`.
pub const CONVERTING: &str = "converting";

/// The key space `<name>.<token>` of database `name`'s rows after a
/// conversion that staged them (`token`: unique to the conversion).
pub fn space_of(name: &str, token: &str) -> String {
    format!("{name}.{token}")
}

/// Whether `space` is a key space of database `name`: its name, or
/// `<name>.<token>` (a database name can't hold a `.`).
pub fn is_space_of(name: &str, space: &str) -> bool {
    space == name
        || space
            .strip_prefix(name)
            .and_then(|t| t.strip_prefix('.'))
            .is_some_and(|t| !t.is_empty() && !t.contains('/'))
}

/// A name that can't be a part of a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?} for a storage key: {reason}")]
pub struct KeyError {
    /// Which part: `prefix`, `service`, `database`, `table`, ...
    pub what: &'static str,
    /// The rejected name.
    pub value: String,
    /// Why.
    pub reason: &'static str,
}

impl From<KeyError> for super::StorageError {
    fn from(e: KeyError) -> Self {
        super::StorageError::Invalid(e.to_string())
    }
}

fn check_part<'a>(what: &'static str, value: &'a str) -> Result<&'a str, KeyError> {
    let reason = if value.is_empty() {
        "must not be empty"
    } else if value.contains('/') {
        "must not contain '/'"
    } else {
        return Ok(value);
    };
    Err(KeyError {
        what,
        value: value.to_string(),
        reason,
    })
}

/// A database that can hold rows: a valid part and not reserved.
fn check_db(db: &str) -> Result<&str, KeyError> {
    check_part("database", db)?;
    if db == META || db == SERVER_DB {
        return Err(KeyError {
            what: "database",
            value: db.to_string(),
            reason: "the name is reserved for oxsdb's metadata keys",
        });
    }
    Ok(db)
}

/// A key of the layout, parsed; borrows from the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParsedKey<'a> {
    /// `<db>/<table>/<uuid>`: a row.
    Row {
        /// The database.
        db: &'a str,
        /// The table.
        table: &'a str,
        /// The row's UUID.
        uuid: Uuid,
    },
    /// `_Server/Database/<db>`: the `_Server` record of a database.
    ServerDb {
        /// The database.
        db: &'a str,
    },
    /// `_/_locks/<name>`: a lock's owner.
    Lock {
        /// The lock's name.
        name: &'a str,
    },
    /// `_/_comments/<timestamp>`: a transaction's comment.
    Comment {
        /// The timestamp part, as written.
        timestamp: &'a str,
    },
    /// `_/_txn/<db>`: a database's commit fence.
    Fence {
        /// The database.
        db: &'a str,
    },
    /// `<space>/_/converted`: the commit that converted the database whose
    /// rows were in `space` to a new schema.
    Converted {
        /// The key space.
        space: &'a str,
    },
    /// `<space>/_/converting`: a conversion is finishing; other servers
    /// hold their commits.
    Converting {
        /// The key space.
        space: &'a str,
    },
}

/// Builds and parses the keys of one service: `<prefix>/<service>/...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
    service: String,
    /// `<prefix>/<service>/`.
    base: String,
}

impl Keys {
    /// The keys of `service` under `prefix`.
    pub fn new(prefix: &str, service: &str) -> Result<Keys, KeyError> {
        check_part("prefix", prefix)?;
        check_part("service", service)?;
        Ok(Keys {
            prefix: prefix.to_string(),
            service: service.to_string(),
            base: format!("{prefix}/{service}/"),
        })
    }

    /// The keys of `service` under [`DEFAULT_PREFIX`].
    pub fn with_service(service: &str) -> Result<Keys, KeyError> {
        Keys::new(DEFAULT_PREFIX, service)
    }

    /// The prefix part.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The service part.
    pub fn service(&self) -> &str {
        &self.service
    }

    fn key(&self, parts: &[&str], trailing_slash: bool) -> Bytes {
        let len = self.base.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>();
        let mut s = String::with_capacity(len);
        s.push_str(&self.base);
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                s.push('/');
            }
            s.push_str(p);
        }
        if trailing_slash && !parts.is_empty() {
            s.push('/');
        }
        Bytes::from(s)
    }

    /// `<prefix>/<service>/`: every key of the service.
    pub fn service_prefix(&self) -> Bytes {
        Bytes::from(self.base.clone())
    }

    /// `<prefix>/<service>/<db>/`: every row of a database.
    pub fn db_prefix(&self, db: &str) -> Result<Bytes, KeyError> {
        Ok(self.key(&[check_db(db)?], true))
    }

    /// `<prefix>/<service>/<db>/<table>/`: every row of a table.
    pub fn table_prefix(&self, db: &str, table: &str) -> Result<Bytes, KeyError> {
        Ok(self.key(&[check_db(db)?, check_part("table", table)?], true))
    }

    /// `<prefix>/<service>/<db>/<table>/<uuid>`: a row.
    pub fn row(&self, db: &str, table: &str, uuid: &Uuid) -> Result<Bytes, KeyError> {
        let mut buf = Uuid::encode_buffer();
        let uuid = uuid.hyphenated().encode_lower(&mut buf);
        Ok(self.key(&[check_db(db)?, check_part("table", table)?, uuid], false))
    }

    /// `<prefix>/<service>/_Server/Database/`: every `_Server` record.
    pub fn server_db_prefix(&self) -> Bytes {
        self.key(&[SERVER_DB, SERVER_DB_TABLE], true)
    }

    /// `<prefix>/<service>/_Server/Database/<db>`: a database's `_Server` record.
    pub fn server_db(&self, db: &str) -> Result<Bytes, KeyError> {
        Ok(self.key(
            &[SERVER_DB, SERVER_DB_TABLE, check_part("database", db)?],
            false,
        ))
    }

    /// `<prefix>/<service>/_/_locks/`: every lock.
    pub fn locks_prefix(&self) -> Bytes {
        self.key(&[META, LOCKS], true)
    }

    /// `<prefix>/<service>/_/_locks/<name>`: a lock's owner.
    pub fn lock(&self, name: &str) -> Result<Bytes, KeyError> {
        Ok(self.key(&[META, LOCKS, check_part("lock name", name)?], false))
    }

    /// `<prefix>/<service>/_/_comments/`: every comment.
    pub fn comments_prefix(&self) -> Bytes {
        self.key(&[META, COMMENTS], true)
    }

    /// `<prefix>/<service>/_/_comments/<timestamp>`: a transaction's comment.
    /// The timestamp is the caller's; a form that sorts as bytes (e.g.
    /// zero-padded) keeps comments in time order.
    pub fn comment(&self, timestamp: &str) -> Result<Bytes, KeyError> {
        Ok(self.key(
            &[META, COMMENTS, check_part("timestamp", timestamp)?],
            false,
        ))
    }

    /// `<prefix>/<service>/<space>/_/converted`: the marker a conversion
    /// writes into the key space it replaces, so that the watchers of that
    /// space see the conversion in order with its rows.
    pub fn converted(&self, space: &str) -> Result<Bytes, KeyError> {
        Ok(self.key(&[check_db(space)?, META, CONVERTED], false))
    }

    /// `<prefix>/<service>/<space>/_/converting`: present while a
    /// conversion finishes (see `replica::conversion`).
    pub fn converting(&self, space: &str) -> Result<Bytes, KeyError> {
        Ok(self.key(&[check_db(space)?, META, CONVERTING], false))
    }

    /// `<prefix>/<service>/_/_txn/`: every fence.
    pub fn fences_prefix(&self) -> Bytes {
        self.key(&[META, FENCES], true)
    }

    /// `<prefix>/<service>/_/_txn/<db>`: a database's commit fence.
    pub fn fence(&self, db: &str) -> Result<Bytes, KeyError> {
        Ok(self.key(&[META, FENCES, check_part("database", db)?], false))
    }

    /// Parses a key of this service; `None` for anything else (another
    /// service, an unknown shape, an empty part, invalid UTF-8, a UUID not in
    /// lower-case hyphenated form). Never panics.
    pub fn parse<'a>(&self, key: &'a [u8]) -> Option<ParsedKey<'a>> {
        let rest = key.strip_prefix(self.base.as_bytes())?;
        let rest = std::str::from_utf8(rest).ok()?;
        let mut parts = rest.split('/');
        let a = parts.next()?;
        let b = parts.next()?;
        let c = parts.next()?;
        if parts.next().is_some() || a.is_empty() || b.is_empty() || c.is_empty() {
            return None;
        }
        match (a, b) {
            (SERVER_DB, SERVER_DB_TABLE) => Some(ParsedKey::ServerDb { db: c }),
            (META, LOCKS) => Some(ParsedKey::Lock { name: c }),
            (META, COMMENTS) => Some(ParsedKey::Comment { timestamp: c }),
            (META, FENCES) => Some(ParsedKey::Fence { db: c }),
            (META, _) | (SERVER_DB, _) => None,
            (space, META) if c == CONVERTED => Some(ParsedKey::Converted { space }),
            (space, META) if c == CONVERTING => Some(ParsedKey::Converting { space }),
            (_, META) => None,
            (db, table) => {
                let uuid = Uuid::try_parse(c).ok()?;
                let mut buf = Uuid::encode_buffer();
                if uuid.hyphenated().encode_lower(&mut buf) != c {
                    return None;
                }
                Some(ParsedKey::Row { db, table, uuid })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::with_service("nbdb").unwrap()
    }

    #[test]
    fn builds_the_layout() {
        let k = keys();
        let u = Uuid::parse_str("0b7b3a1e-47d1-4a8a-9a59-6e5b2f0b8c11").unwrap();
        assert_eq!(k.service_prefix(), "ovsdb/nbdb/");
        assert_eq!(
            k.db_prefix("OVN_Northbound").unwrap(),
            "ovsdb/nbdb/OVN_Northbound/"
        );
        assert_eq!(
            k.table_prefix("OVN_Northbound", "Logical_Switch").unwrap(),
            "ovsdb/nbdb/OVN_Northbound/Logical_Switch/"
        );
        assert_eq!(
            k.row("OVN_Northbound", "Logical_Switch", &u).unwrap(),
            "ovsdb/nbdb/OVN_Northbound/Logical_Switch/0b7b3a1e-47d1-4a8a-9a59-6e5b2f0b8c11"
        );
        assert_eq!(
            k.server_db("OVN_Northbound").unwrap(),
            "ovsdb/nbdb/_Server/Database/OVN_Northbound"
        );
        assert_eq!(k.server_db_prefix(), "ovsdb/nbdb/_Server/Database/");
        assert_eq!(
            k.lock("ovn_northd").unwrap(),
            "ovsdb/nbdb/_/_locks/ovn_northd"
        );
        assert_eq!(k.locks_prefix(), "ovsdb/nbdb/_/_locks/");
        assert_eq!(
            k.comment("000123").unwrap(),
            "ovsdb/nbdb/_/_comments/000123"
        );
        assert_eq!(k.comments_prefix(), "ovsdb/nbdb/_/_comments/");
        assert_eq!(
            k.fence("OVN_Northbound").unwrap(),
            "ovsdb/nbdb/_/_txn/OVN_Northbound"
        );
        assert_eq!(k.fences_prefix(), "ovsdb/nbdb/_/_txn/");
        let custom = Keys::new("x", "sbdb").unwrap();
        assert_eq!(custom.prefix(), "x");
        assert_eq!(custom.service(), "sbdb");
        assert_eq!(custom.fence("a").unwrap(), "x/sbdb/_/_txn/a");
    }

    #[test]
    fn parses_what_it_builds() {
        let k = keys();
        let u = Uuid::new_v4();
        let row = k.row("OVN_Northbound", "ACL", &u).unwrap();
        assert_eq!(
            k.parse(&row),
            Some(ParsedKey::Row {
                db: "OVN_Northbound",
                table: "ACL",
                uuid: u
            })
        );
        let key = k.server_db("OVN_Northbound").unwrap();
        assert_eq!(
            k.parse(&key),
            Some(ParsedKey::ServerDb {
                db: "OVN_Northbound"
            })
        );
        let key = k.lock("l").unwrap();
        assert_eq!(k.parse(&key), Some(ParsedKey::Lock { name: "l" }));
        let key = k.comment("17").unwrap();
        assert_eq!(k.parse(&key), Some(ParsedKey::Comment { timestamp: "17" }));
        let key = k.fence("db").unwrap();
        assert_eq!(k.parse(&key), Some(ParsedKey::Fence { db: "db" }));
        let key = k.converted("db.1f").unwrap();
        assert_eq!(key, "ovsdb/nbdb/db.1f/_/converted");
        assert_eq!(k.parse(&key), Some(ParsedKey::Converted { space: "db.1f" }));
        assert_eq!(k.parse(b"ovsdb/nbdb/db/_/other"), None);
        let key = k.converting("db").unwrap();
        assert_eq!(k.parse(&key), Some(ParsedKey::Converting { space: "db" }));
    }

    #[test]
    fn spaces_belong_to_their_database() {
        assert_eq!(space_of("OVN", "ab12"), "OVN.ab12");
        assert!(is_space_of("OVN", "OVN"));
        assert!(is_space_of("OVN", "OVN.ab12"));
        assert!(!is_space_of("OVN", "OVN."));
        assert!(!is_space_of("OVN", "OVN_Northbound"));
        assert!(!is_space_of("OVN", "OVN.a/b"));
        assert!(!is_space_of("OVN", "Other.ab12"));
    }

    #[test]
    fn rejects_bad_parts_with_clear_errors() {
        let e = Keys::new("", "nbdb").unwrap_err();
        assert_eq!(e.what, "prefix");
        assert!(e.to_string().contains("must not be empty"), "{e}");
        let e = Keys::new("a/b", "nbdb").unwrap_err();
        assert!(e.to_string().contains("must not contain '/'"), "{e}");
        assert_eq!(Keys::with_service("").unwrap_err().what, "service");
        let k = keys();
        let u = Uuid::new_v4();
        assert_eq!(k.row("db", "a/b", &u).unwrap_err().what, "table");
        assert_eq!(k.row("", "t", &u).unwrap_err().what, "database");
        assert!(k.row("_", "_locks", &u).is_err());
        assert!(k
            .db_prefix("_Server")
            .unwrap_err()
            .to_string()
            .contains("reserved"));
        assert!(k.table_prefix("db", "").is_err());
        assert!(k.lock("a/b").is_err());
        assert!(k.lock("").is_err());
        assert!(k.comment("").is_err());
        assert!(k.fence("x/y").is_err());
        assert!(k.server_db("").is_err());
        let se: super::super::StorageError = k.fence("").unwrap_err().into();
        assert!(matches!(se, super::super::StorageError::Invalid(_)));
    }

    #[test]
    fn parse_rejects_foreign_and_malformed_keys() {
        let k = keys();
        let u = Uuid::new_v4();
        let bad: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"ovsdb".to_vec(),
            b"ovsdb/nbdb".to_vec(),
            b"ovsdb/nbdb/".to_vec(),
            b"ovsdb/sbdb/_/_txn/db".to_vec(),
            b"ovsdb/nbdbx/_/_txn/db".to_vec(),
            b"ovsdb/nbdb/_/_txn/".to_vec(),
            b"ovsdb/nbdb/_/_txn/db/".to_vec(),
            b"ovsdb/nbdb/_/_txn/db/x".to_vec(),
            b"ovsdb/nbdb/_/_other/x".to_vec(),
            b"ovsdb/nbdb/_Server/Other/x".to_vec(),
            b"ovsdb/nbdb/db/table".to_vec(),
            b"ovsdb/nbdb/db//x".to_vec(),
            b"ovsdb/nbdb//t/x".to_vec(),
            b"ovsdb/nbdb/db/table/not-a-uuid".to_vec(),
            format!("ovsdb/nbdb/db/table/{}", u.simple()).into_bytes(),
            format!(
                "ovsdb/nbdb/db/table/{}",
                u.hyphenated().to_string().to_uppercase()
            )
            .into_bytes(),
            format!("ovsdb/nbdb/db/table/{}/x", u).into_bytes(),
            b"ovsdb/nbdb/db/t\xff/x".to_vec(),
            b"\xff\xfe\x00/ovsdb/nbdb/_/_txn/db".to_vec(),
        ];
        for key in bad {
            assert_eq!(k.parse(&key), None, "{:?}", String::from_utf8_lossy(&key));
        }
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes() {
        let k = keys();
        let alphabet: &[u8] = b"ovsdb/nb_-0123456789abcdef\xff\x00";
        let base = k.service_prefix();
        // A deterministic pseudo-random walk over short keys.
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 48) as usize;
            let mut key = if x % 3 == 0 {
                base.to_vec()
            } else {
                Vec::new()
            };
            let mut y = x;
            for _ in 0..len {
                y = y
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                key.push(alphabet[(y >> 33) as usize % alphabet.len()]);
            }
            let _ = k.parse(&key);
        }
    }
}
