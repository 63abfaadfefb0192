//! Logging to the three destinations of Open vSwitch daemons (console,
//! syslog, `--log-file`) through tracing, with the levels of
//! [`super::vlog::Levels`] changeable at run time (`vlog/set`) and the log
//! file reopenable (`vlog/reopen`, SIGHUP) for log rotation.

use super::log_format::{OvsFormat, Pattern, Sequence};
use super::vlog::{Destination, Level, Levels, Spec, SpecError};
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tracing::subscriber::Interest;
use tracing::Metadata;
use tracing_subscriber::filter::dynamic_filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Why logging could not be set up or changed.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The log file could not be opened.
    #[error("{path}: cannot open log file: {source} (check the directory exists and is writable, or give --log-file=FILE)")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A `-v` spec was refused.
    #[error("processing \"{spec}\": {source}")]
    Spec {
        /// The spec as given.
        spec: String,
        /// Why.
        source: SpecError,
    },
    /// `vlog/reopen` without `--log-file`.
    #[error("Logging to file not configured")]
    NoFile,
    /// A subscriber was already installed.
    #[error("logging is already set up: {0}")]
    Init(String),
}

/// The log file, reopened in place by [`LogFile::reopen`].
pub struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

fn open_log(path: &Path) -> Result<File, LoggingError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| LoggingError::Open {
            path: path.to_path_buf(),
            source,
        })
}

impl LogFile {
    /// Opens (creates, appends to) `path`.
    pub fn open(path: &Path) -> Result<LogFile, LoggingError> {
        Ok(LogFile {
            path: path.to_path_buf(),
            file: Mutex::new(open_log(path)?),
        })
    }

    /// The file's name.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file's name again: after a rotation renamed the old file,
    /// logging goes on in a new one.
    pub fn reopen(&self) -> Result<(), LoggingError> {
        let new = open_log(&self.path)?;
        *self.lock() = new;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, File> {
        // A panic while writing a log line leaves a usable file behind.
        self.file.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A writer holding the log file for one event.
pub struct LogFileWriter<'a>(MutexGuard<'a, File>);

impl Write for LogFileWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Hands the log file to the fmt layer.
#[derive(Clone)]
struct FileMaker(Arc<LogFile>);

impl<'a> MakeWriter<'a> for FileMaker {
    type Writer = LogFileWriter<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        LogFileWriter(self.0.lock())
    }
}

/// One event's text, sent to syslog when the fmt layer drops the writer.
pub struct SyslogWriter {
    priority: libc::c_int,
    buf: Vec<u8>,
}

impl Write for SyslogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Bounded: a huge event is cut, not buffered without end.
        let room = 8192usize.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&buf[..buf.len().min(room)]);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogWriter {
    fn drop(&mut self) {
        let text: Vec<u8> = self
            .buf
            .iter()
            .copied()
            .filter(|&b| b != 0 && b != b'\n')
            .collect();
        if let Ok(msg) = CString::new(text) {
            // SAFETY: both strings are NUL-terminated and the format takes one string.
            unsafe { libc::syslog(self.priority, c"%s".as_ptr(), msg.as_ptr()) };
        }
    }
}

#[derive(Clone, Copy)]
struct SyslogMaker;

impl<'a> MakeWriter<'a> for SyslogMaker {
    type Writer = SyslogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        SyslogWriter {
            priority: libc::LOG_NOTICE,
            buf: Vec::new(),
        }
    }
    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        // OVS's mapping: ERR->LOG_ERR, WARN->LOG_WARNING, INFO->LOG_NOTICE, DBG->LOG_DEBUG.
        let priority = match *meta.level() {
            tracing::Level::ERROR => libc::LOG_ERR,
            tracing::Level::WARN => libc::LOG_WARNING,
            tracing::Level::INFO => libc::LOG_NOTICE,
            _ => libc::LOG_DEBUG,
        };
        SyslogWriter {
            priority,
            buf: Vec::new(),
        }
    }
}

/// What `vlog/set`, `vlog/list` and `vlog/reopen` act on.
#[derive(Clone)]
pub struct LogControl {
    levels: Arc<Levels>,
    file: Option<Arc<LogFile>>,
}

impl LogControl {
    /// Applies a spec (`vlog/set`); new levels take effect at once.
    pub fn set(&self, spec: &str) -> Result<(), SpecError> {
        let s: Spec = spec.parse()?;
        self.levels.apply(&s);
        // Callsites cache whether they are enabled: ask them again.
        tracing::callsite::rebuild_interest_cache();
        sync_log_max_level(&self.levels);
        Ok(())
    }

    /// `vlog/list`'s table.
    pub fn list(&self) -> String {
        self.levels.list()
    }

    /// Reopens the log file (`vlog/reopen`, SIGHUP).
    pub fn reopen(&self) -> Result<(), LoggingError> {
        match &self.file {
            Some(f) => f.reopen(),
            None => Err(LoggingError::NoFile),
        }
    }

    /// The log file, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref().map(LogFile::path)
    }
}

