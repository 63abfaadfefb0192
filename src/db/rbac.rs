//! Role-based access control, as ovsdb-server(7) describes it and
//! ovsdb-server applies it: a connection's role names a row of `RBAC_Role`,
//! whose `permissions` map gives, per table, an `RBAC_Permission` row saying
//! which rows the client may touch (`authorization`: columns whose value
//! must equal the client's id, the common name of its certificate), whether
//! it may insert and delete them (`insert_delete`) and which columns it may
//! update or mutate (`update`).
//!
//! Pure: every check reads the committed database (the RBAC tables as they
//! were before the transaction, as ovsdb-server reads them) and the rows the
//! operation touches as the transaction sees them.

use crate::data::row::{COL_UUID, COL_VERSION};
use crate::data::{Atom, Datum, Row};
use crate::db::database::Database;
use crate::error::OvsdbError;
use crate::schema::{AtomicType, TableSchema, Type, UNLIMITED};
use std::sync::Arc;
use uuid::Uuid;

/// Who a session is to RBAC: its connection's role and the client's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The role of the connection (never empty).
    pub role: Arc<str>,
    /// The client's id: its certificate's common name; `None` when it has
    /// none (a plain connection), which ovsdb-server denies every write.
    pub id: Option<Arc<str>>,
}

impl Identity {
    /// The identity of a session, or `None` when RBAC does not apply to it:
    /// an unset or empty role means no RBAC, as in ovsdb-server.
    pub fn new(role: Option<&Arc<str>>, id: Option<&Arc<str>>) -> Option<Identity> {
        let role = role.filter(|r| !r.is_empty())?;
        Some(Identity {
            role: role.clone(),
            id: id.cloned(),
        })
    }

    /// The id as ovsdb-server prints it in its errors (C's `"%s"` of NULL).
    fn id_text(&self) -> &str {
        self.id.as_deref().unwrap_or("(null)")
    }

    /// The `permission error` ending a write that RBAC refused, worded as
    /// ovsdb-server words it for that operation.
    pub fn denied(&self, op: Write, table: &str) -> OvsdbError {
        let (id, role) = (self.id_text(), &*self.role);
        let what = match op {
            Write::Insert => format!("prohibit row insertion into table \"{table}\""),
            Write::Update => format!("prohibit modification of table \"{table}\""),
            Write::Mutate => format!("prohibit mutate operation on table \"{table}\""),
            Write::Delete => format!("prohibit row deletion from table \"{table}\""),
        };
        OvsdbError::new(
            "permission error",
            format!("RBAC rules for client \"{id}\" role \"{role}\" {what}."),
        )
    }

    /// The `permission error` refusing `convert` to any role but none.
    pub fn convert_denied(&self, db: &str) -> OvsdbError {
        OvsdbError::new(
            "permission error",
            format!(
                "RBAC rules for client \"{}\" role \"{}\" prohibit \"convert\" of database {db} \
                 (only the root role may convert databases)",
                self.id_text(),
                self.role
            ),
        )
    }
}

/// The write operations RBAC checks (each has its own error wording).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// `insert`.
    Insert,
    /// `update`.
    Update,
    /// `mutate`.
    Mutate,
    /// `delete`.
    Delete,
}

/// The `RBAC_Permission` row that governs one table for one role.
struct Permission<'a> {
    schema: &'a TableSchema,
    row: &'a Row,
}

/// The column `name` of `ts` if its type has exactly these key and value
/// types and this maximum size; ovsdb-server ignores a column of any other
/// type (`ovsdb_util_get_datum`).
fn typed_column(
    ts: &TableSchema,
    name: &str,
    key: AtomicType,
    value: Option<AtomicType>,
    max: u32,
) -> Option<usize> {
    let c = ts.column_index(name)?;
    let ty: &Type = &ts.column(c).ty;
    let matches = ty.key.atomic == key && ty.value.as_ref().map(|v| v.atomic) == value;
    (matches && ty.max == max).then_some(c)
}

/// The value of scalar (or optional) string column `name` of `row`.
fn read_string<'r>(ts: &TableSchema, row: &'r Row, name: &str) -> Option<&'r str> {
    let c = typed_column(ts, name, AtomicType::String, None, 1)?;
    field(row, c)?.first()?.as_str()
}

