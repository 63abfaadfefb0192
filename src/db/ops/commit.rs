//! The `commit` operation.

use crate::db::execution::Exec;
use crate::db::op_result::OpResult;
use crate::error::Result;
use crate::parser::{Kinds, Parser};

/// Records whether the client asked for a durable commit.
pub fn execute(x: &mut Exec<'_, '_>, p: &mut Parser<'_>) -> Result<OpResult> {
    if let Some(d) = p.member("durable", Kinds::BOOLEAN) {
        if d.as_bool() == Some(true) {
            x.durable = true;
        }
    }
    Ok(OpResult::Empty)
}
