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

    /// Binds `name` to the row an `insert` creates and returns that row's
    /// UUID: `uuid` when the insert gives one (the name then stands for
    /// it), else the one the name stands for already. The caller marks the
    /// symbol created once the row is in.
    pub fn bind(&mut self, name: &str, uuid: Option<Uuid>) -> Uuid {
        let sym = self.entry(name);
        if let Some(u) = uuid {
            sym.uuid = u;
        }
        sym.uuid
    }

    /// Marks the row `name` stands for as created by an `insert`.
    pub fn mark_created(&mut self, name: &str) {
        match self.symbols.get_mut(name) {
            Some(sym) => sym.created = true,
            None => self.entry(name).created = true,
        }
    }

    /// Whether an `insert` has already created the row `name` stands for.
    pub fn is_created(&self, name: &str) -> bool {
        self.symbols.get(name).is_some_and(|s| s.created)
    }

    /// The symbol for `name`, if it was referenced or created.
    pub fn get(&self, name: &str) -> Option<&Symbol> {
        self.symbols.get(name)
    }
}