/// The value at `key` of string-to-string map column `name` of `row`.
fn read_map_string<'r>(ts: &TableSchema, row: &'r Row, name: &str, key: &str) -> Option<&'r str> {
    let c = typed_column(
        ts,
        name,
        AtomicType::String,
        Some(AtomicType::String),
        UNLIMITED,
    )?;
    let d = field(row, c)?;
    let i = d.find_key(&Atom::string(key))?;
    d.values.as_ref()?.get(i)?.as_str()
}

/// A column's datum; `_uuid` and `_version` hold UUIDs, never what RBAC
/// reads, so they read as absent.
fn field(row: &Row, c: usize) -> Option<&Datum> {
    match c {
        COL_UUID | COL_VERSION => None,
        _ => row.fields.get(c),
    }
}

impl<'a> Permission<'a> {
    /// The permission row of `table` for `role`: the `RBAC_Role` row named
    /// `role`, then its `permissions` entry for `table`; `None` (deny) when
    /// either is missing.
    fn lookup(db: &'a Database, role: &str, table: &str) -> Option<Permission<'a>> {
        let rt = db.schema.table_index("RBAC_Role")?;
        let role_ts = &db.schema.tables[rt];
        let name_c = role_ts.column_index("name")?;
        let role_row = db.tables[rt].rows.values().find(|r| {
            field(r, name_c).is_some_and(|d| {
                d.keys
                    .iter()
                    .any(|k| k.as_str().is_some_and(|s| !s.is_empty() && s == role))
            })
        })?;
        let pc = role_ts.column_index("permissions")?;
        let pty = &role_ts.column(pc).ty;
        let value = pty.value.as_ref()?;
        if pty.key.atomic != AtomicType::String || value.atomic != AtomicType::Uuid {
            return None;
        }
        let ref_t = db.schema.table_index(value.ref_table.as_deref()?)?;
        let perms = field(role_row, pc)?;
        let i = perms.find_key(&Atom::string(table))?;
        let uuid: Uuid = perms.values.as_ref()?.get(i)?.as_uuid()?;
        Some(Permission {
            schema: &db.schema.tables[ref_t],
            row: db.tables[ref_t].rows.get(&uuid)?,
        })
    }

    /// A string-set column of the permission row (`authorization`, `update`).
    fn string_set(&self, name: &str) -> Option<&'a Datum> {
        let c = typed_column(self.schema, name, AtomicType::String, None, UNLIMITED)?;
        field(self.row, c)
    }

    /// `insert_delete`, or `None` when it cannot be read.
    fn insert_delete(&self) -> Option<bool> {
        let c = typed_column(self.schema, "insert_delete", AtomicType::Boolean, None, 1)?;
        match field(self.row, c)?.first()? {
            Atom::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// Whether the client `id` may touch `row` (of table `ts`): an empty
    /// `authorization` entry allows everyone, `column` means the row's string
    /// `column` equals the id, `column:key` means its string map `column`
    /// has the id at `key`.
    fn authorized(&self, id: &str, ts: &TableSchema, row: &Row) -> bool {
        let Some(authorization) = self.string_set("authorization") else {
            return false;
        };
        authorization.keys.iter().any(|k| {
            let name = k.as_str().unwrap_or("");
            if name.is_empty() {
                return true;
            }
            let value = if name.contains(':') {
                // As strtok: empty pieces are skipped, a third is ignored.
                let mut parts = name.split(':').filter(|s| !s.is_empty());
                match (parts.next(), parts.next()) {
                    (Some(column), Some(key)) => read_map_string(ts, row, column, key),
                    _ => None,
                }
            } else {
                read_string(ts, row, name)
            };
            value == Some(id)
        })
    }
}

/// Whether `who` may insert `row` into table `t`.
pub fn may_insert(db: &Database, who: &Identity, t: usize, row: &Row) -> bool {
    let Some((p, id, ts)) = governing(db, who, t) else {
        return applies(db).is_none();
    };
    p.authorized(id, ts, row) && p.insert_delete() == Some(true)
}

/// Whether `who` may delete `rows` (those a `delete` matched) from table `t`.
pub fn may_delete<'r>(
    db: &Database,
    who: &Identity,
    t: usize,
    mut rows: impl Iterator<Item = &'r Row>,
) -> bool {
    let Some((p, id, ts)) = governing(db, who, t) else {
        return applies(db).is_none();
    };
    rows.all(|row| p.authorized(id, ts, row) && p.insert_delete() == Some(true))
}

/// Whether `who` may change `columns` of `rows` (those an `update` or a
/// `mutate` matched) in table `t`.
pub fn may_modify<'r>(
    db: &Database,
    who: &Identity,
    t: usize,
    columns: &[usize],
    mut rows: impl Iterator<Item = &'r Row>,
) -> bool {
    let Some((p, id, ts)) = governing(db, who, t) else {
        return applies(db).is_none();
    };
    let Some(update) = p.string_set("update") else {
        return false;
    };
    let permitted = |c: &usize| {
        let name = ts.column(*c).name.as_str();
        update.keys.iter().any(|k| k.as_str() == Some(name))
    };
    rows.all(|row| p.authorized(id, ts, row) && columns.iter().all(permitted))
}

