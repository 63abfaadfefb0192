//! The `abort` operation.

use crate::db::execution::Exec;
use crate::error::{OvsdbError, Result};
use crate::parser::Parser;
use serde_json::{Map, Value};

/// Always fails, so the transaction is rolled back.
pub fn execute(
    _x: &mut Exec<'_, '_>,
    _p: &mut Parser<'_>,
    _result: &mut Map<String, Value>,
) -> Result<()> {
    Err(OvsdbError::new("aborted", "aborted by request"))
}
