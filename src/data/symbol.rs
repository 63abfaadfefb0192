//! The symbol table of one transaction: `uuid-name`s and the UUIDs they stand for.

use crate::data::FastMap;
use uuid::Uuid;

/// One named UUID of a transaction.
#[derive(Debug, Clone)]
pub struct Symbol {
    /// The UUID the name stands for.
    pub uuid: Uuid,
    /// Whether an `insert` with this `uuid-name` has created the row.
    pub created: bool,
}

/// Named UUIDs of one transaction, created on first reference as ovsdb-server does.
#[derive(Debug, Default, Clone)]
pub struct SymbolTable {
    symbols: FastMap<String, Symbol>,
}

impl SymbolTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The UUID for `name`, allocating a fresh one on first use.
    pub fn reference(&mut self, name: &str) -> Uuid {
        self.entry(name).uuid
    }

    /// The symbol for `name`, created (not yet marked as inserted) if new.
    pub fn entry(&mut self, name: &str) -> &mut Symbol {
        self.symbols
            .entry(name.to_string())
            .or_insert_with(|| Symbol {
                uuid: Uuid::new_v4(),
                created: false,
            })
    }

    /// The symbol for `name`, if it was referenced or created.
    pub fn get(&self, name: &str) -> Option<&Symbol> {
        self.symbols.get(name)
    }
}
