//! The `abort` operation.

use crate::db::execution::Exec;
use crate::db::op_result::OpResult;
use crate::error::{OvsdbError, Result};
use crate::parser::Parser;

/// Always fails, so the transaction is rolled back.
pub fn execute(_x: &mut Exec<'_, '_>, _p: &mut Parser<'_>) -> Result<OpResult> {
    Err(OvsdbError::new("aborted", "aborted by request"))
}
