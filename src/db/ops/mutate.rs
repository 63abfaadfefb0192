//! The `mutate` operation.

use crate::db::condition::Condition;
use crate::db::execution::Exec;
use crate::db::mutation::MutationSet;
use crate::db::op_result::OpResult;
use crate::db::ops::parse_table;
use crate::db::raw_op::RawMutate;
use crate::db::rbac::{self, Write};
use crate::error::{OvsdbError, Result};
use crate::parser::{Kinds, Parser};

/// Applies the mutations to every matching row; the result is `{"count": n}`.
pub fn execute(x: &mut Exec<'_, '_>, p: &mut Parser<'_>) -> Result<OpResult> {
    let t = parse_table(x, p, "table");
    let where_json = p.member("where", Kinds::ARRAY);
    let mutations_json = p.member("mutations", Kinds::ARRAY);
    if let Some(e) = p.error() {
        return Err(e);
    }
    let (Some(t), Some(where_json), Some(mutations_json)) = (t, where_json, mutations_json) else {
        return Err(OvsdbError::new(
            "ovsdb error",
            "internal error: missing member",
        ));
    };
    let ts = &x.txn.db().schema.tables[t];
    let mutations = MutationSet::from_json(ts, mutations_json, Some(&mut x.symtab))?;
    let cond = Condition::from_json(ts, where_json, Some(&mut x.symtab))?;
    mutate_rows(x, t, &mutations, &cond)
}

/// [`execute`] for a `mutate` decoded from the bytes (see
/// [`crate::db::ops::execute_raw`]).
pub fn execute_raw(x: &mut Exec<'_, '_>, raw: &RawMutate) -> Option<Result<OpResult>> {
    let t = x.txn.db().schema.table_index(&raw.table)?;
    let ts = &x.txn.db().schema.tables[t];
    let mutations = MutationSet::from_raw(ts, &raw.mutations, Some(&mut x.symtab))?;
    let cond = Condition::from_raw(ts, &raw.condition, Some(&mut x.symtab))?;
    Some(mutate_rows(x, t, &mutations, &cond))
}

/// Applies `mutations` to the rows `cond` selects, once RBAC allows it.
fn mutate_rows(
    x: &mut Exec<'_, '_>,
    t: usize,
    mutations: &MutationSet,
    cond: &Condition,
) -> Result<OpResult> {
    let ts = &x.txn.db().schema.tables[t];
    let matches = x.txn.matching(t, cond);
    // As ovsdb-server: no mutations only counts rows, so RBAC has nothing to check.
    if let (Some(who), false) = (x.ctx.rbac, mutations.is_empty()) {
        let rows = matches.iter().filter_map(|u| x.txn.get(t, u));
        if !rbac::may_modify(x.txn.db(), who, t, &mutations.columns(), rows) {
            return Err(who.denied(Write::Mutate, &ts.name));
        }
    }
    for u in &matches {
        if let Some(row) = x.txn.modify(t, u) {
            mutations.apply(ts, row)?;
        }
    }
    Ok(OpResult::Count(matches.len()))
}
