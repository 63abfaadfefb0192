//! The `assert` operation.

use crate::db::execution::Exec;
use crate::db::op_result::OpResult;
use crate::error::{OvsdbError, Result};
use crate::parser::{Kinds, Parser};
use serde_json::Value;

/// Fails with `not owner` unless the session holds the named lock.
pub fn execute(x: &mut Exec<'_, '_>, p: &mut Parser<'_>) -> Result<OpResult> {
    let Some(name) = p.member("lock", Kinds::ID).and_then(Value::as_str) else {
        return Ok(OpResult::Empty);
    };
    if (x.ctx.owns_lock)(name) {
        Ok(OpResult::Empty)
    } else {
        Err(OvsdbError::new(
            "not owner",
            format!("Asserted lock {name} not held."),
        ))
    }
}
