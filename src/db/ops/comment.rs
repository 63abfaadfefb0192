//! The `comment` operation.

use crate::db::execution::Exec;
use crate::db::op_result::OpResult;
use crate::error::Result;
use crate::parser::{Kinds, Parser};
use serde_json::Value;

/// Adds a comment to the transaction (written to the log with it).
pub fn execute(x: &mut Exec<'_, '_>, p: &mut Parser<'_>) -> Result<OpResult> {
    if let Some(c) = p.member("comment", Kinds::STRING).and_then(Value::as_str) {
        x.txn.comments.push(c.to_string());
    }
    Ok(OpResult::Empty)
}
