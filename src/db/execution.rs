//! Executing one `transact`: the operation table, per-operation results,
//! result padding and the commit-time failure element, as ovsdb-server builds them.

use crate::data::SymbolTable;
use crate::db::changes::ChangeSet;
use crate::db::database::Database;
use crate::db::op_result::{self, OpResult};
use crate::db::ops;
use crate::db::raw_op::RawOp;
use crate::db::rbac::Identity;
use crate::db::transaction::Txn;
use crate::error::OvsdbError;
use crate::parser::{Kinds, Parser};
use serde_json::Value;

/// What the caller knows that the pure engine does not.
pub struct ExecContext<'c> {
    /// Milliseconds since the transaction was first received (for `wait` timeouts).
    pub elapsed_ms: i64,
    /// Whether the calling session owns a lock (for `assert`).
    pub owns_lock: &'c dyn Fn(&str) -> bool,
    /// Whether the server is read-only (only read operations allowed).
    pub read_only: bool,
    /// Whether writes to reserved databases (`_Server`) are allowed: only the server itself may.
    pub allow_reserved: bool,
    /// The session's RBAC identity; `None` (no role) skips every RBAC check.
    pub rbac: Option<&'c Identity>,
}

impl Default for ExecContext<'static> {
    fn default() -> Self {
        ExecContext {
            elapsed_ms: 0,
            owns_lock: &|_| false,
            read_only: false,
            allow_reserved: false,
            rbac: None,
        }
    }
}

/// State shared by the operations of one transaction.
pub struct Exec<'a, 'c> {
    /// The transaction being built.
    pub txn: Txn<'a>,
    /// Named UUIDs.
    pub symtab: SymbolTable,
    /// Whether a `commit` asked for durability.
    pub durable: bool,
    /// The caller's context.
    pub ctx: &'c ExecContext<'c>,
    /// The smallest `wait` timeout seen, for re-running blocked transactions.
    pub timeout_ms: Option<i64>,
}

/// A finished transaction.
#[derive(Debug, Clone)]
pub struct Executed {
    /// The result array: one element per operation, plus one for a commit-time failure.
    pub results: Vec<OpResult>,
    /// What the transaction changed; empty when it failed or changed nothing.
    pub changes: ChangeSet,
    /// Whether the client asked for a durable commit.
    pub durable: bool,
    /// Comments of `comment` operations, joined by newlines.
    pub comment: Option<String>,
}

impl Executed {
    /// Whether every operation and the commit succeeded.
    pub fn succeeded(&self) -> bool {
        !self.results.iter().any(OpResult::is_error)
    }
}

/// The outcome of executing a transaction.
#[derive(Debug, Clone)]
pub enum Execution {
    /// The transaction finished (successfully or not).
    Done(Executed),
    /// A `wait` is not yet satisfied: run again when the database changes, or
    /// with `elapsed_ms` past `timeout_ms` to let it time out.
    Blocked {
        /// The smallest `wait` timeout, in ms since the transaction arrived; `None` for none.
        timeout_ms: Option<i64>,
    },
}

type Executor = fn(&mut Exec<'_, '_>, &mut Parser<'_>) -> Result<OpResult, OvsdbError>;

/// The operation table: name, whether it only reads, and its executor.
fn lookup(name: &str) -> Option<(bool, Executor)> {
    Some(match name {
        "insert" => (false, ops::insert::execute as Executor),
        "select" => (true, ops::select::execute),
        "update" => (false, ops::update::execute),
        "mutate" => (false, ops::mutate::execute),
        "delete" => (false, ops::delete::execute),
        "wait" => (true, ops::wait::execute),
        "commit" => (false, ops::commit::execute),
        "abort" => (true, ops::abort::execute),
        "comment" => (true, ops::comment::execute),
        "assert" => (true, ops::assert::execute),
        _ => return None,
    })
}

/// One operation of a `transact`: its JSON, or decoded straight from the
/// request's bytes (`codec::transact`).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// The operation's JSON.
    Json(Value),
    /// An operation of a plain shape, decoded from the bytes.
    Raw(RawOp),
}

/// What [`execute`] runs: a JSON operation or an [`Op`].
pub trait Operation {
    /// The operation, borrowed.
    fn view(&self) -> OpRef<'_>;
}

/// An operation, borrowed.
pub enum OpRef<'a> {
    /// The operation's JSON.
    Json(&'a Value),
    /// An operation decoded from the bytes.
    Raw(&'a RawOp),
}

impl Operation for Value {
    fn view(&self) -> OpRef<'_> {
        OpRef::Json(self)
    }
}

impl Operation for Op {
    fn view(&self) -> OpRef<'_> {
        match self {
            Op::Json(j) => OpRef::Json(j),
            Op::Raw(r) => OpRef::Raw(r),
        }
    }
}