/// A per-layer filter following the levels of one destination.
fn destination_filter<S>(levels: Arc<Levels>, d: Destination) -> impl Filter<S> + Send + Sync
where
    S: tracing::Subscriber,
{
    let for_callsite = levels.clone();
    dynamic_filter_fn(move |meta: &Metadata<'_>, _| levels.enabled(meta.target(), meta.level(), d))
        .with_callsite_filter(move |meta: &'static Metadata<'static>| {
            if for_callsite.enabled(meta.target(), meta.level(), d) {
                Interest::always()
            } else {
                Interest::never()
            }
        })
}

/// Whether some destination logs a callsite: the filter of the message
/// counter, which (as OVS's vlog) counts only messages logged somewhere.
/// Without it the counter's interest enabled every span and event of every
/// crate (h2 and tonic make several per etcd request), each then checked
/// against every destination's filter: measured at about 5% of oxsdb's CPU
/// on the etcd store.
fn any_destination_filter<S>(levels: Arc<Levels>) -> impl Filter<S> + Send + Sync
where
    S: tracing::Subscriber,
{
    let for_callsite = levels.clone();
    let anywhere = |levels: &Levels, meta: &Metadata<'_>| {
        Destination::ALL
            .iter()
            .any(|d| levels.enabled(meta.target(), meta.level(), *d))
    };
    dynamic_filter_fn(move |meta: &Metadata<'_>, _| anywhere(&levels, meta)).with_callsite_filter(
        move |meta: &'static Metadata<'static>| {
            if anywhere(&for_callsite, meta) {
                Interest::always()
            } else {
                Interest::never()
            }
        },
    )
}

/// Lets through the `log` crate only records some destination could log.
/// The bridge `try_init` installs passes every `log` record (hyper's
/// `want`, mio and rustls trace each request) to the subscriber, where each
/// was checked against every destination's filter before being dropped.
fn sync_log_max_level(levels: &Levels) {
    let most = Destination::ALL
        .iter()
        .map(|d| levels.max(*d))
        .max()
        .unwrap_or(Level::Off);
    log::set_max_level(match most {
        Level::Dbg => log::LevelFilter::Trace,
        Level::Info => log::LevelFilter::Info,
        Level::Warn => log::LevelFilter::Warn,
        Level::Err | Level::Emer => log::LevelFilter::Error,
        Level::Off => log::LevelFilter::Off,
    });
}

/// Installs the global subscriber: `specs` (the `-v` options, in order)
/// set the levels, `log_file` adds the file destination. With `RUST_LOG`
/// set, its directives also filter every destination (and the levels
/// start at DBG for console and file, so that they decide).
pub fn init(specs: &[String], log_file: Option<&Path>) -> Result<LogControl, LoggingError> {
    let levels = Arc::new(Levels::new());
    let env = std::env::var("RUST_LOG").ok().filter(|s| !s.is_empty());
    if env.is_some() {
        for s in ["console:dbg", "file:dbg"] {
            if let Ok(spec) = s.parse() {
                levels.apply(&spec);
            }
        }
    }
    for s in specs {
        let spec: Spec = s.parse().map_err(|source| LoggingError::Spec {
            spec: s.clone(),
            source,
        })?;
        levels.apply(&spec);
    }
    let file = log_file.map(LogFile::open).transpose()?.map(Arc::new);
    // Each layer's type depends on the layers under it, so the layers are
    // made where they are stacked.
    macro_rules! sequence {
        () => {
            Sequence.with_filter(any_destination_filter(levels.clone()))
        };
    }
    macro_rules! console {
        () => {
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .event_format(OvsFormat(Pattern::Console))
                .with_writer(std::io::stderr)
                .with_filter(destination_filter(levels.clone(), Destination::Console))
        };
    }
    macro_rules! syslog {
        () => {
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .event_format(OvsFormat(Pattern::Syslog))
                .with_writer(SyslogMaker)
                .with_filter(destination_filter(levels.clone(), Destination::Syslog))
        };
    }
    macro_rules! file {
        ($f:expr) => {
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .event_format(OvsFormat(Pattern::File))
                .with_writer(FileMaker($f))
                .with_filter(destination_filter(levels.clone(), Destination::File))
        };
    }
    // No `Option` layers: an absent one declares interest in every callsite,
    // which turns every span and event of every crate (h2 makes several per
    // etcd request) into a per-call check of every destination's filter.
    let registry = tracing_subscriber::registry;
    let env_filter = env.map(tracing_subscriber::EnvFilter::new);
    match (env_filter, file.clone()) {
        (Some(e), Some(f)) => registry()
            .with(e)
            .with(sequence!())
            .with(console!())
            .with(syslog!())
            .with(file!(f))
            .try_init(),
        (Some(e), None) => registry()
            .with(e)
            .with(sequence!())
            .with(console!())
            .with(syslog!())
            .try_init(),
        (None, Some(f)) => registry()
            .with(sequence!())
            .with(console!())
            .with(syslog!())
            .with(file!(f))
            .try_init(),
        (None, None) => registry()
            .with(sequence!())
            .with(console!())
            .with(syslog!())
            .try_init(),
    }
    .map_err(|e| LoggingError::Init(e.to_string()))?;
    sync_log_max_level(&levels);
    Ok(LogControl { levels, file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_file_reopens_after_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let f = LogFile::open(&path).unwrap();
        f.lock().write_all(b"one\n").unwrap();
        std::fs::rename(&path, dir.path().join("x.log.1")).unwrap();
        f.reopen().unwrap();
        f.lock().write_all(b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("x.log.1")).unwrap(),
            "one\n"
        );
    }

    #[test]
    fn reopen_without_a_file_says_so() {
        let c = LogControl {
            levels: Arc::new(Levels::new()),
            file: None,
        };
        assert_eq!(
            c.reopen().unwrap_err().to_string(),
            "Logging to file not configured"
        );
        assert!(c.set("nosuch").is_err());
        c.set("console:warn").unwrap();
        assert!(c.list().contains("WARN"));
    }
}
