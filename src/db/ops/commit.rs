//! The `commit` operation.

use crate::db::execution::Exec;
use crate::error::Result;
use crate::parser::{Kinds, Parser};
use serde_json::{Map, Value};

/// Records whether the client asked for a durable commit.
pub fn execute(
    x: &mut Exec<'_, '_>,
    p: &mut Parser<'_>,
    _result: &mut Map<String, Value>,
) -> Result<()> {
    if let Some(d) = p.member("durable", Kinds::BOOLEAN) {
        if d.as_bool() == Some(true) {
            x.durable = true;
        }
    }
    Ok(())
}
