//! Open vSwitch's log levels (lib/vlog.c): a level per module and
//! destination, set by `-v`/`--verbose` specs and `ovs-appctl vlog/set`,
//! shown by `vlog/list`. Pure: the logging layers read the table.

use std::sync::atomic::{AtomicU8, Ordering};

/// Where log messages go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Standard error.
    Console = 0,
    /// The system log (`/dev/log`).
    Syslog = 1,
    /// The `--log-file`.
    File = 2,
}

impl Destination {
    /// Every destination, in `vlog/list`'s column order.
    pub const ALL: [Destination; 3] =
        [Destination::Console, Destination::Syslog, Destination::File];

    fn from_word(w: &str) -> Option<Destination> {
        Destination::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(w))
    }

    /// Its name in specs.
    pub fn name(self) -> &'static str {
        match self {
            Destination::Console => "console",
            Destination::Syslog => "syslog",
            Destination::File => "file",
        }
    }
}

/// A log level, least verbose first (OVS's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Nothing.
    Off = 0,
    /// Only emergencies (oxsdb logs none).
    Emer = 1,
    /// Errors.
    Err = 2,
    /// Warnings and errors.
    Warn = 3,
    /// Informational messages too (the default).
    Info = 4,
    /// Everything, debugging and tracing included.
    Dbg = 5,
}

impl Level {
    const ALL: [Level; 6] = [
        Level::Off,
        Level::Emer,
        Level::Err,
        Level::Warn,
        Level::Info,
        Level::Dbg,
    ];

    fn from_word(w: &str) -> Option<Level> {
        Level::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(w))
    }

    fn from_u8(v: u8) -> Level {
        Level::ALL.get(v as usize).copied().unwrap_or(Level::Dbg)
    }

    /// Its name as `vlog/list` shows it.
    pub fn name(self) -> &'static str {
        match self {
            Level::Off => "OFF",
            Level::Emer => "EMER",
            Level::Err => "ERR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Dbg => "DBG",
        }
    }

    /// The least verbose level at which a tracing event of `level` is logged.
    pub fn needed_for(level: &tracing::Level) -> Level {
        match *level {
            tracing::Level::ERROR => Level::Err,
            tracing::Level::WARN => Level::Warn,
            tracing::Level::INFO => Level::Info,
            _ => Level::Dbg,
        }
    }
}

/// oxsdb's log modules: the crate's top-level modules (`main` for the
/// binary, `external` for the libraries it uses), sorted as `vlog/list` shows them.
pub const MODULES: [&str; 12] = [
    "actors", "codec", "data", "db", "external", "main", "parser", "process", "replica", "schema",
    "storage", "unixctl",
];

/// The module a tracing target (a Rust module path) belongs to.
pub fn module_of(target: &str) -> usize {
    let name = match target.split_once("::") {
        Some(("oxsdb", rest)) => rest.split("::").next().unwrap_or("main"),
        None if target == "oxsdb" => "main",
        _ => "external",
    };
    MODULES
        .iter()
        .position(|m| *m == name)
        .or_else(|| MODULES.iter().position(|m| *m == "main"))
        .unwrap_or(0)
}

/// Why a spec was refused; the message is lib/vlog.c's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Two destinations in one spec.
    #[error("cannot specify multiple destinations")]
    MultipleDestinations,
    /// Two levels in one spec.
    #[error("cannot specify multiple levels")]
    MultipleLevels,
    /// Two modules in one spec.
    #[error("cannot specify multiple modules")]
    MultipleModules,
    /// A word that is none of the three.
    #[error("no destination, level, or module \"{0}\"")]
    Unknown(String),
    /// `PATTERN:` and `FACILITY:` specs.
    #[error(
        "{0} specs are not supported by oxsdb; set levels with [module][:destination][:level]"
    )]
    Unsupported(String),
}

/// One parsed spec: which module (all if `None`), which destination (all
/// if `None`), and the level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// The module index in [`MODULES`], or every module.
    pub module: Option<usize>,
    /// The destination, or every destination.
    pub destination: Option<Destination>,
    /// The level (DBG when the spec names none, as in OVS).
    pub level: Level,
}

impl std::str::FromStr for Spec {
    type Err = SpecError;

    /// Parses `[module][:destination][:level]` in any order, words
    /// separated by `:`, `,`, spaces or tabs; `ANY` stands for all.
    fn from_str(s: &str) -> Result<Spec, SpecError> {
        let mut words = s
            .split([' ', ',', ':', '\t'])
            .filter(|w| !w.is_empty())
            .peekable();
        if let Some(w) = words.peek() {
            if w.eq_ignore_ascii_case("PATTERN") || w.eq_ignore_ascii_case("FACILITY") {
                return Err(SpecError::Unsupported(w.to_ascii_uppercase()));
            }
        }
        let (mut module, mut destination, mut level) = (None, None, None);
        for w in words {
            if w.eq_ignore_ascii_case("ANY") {
                continue;
            } else if let Some(d) = Destination::from_word(w) {
                if destination.replace(d).is_some() {
                    return Err(SpecError::MultipleDestinations);
                }
            } else if let Some(l) = Level::from_word(w) {
                if level.replace(l).is_some() {
                    return Err(SpecError::MultipleLevels);
                }
            } else if let Some(m) = MODULES.iter().position(|m| m.eq_ignore_ascii_case(w)) {
                if module.replace(m).is_some() {
                    return Err(SpecError::MultipleModules);
                }
            } else {
                return Err(SpecError::Unknown(w.to_string()));
            }
        }
        Ok(Spec {
            module,
            destination,
            level: level.unwrap_or(Level::Dbg),
        })
    }
}

