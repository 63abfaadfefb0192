//! Schemas: `.ovsschema` parsing, validation and serialization (pure).

pub mod column;
pub mod database;
pub mod table;
pub mod types;

pub use column::ColumnSchema;
pub use database::DatabaseSchema;
pub use table::TableSchema;
pub use types::{AtomicType, BaseType, RefType, Type, UNLIMITED};