/// Runs operation `index` (from 1) of `of` from its JSON: whether it only
/// reads, and its result or error.
fn run_json(
    x: &mut Exec<'_, '_>,
    json: &Value,
    index: usize,
    of: usize,
) -> (bool, Result<OpResult, OvsdbError>) {
    let mut p = Parser::operation(json, index, of);
    let op = p.member("op", Kinds::ID);
    let mut outcome = Ok(OpResult::Empty);
    let mut read_only = false;
    if let Some(op_name) = op.and_then(Value::as_str) {
        match lookup(op_name) {
            Some((ro, exec)) => {
                read_only = ro;
                outcome = exec(x, &mut p);
            }
            None => p.raise(format!("No operation \"{op_name}\"")),
        }
    }
    // A parse error overrides any other error; an error overrides any result.
    if let Err(e) = p.finish() {
        outcome = Err(e);
    }
    (read_only, outcome)
}

/// Executes the operations of one `transact` (the params after the database
/// name) against `db`, including the commit-time checks. Pure: `db` is not changed.
pub fn execute<O: Operation>(db: &Database, operations: &[O], ctx: &ExecContext<'_>) -> Execution {
    let mut x = Exec {
        txn: Txn::new(db),
        symtab: SymbolTable::new(),
        durable: false,
        ctx,
        timeout_ms: None,
    };
    let n = operations.len();
    let mut results: Vec<OpResult> = Vec::with_capacity(n + 1);
    let mut failed = false;
    for (i, operation) in operations.iter().enumerate() {
        let (op_name, (read_only, mut outcome)) = match operation.view() {
            OpRef::Json(json) => (
                json.get("op").and_then(Value::as_str).unwrap_or(""),
                run_json(&mut x, json, i + 1, n),
            ),
            OpRef::Raw(raw) => (
                raw.name(),
                match ops::execute_raw(&mut x, raw) {
                    Some(outcome) => (false, outcome),
                    None => run_json(&mut x, &raw.to_json(), i + 1, n),
                },
            ),
        };
        if !read_only && outcome.is_ok() {
            if ctx.read_only {
                outcome = Err(OvsdbError::new(
                    "not allowed",
                    format!(
                        "{op_name} operation not allowed when database server is in read only mode"
                    ),
                ));
            } else if db.schema.name.starts_with('_') && !ctx.allow_reserved {
                outcome = Err(OvsdbError::new(
                    "not allowed",
                    format!(
                        "{op_name} operation not allowed on table in reserved database {}",
                        db.schema.name
                    ),
                ));
            }
        }
        match outcome {
            Err(e) => {
                if e.tag == "not supported" {
                    return Execution::Blocked {
                        timeout_ms: x.timeout_ms,
                    };
                }
                results.push(OpResult::error(&e));
                failed = true;
                break;
            }
            Ok(result) => results.push(result),
        }
    }
    while results.len() < n {
        results.push(OpResult::Json(Value::Null));
    }
    let durable = x.durable;
    let comment = if x.txn.comments.is_empty() {
        None
    } else {
        Some(x.txn.comments.join("\n"))
    };
    let changes = if failed {
        ChangeSet::default()
    } else {
        match x.txn.commit() {
            Ok(cs) => cs,
            Err(e) => {
                results.push(OpResult::error(&e));
                ChangeSet::default()
            }
        }
    };
    Execution::Done(Executed {
        results,
        changes,
        durable,
        comment,
    })
}

impl Database {
    /// Executes and commits a transaction in one step, as a standalone server
    /// would with nothing else waiting: returns the result array. A `wait` that
    /// is not satisfied fails as if its timeout had passed.
    pub fn transact(&mut self, operations: &[Value]) -> Value {
        self.transact_with_changes(operations).0
    }

    /// Like [`transact`](Self::transact), also returning the change set.
    pub fn transact_with_changes<O: Operation>(&mut self, operations: &[O]) -> (Value, ChangeSet) {
        let mut ctx = ExecContext::default();
        let mut outcome = execute(self, operations, &ctx);
        if let Execution::Blocked { timeout_ms } = outcome {
            ctx.elapsed_ms = timeout_ms.unwrap_or(i64::MAX);
            outcome = execute(self, operations, &ctx);
        }
        match outcome {
            Execution::Done(done) => {
                self.apply(&done.changes);
                (op_result::to_json(done.results), done.changes)
            }
            Execution::Blocked { .. } => (
                Value::Array(vec![OvsdbError::new(
                    "not supported",
                    "triggers not supported",
                )
                .to_json()]),
                ChangeSet::default(),
            ),
        }
    }
}