/// `Some(())` when the database has RBAC at all (an `RBAC_Role` table);
/// without one, a role restricts nothing.
fn applies(db: &Database) -> Option<()> {
    db.schema.table_index("RBAC_Role").map(|_| ())
}

/// The permission row, client id and table schema a write to table `t` is
/// judged by; `None` when the write is allowed outright (no RBAC tables) or
/// denied outright (no id, no role row, no permission for the table), which
/// [`applies`] tells apart.
fn governing<'a>(
    db: &'a Database,
    who: &'a Identity,
    t: usize,
) -> Option<(Permission<'a>, &'a str, &'a TableSchema)> {
    applies(db)?;
    let id = who.id.as_deref()?;
    let ts = &db.schema.tables[t];
    Some((Permission::lookup(db, &who.role, &ts.name)?, id, ts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::DatabaseSchema;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    /// A schema shaped like OVN Southbound's RBAC tables and two tables to guard.
    fn schema() -> Arc<DatabaseSchema> {
        Arc::new(
            DatabaseSchema::from_json(&json!({
                "name": "T", "version": "1.0.0",
                "tables": {
                    "Chassis": {"columns": {
                        "name": {"type": "string"},
                        "hostname": {"type": "string"},
                        "external_ids": {"type": {"key": "string", "value": "string",
                                                   "min": 0, "max": "unlimited"}},
                        "nb_cfg": {"type": "integer"}},
                        "isRoot": true},
                    "Binding": {"columns": {
                        "chassis": {"type": {"key": "string", "min": 0, "max": 1}},
                        "options": {"type": {"key": "string", "value": "string",
                                              "min": 0, "max": "unlimited"}}},
                        "isRoot": true},
                    "Open": {"columns": {"x": {"type": "integer"}}, "isRoot": true},
                    "RBAC_Role": {"columns": {
                        "name": {"type": "string"},
                        "permissions": {"type": {"key": {"type": "string"},
                            "value": {"type": "uuid", "refTable": "RBAC_Permission",
                                      "refType": "weak"},
                            "min": 0, "max": "unlimited"}}},
                        "isRoot": true},
                    "RBAC_Permission": {"columns": {
                        "table": {"type": "string"},
                        "authorization": {"type": {"key": "string", "min": 0, "max": "unlimited"}},
                        "insert_delete": {"type": "boolean"},
                        "update": {"type": {"key": "string", "min": 0, "max": "unlimited"}}},
                        "isRoot": true}
                }
            }))
            .expect("schema"),
        )
    }

    fn perm(table: &str, auth: &[&str], insdel: bool, update: &[&str]) -> Value {
        json!({"op": "insert", "table": "RBAC_Permission", "uuid-name": format!("p{table}"),
               "row": {"table": table, "authorization": ["set", auth],
                       "insert_delete": insdel, "update": ["set", update]}})
    }

    /// The database with the role `controller` as OVN's northd writes it.
    fn db() -> Database {
        let mut db = Database::new(schema());
        let r = db.transact(&[
            perm("Chassis", &["name"], true, &["nb_cfg", "external_ids"]),
            perm(
                "Binding",
                &["chassis", "options:requested-chassis"],
                false,
                &["chassis"],
            ),
            perm("Open", &[""], false, &["x"]),
            json!({"op": "insert", "table": "RBAC_Role", "row": {"name": "controller",
                   "permissions": ["map", [["Chassis", ["named-uuid", "pChassis"]],
                                           ["Binding", ["named-uuid", "pBinding"]],
                                           ["Open", ["named-uuid", "pOpen"]]]]}}),
        ]);
        assert!(
            r.as_array()
                .unwrap()
                .iter()
                .all(|x| x.get("error").is_none()),
            "{r}"
        );
        db
    }

    fn who(id: Option<&str>) -> Identity {
        Identity::new(Some(&Arc::from("controller")), id.map(Arc::from).as_ref()).unwrap()
    }

    fn row(db: &Database, table: &str, fields: Value) -> Row {
        let t = db.schema.table_index(table).unwrap();
        crate::db::ops::parse_row(
            &db.schema.tables[t],
            crate::db::ops::RowJson::Json(&fields),
            None,
            Uuid::new_v4(),
        )
        .unwrap()
        .0
    }

    fn col(db: &Database, table: &str, name: &str) -> usize {
        let t = db.schema.table_index(table).unwrap();
        db.schema.tables[t].column_index(name).unwrap()
    }

    #[test]
    fn empty_or_unset_role_means_no_rbac() {
        assert_eq!(Identity::new(None, Some(&Arc::from("hv1"))), None);
        assert_eq!(Identity::new(Some(&Arc::from("")), None), None);
    }

    #[test]
    fn insert_needs_own_row_and_insert_delete() {
        let db = db();
        let t = db.schema.table_index("Chassis").unwrap();
        let own = row(&db, "Chassis", json!({"name": "hv1"}));
        let other = row(&db, "Chassis", json!({"name": "hv2"}));
        assert!(may_insert(&db, &who(Some("hv1")), t, &own));
        assert!(!may_insert(&db, &who(Some("hv1")), t, &other));
        assert!(!may_insert(&db, &who(None), t, &own));
        let b = db.schema.table_index("Binding").unwrap();
        let binding = row(&db, "Binding", json!({"chassis": "hv1"}));
        assert!(!may_insert(&db, &who(Some("hv1")), b, &binding));
    }

    #[test]
    fn unknown_role_or_table_denies_everything() {
        let db = db();
        let t = db.schema.table_index("Chassis").unwrap();
        let own = row(&db, "Chassis", json!({"name": "hv1"}));
        let stranger = Identity::new(Some(&Arc::from("nobody")), Some(&Arc::from("hv1"))).unwrap();
        assert!(!may_insert(&db, &stranger, t, &own));
        // RBAC_Role has no permission entry for itself.
        let rt = db.schema.table_index("RBAC_Role").unwrap();
        assert!(!may_delete(&db, &who(Some("hv1")), rt, std::iter::empty()));
    }

    #[test]
    fn no_rbac_tables_allows_every_role() {
        let schema = DatabaseSchema::from_file("examples/todo.ovsschema").unwrap();
        let db = Database::new(Arc::new(schema));
        let r = row(&db, "Item", json!({}));
        assert!(may_insert(&db, &who(None), 0, &r));
        assert!(may_modify(&db, &who(None), 0, &[0], [&r].into_iter()));
    }

    #[test]
    fn modify_checks_rows_and_columns() {
        let db = db();
        let t = db.schema.table_index("Chassis").unwrap();
        let own = row(&db, "Chassis", json!({"name": "hv1"}));
        let other = row(&db, "Chassis", json!({"name": "hv2"}));
        let (nb_cfg, hostname) = (
            col(&db, "Chassis", "nb_cfg"),
            col(&db, "Chassis", "hostname"),
        );
        let hv1 = who(Some("hv1"));
        assert!(may_modify(&db, &hv1, t, &[nb_cfg], [&own].into_iter()));
        assert!(!may_modify(
            &db,
            &hv1,
            t,
            &[nb_cfg, hostname],
            [&own].into_iter()
        ));
        assert!(!may_modify(
            &db,
            &hv1,
            t,
            &[nb_cfg],
            [&own, &other].into_iter()
        ));
        // No row matched: nothing is checked but the permission row itself.
        assert!(may_modify(&db, &hv1, t, &[hostname], std::iter::empty()));
    }

    #[test]
    fn map_authorization_reads_the_key() {
        let db = db();
        let b = db.schema.table_index("Binding").unwrap();
        let chassis = col(&db, "Binding", "chassis");
        let by_key = row(
            &db,
            "Binding",
            json!({"options": ["map", [["requested-chassis", "hv1"]]]}),
        );
        let by_column = row(&db, "Binding", json!({"chassis": "hv1"}));
        let neither = row(&db, "Binding", json!({"chassis": "hv2"}));
        let hv1 = who(Some("hv1"));
        assert!(may_modify(&db, &hv1, b, &[chassis], [&by_key].into_iter()));
        assert!(may_modify(
            &db,
            &hv1,
            b,
            &[chassis],
            [&by_column].into_iter()
        ));
        assert!(!may_modify(
            &db,
            &hv1,
            b,
            &[chassis],
            [&neither].into_iter()
        ));
        // insert_delete false: deleting even its own row is refused.
        assert!(!may_delete(&db, &hv1, b, [&by_column].into_iter()));
        assert!(may_delete(&db, &hv1, b, std::iter::empty()));
    }

    #[test]
    fn empty_authorization_entry_allows_everyone() {
        let db = db();
        let t = db.schema.table_index("Open").unwrap();
        let r = row(&db, "Open", json!({}));
        let x = col(&db, "Open", "x");
        assert!(may_modify(
            &db,
            &who(Some("anyone")),
            t,
            &[x],
            [&r].into_iter()
        ));
        assert!(!may_modify(&db, &who(None), t, &[x], [&r].into_iter()));
    }

    #[test]
    fn errors_are_worded_as_ovsdb_server() {
        let e = who(Some("hv1")).denied(Write::Update, "Chassis").to_json();
        assert_eq!(
            e,
            json!({"error": "permission error", "details":
                "RBAC rules for client \"hv1\" role \"controller\" prohibit modification of table \"Chassis\"."})
        );
        let e = who(None).denied(Write::Insert, "Encap").to_json();
        assert_eq!(
            e["details"],
            "RBAC rules for client \"(null)\" role \"controller\" prohibit row insertion into table \"Encap\"."
        );
    }

    #[test]
    fn a_refused_write_ends_the_transaction() {
        use crate::db::execution::{execute, ExecContext, Execution};
        let db = db();
        let hv1 = who(Some("hv1"));
        let ctx = ExecContext {
            rbac: Some(&hv1),
            ..ExecContext::default()
        };
        let ops = [
            json!({"op": "insert", "table": "Chassis", "row": {"name": "hv1"}}),
            json!({"op": "insert", "table": "Chassis", "row": {"name": "hv2"}}),
            json!({"op": "select", "table": "Chassis", "where": []}),
        ];
        let Execution::Done(done) = execute(&db, &ops, &ctx) else {
            panic!("blocked")
        };
        assert!(done.changes.is_empty());
        assert_eq!(
            done.results[1].to_json(),
            who(Some("hv1")).denied(Write::Insert, "Chassis").to_json()
        );
        assert_eq!(done.results[2].to_json(), Value::Null);
        // Mutating nothing is only a count: RBAC has nothing to refuse.
        let ops = [json!({"op": "mutate", "table": "RBAC_Role", "where": [], "mutations": []})];
        let Execution::Done(done) = execute(&db, &ops, &ctx) else {
            panic!("blocked")
        };
        assert_eq!(done.results[0].to_json(), json!({"count": 1}));
    }

    proptest! {
        /// A plain authorization column allows exactly the rows whose value
        /// is the id, whatever the names.
        #[test]
        fn plain_authorization_is_equality(name in "[a-z0-9:-]{0,6}", id in "[a-z0-9:-]{1,6}") {
            let db = db();
            let t = db.schema.table_index("Chassis").unwrap();
            let r = row(&db, "Chassis", json!({"name": name}));
            prop_assert_eq!(may_insert(&db, &who(Some(&id)), t, &r), name == id);
        }

        /// In `column:key` form, empty pieces are skipped as strtok skips them.
        #[test]
        fn map_form_skips_empty_pieces(pre in 0usize..3, mid in 1usize..3, post in 0usize..3) {
            let mut db = Database::new(schema());
            let auth = format!("{}options{}requested-chassis{}", ":".repeat(pre), ":".repeat(mid), ":".repeat(post));
            db.transact(&[
                perm("Binding", &[&auth], true, &[]),
                json!({"op": "insert", "table": "RBAC_Role", "row": {"name": "controller",
                       "permissions": ["map", [["Binding", ["named-uuid", "pBinding"]]]]}}),
            ]);
            let b = db.schema.table_index("Binding").unwrap();
            let r = row(&db, "Binding", json!({"options": ["map", [["requested-chassis", "hv1"]]]}));
            prop_assert!(may_insert(&db, &who(Some("hv1")), b, &r));
        }
    }
}