/// The level of every module at every destination.
pub struct Levels {
    table: [[AtomicU8; 3]; MODULES.len()],
}

impl Levels {
    /// OVS's defaults (INFO everywhere) except syslog, which is OFF until a
    /// spec turns it on, so that test runs and foreground servers do not
    /// fill the system log.
    pub fn new() -> Levels {
        let row = || {
            [
                AtomicU8::new(Level::Info as u8),
                AtomicU8::new(Level::Off as u8),
                AtomicU8::new(Level::Info as u8),
            ]
        };
        Levels {
            table: std::array::from_fn(|_| row()),
        }
    }

    /// Applies one spec.
    pub fn apply(&self, spec: &Spec) {
        for (m, row) in self.table.iter().enumerate() {
            if spec.module.is_some_and(|s| s != m) {
                continue;
            }
            for d in Destination::ALL {
                if spec.destination.is_none_or(|s| s == d) {
                    row[d as usize].store(spec.level as u8, Ordering::Relaxed);
                }
            }
        }
    }

    /// The level of `module` at `destination`.
    pub fn get(&self, module: usize, destination: Destination) -> Level {
        self.table
            .get(module)
            .map(|row| Level::from_u8(row[destination as usize].load(Ordering::Relaxed)))
            .unwrap_or(Level::Off)
    }

    /// Whether an event of `level` from `target` goes to `destination`.
    pub fn enabled(&self, target: &str, level: &tracing::Level, destination: Destination) -> bool {
        self.get(module_of(target), destination) >= Level::needed_for(level)
    }

    /// The most verbose level any module has at `destination`.
    pub fn max(&self, destination: Destination) -> Level {
        (0..MODULES.len())
            .map(|m| self.get(m, destination))
            .max()
            .unwrap_or(Level::Off)
    }

    /// `vlog/list`'s table, in lib/vlog.c's layout.
    pub fn list(&self) -> String {
        let mut s = String::from(
            "                 console    syslog    file\n                 -------    ------    ------\n",
        );
        for (m, name) in MODULES.iter().enumerate() {
            s.push_str(&format!(
                "{:<16}  {:>4}       {:>4}       {:>4}\n",
                name,
                self.get(m, Destination::Console).name(),
                self.get(m, Destination::Syslog).name(),
                self.get(m, Destination::File).name()
            ));
        }
        s
    }
}

impl Default for Levels {
    fn default() -> Levels {
        Levels::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_in_any_order() {
        let s: Spec = "console:off".parse().unwrap();
        assert_eq!(
            s,
            Spec {
                module: None,
                destination: Some(Destination::Console),
                level: Level::Off
            }
        );
        let s: Spec = "info:FILE:storage".parse().unwrap();
        assert_eq!(
            s.module,
            Some(MODULES.iter().position(|m| *m == "storage").unwrap())
        );
        assert_eq!(s.destination, Some(Destination::File));
        assert_eq!(s.level, Level::Info);
        let s: Spec = "syslog:err".parse().unwrap();
        assert_eq!(
            (s.destination, s.level),
            (Some(Destination::Syslog), Level::Err)
        );
        let s: Spec = "ANY:any:warn".parse().unwrap();
        assert_eq!(
            (s.module, s.destination, s.level),
            (None, None, Level::Warn)
        );
        // No level: DBG, as ovsdb-server's `-vfile`.
        assert_eq!("file".parse::<Spec>().unwrap().level, Level::Dbg);
    }

    #[test]
    fn bad_specs_name_the_problem() {
        assert_eq!(
            "console:file".parse::<Spec>(),
            Err(SpecError::MultipleDestinations)
        );
        assert_eq!("info:dbg".parse::<Spec>(), Err(SpecError::MultipleLevels));
        assert_eq!("db:codec".parse::<Spec>(), Err(SpecError::MultipleModules));
        assert_eq!(
            "nosuch".parse::<Spec>(),
            Err(SpecError::Unknown("nosuch".into()))
        );
        assert!(matches!(
            "PATTERN:file:%m".parse::<Spec>(),
            Err(SpecError::Unsupported(_))
        ));
    }

    #[test]
    fn levels_apply_and_list() {
        let l = Levels::new();
        assert!(l.enabled(
            "oxsdb::storage::file_log",
            &tracing::Level::INFO,
            Destination::File
        ));
        assert!(!l.enabled("oxsdb::storage", &tracing::Level::INFO, Destination::Syslog));
        l.apply(&"console:off".parse().unwrap());
        assert!(!l.enabled("oxsdb", &tracing::Level::ERROR, Destination::Console));
        l.apply(&"storage:file:dbg".parse().unwrap());
        assert!(l.enabled(
            "oxsdb::storage::etcd",
            &tracing::Level::TRACE,
            Destination::File
        ));
        assert!(!l.enabled(
            "oxsdb::actors::session",
            &tracing::Level::DEBUG,
            Destination::File
        ));
        assert!(!l.enabled("h2::proto", &tracing::Level::DEBUG, Destination::File));
        let list = l.list();
        assert!(list.starts_with("                 console    syslog    file\n"));
        assert!(
            list.contains("\nstorage            OFF        OFF        DBG\n"),
            "{list}"
        );
        assert_eq!(l.max(Destination::File), Level::Dbg);
    }

    #[test]
    fn targets_map_to_modules() {
        assert_eq!(MODULES[module_of("oxsdb")], "main");
        assert_eq!(MODULES[module_of("oxsdb::actors::database")], "actors");
        assert_eq!(MODULES[module_of("tonic::transport")], "external");
        assert_eq!(MODULES[module_of("oxsdb::nosuch")], "main");
    }
}
