//! Logs on stderr: `--log-level`, `--log-format text|json` (or `CHS_LOG_LEVEL`, `CHS_LOG_FORMAT`,
//! then `RUST_LOG`), colour only when stderr is a terminal, a timestamp on every line.

use std::fmt;
use std::io::IsTerminal as _;

use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::util;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// `TIMESTAMP LEVEL target: message key=value`, colour only on a terminal.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`, `fields`, `spans`.
    Json,
}

/// What is logged when neither `--log-level`, `CHS_LOG_LEVEL` nor `RUST_LOG` says.
const DEFAULT_FILTER: &str = "warn,librqbit=error,librqbit_core=off";

/// The filter for `--log-level LEVEL`: a bare level (`error`, `warn`, `info`, `debug`, `trace`)
/// keeps librqbit's own chatter at `error` unless it is `debug` or `trace`; anything with a `=`
/// is a full `RUST_LOG`-style directive list, taken as is.
fn filter_for(level: &str) -> anyhow::Result<EnvFilter> {
    let level = level.trim();
    let directives = match level.to_ascii_lowercase().as_str() {
        "error" | "warn" | "info" => format!("{level},librqbit=error,librqbit_core=off"),
        "debug" | "trace" => level.to_owned(),
        _ if level.contains('=') => level.to_owned(),
        _ => anyhow::bail!(
            "--log-level {level:?}: expected error, warn, info, debug, trace or a filter like `info,chs_node=debug`"
        ),
    };
    EnvFilter::try_new(&directives).map_err(|e| anyhow::anyhow!("--log-level {level:?}: {e}"))
}

/// Installs the stderr subscriber.
pub(crate) fn init(level: Option<&str>, format: LogFormat) -> anyhow::Result<()> {
    let filter = match level {
        Some(level) => filter_for(level)?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER)),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let res = match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => builder.with_ansi(false).event_format(JsonLines).try_init(),
    };
    res.map_err(|e| anyhow::anyhow!("installing the logger: {e}"))
}

/// One JSON object per event.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let mut fields = serde_json::Map::new();
        event.record(&mut JsonFields(&mut fields));
        let meta = event.metadata();
        let mut line = serde_json::Map::new();
        line.insert("timestamp".into(), util::rfc3339_ms(util::now_ms()).into());
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        if let Some(message) = fields.remove("message") {
            line.insert("message".into(), message);
        }
        if !fields.is_empty() {
            line.insert("fields".into(), fields.into());
        }
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<serde_json::Value> = scope.from_root().map(|span| span.name().into()).collect();
            if !spans.is_empty() {
                line.insert("spans".into(), spans.into());
            }
        }
        writeln!(writer, "{}", serde_json::Value::Object(line))
    }
}

/// Collects an event's fields as JSON values.
struct JsonFields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl Visit for JsonFields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().to_owned(), crate::error_text_of(value).into());
    }
}
