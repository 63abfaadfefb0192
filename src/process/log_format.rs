//! Log lines in Open vSwitch's layout (lib/vlog.c's default patterns), so
//! that what operators grep for (`|ERR|`, `|WARN|`, a module name) and
//! log tooling keep working: `2026-12-07T06:09:10.520Z|00042|storage|INFO|message`
//! in the file (milliseconds), the same without them on the console, and
//! `ovs|00042|storage|INFO|message` for syslog.

use super::vlog::{module_of, MODULES};
use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

static NEXT: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static CURRENT: Cell<u64> = const { Cell::new(0) };
}

/// Numbers each logged event once, before the destinations format it, so
/// that one message has one number everywhere (OVS's `%N`).
pub struct Sequence;

impl<S: Subscriber> Layer<S> for Sequence {
    fn on_event(&self, _: &Event<'_>, _: Context<'_, S>) {
        CURRENT.with(|c| c.set(NEXT.fetch_add(1, Ordering::Relaxed)));
    }
}

/// Which of OVS's patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// `%D{%Y-%m-%dT%H:%M:%S.###Z}|%05N|%c|%p|%m`.
    File,
    /// `%D{%Y-%m-%dT%H:%M:%SZ}|%05N|%c|%p|%m`.
    Console,
    /// `ovs|%05N|%c|%p|%m`.
    Syslog,
}

/// Formats events in one of OVS's patterns.
#[derive(Debug, Clone, Copy)]
pub struct OvsFormat(pub Pattern);

/// `(year, month, day)` of a day counted from 1970-01-01 (proleptic Gregorian).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's algorithm: eras of 400 years from 0000-03-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `YYYY-MM-DDTHH:MM:SS[.mmm]Z` for `since_epoch_ms`.
pub fn timestamp(since_epoch_ms: u128, millis: bool) -> String {
    let secs = (since_epoch_ms / 1000) as i64;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let base = format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    );
    if millis {
        format!("{base}.{:03}Z", since_epoch_ms % 1000)
    } else {
        format!("{base}Z")
    }
}

/// OVS's name of a tracing level.
pub fn level_name(level: &tracing::Level) -> &'static str {
    match *level {
        tracing::Level::ERROR => "ERR",
        tracing::Level::WARN => "WARN",
        tracing::Level::INFO => "INFO",
        _ => "DBG",
    }
}

impl<S, N> FormatEvent<S, N> for OvsFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        match self.0 {
            Pattern::File => write!(writer, "{}|", timestamp(now, true))?,
            Pattern::Console => write!(writer, "{}|", timestamp(now, false))?,
            Pattern::Syslog => write!(writer, "ovs|")?,
        }
        let module = MODULES
            .get(module_of(meta.target()))
            .copied()
            .unwrap_or("main");
        write!(
            writer,
            "{:05}|{module}|{}|",
            CURRENT.with(Cell::get),
            level_name(meta.level())
        )?;
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_iso8601() {
        assert_eq!(timestamp(0, true), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(951_782_400_000, false), "2000-02-29T00:00:00Z");
        // 2026-12-07T06:09:10.520Z
        assert_eq!(
            timestamp(1_796_623_750_520, true),
            "2026-12-07T06:09:10.520Z"
        );
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn lines_follow_ovs_patterns() {
        use tracing_subscriber::layer::SubscriberExt;
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = buf.clone();
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .event_format(OvsFormat(Pattern::File))
            .with_writer(move || Sink(sink.clone()));
        let sub = tracing_subscriber::registry().with(Sequence).with(layer);
        tracing::subscriber::with_default(sub, || {
            tracing::warn!(target: "oxsdb::storage::file_log", db = "nb", "disk is slow");
        });
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let fields: Vec<&str> = text.trim_end().split('|').collect();
        assert_eq!(fields.len(), 5, "{text}");
        assert_eq!(fields[0].len(), "2026-12-07T06:09:10.520Z".len(), "{text}");
        assert!(fields[0].ends_with('Z'));
        assert_eq!(fields[1].len(), 5, "{text}");
        assert_eq!(fields[2], "storage");
        assert_eq!(fields[3], "WARN");
        assert_eq!(fields[4], "disk is slow db=\"nb\"");
    }

    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
