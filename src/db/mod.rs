//! The database engine (pure): conditions, mutations, operations,
//! transactions and monitor bodies.

pub mod cancel_order;
pub mod changes;
pub mod condition;
pub mod condition_index;
pub mod convert;
pub mod database;
pub mod execution;
pub mod fanout;
pub mod monitor;
pub mod monitor_order;
pub mod monitor_routing;
pub mod mutation;
pub mod op_result;
pub mod ops;
pub mod raw_condition;
pub mod raw_op;
pub mod rbac;
pub mod row_update_writer;
pub mod transaction;
pub mod update_frame;

pub use changes::{ChangeSet, RowChange, TableChanges};
pub use database::Database;
pub use execution::{execute, ExecContext, Executed, Execution, Op};
