//! Helpers shared by the command modules: opening the database, parsing ids, clocks, progress
//! bars and the async runtime.

use std::io::IsTerminal as _;
use std::path::Path;

use anyhow::Context as _;
use chs_community::{Communities, CommunityId};
use chs_store::Store;

/// Opens an existing store; a missing file is an error (never silently created).
pub(crate) fn open_existing_store(db: &Path) -> anyhow::Result<Store> {
    anyhow::ensure!(
        db.exists(),
        "no store at {} (create it with `chs store import` or `chs community create`)",
        db.display()
    );
    Store::open(db).with_context(|| format!("opening store {}", db.display()))
}

/// Opens a store, creating it and its missing parent folders if it is absent (the file with mode
/// 0600, as every store file: the community tables hold private keys in clear,
/// docs/chs-community.md; `Store::open` sees to it; new folders with mode 0700).
pub(crate) fn open_or_create_private_store(db: &Path) -> anyhow::Result<Store> {
    if !db.exists()
        && let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty() && !p.is_dir())
    {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(parent)
            .with_context(|| format!("creating the folder {} for --db {}", parent.display(), db.display()))?;
    }
    Store::open(db).with_context(|| format!("opening store {}", db.display()))
}

/// Opens the community tables of `store` (running their migrations).
pub(crate) fn communities(store: &mut Store) -> anyhow::Result<Communities> {
    Communities::open(store).with_context(|| format!("opening the community tables of {}", store.path().display()))
}

/// Parses a community id (`0x` + 66 hex digits of a compressed public key).
/// A community id: `0x` + 66 hex digits, or the community's status.app link (what the Status
/// app's "Share community" copies: `https://status.app/c/…#zQ3…`), or its `zQ3…` key.
pub(crate) fn parse_community_id(text: &str) -> anyhow::Result<CommunityId> {
    let text = text.trim();
    if !text.starts_with("0x")
        && !text.starts_with("0X")
        && let Ok(id) = CommunityId::from_share_url(text)
    {
        return Ok(id);
    }
    CommunityId::parse(text).with_context(|| {
        format!(
            "invalid community id {text:?}: expected 0x followed by 66 hex digits (a compressed public key) \
             or the community's status.app link (https://status.app/c#zQ3…)"
        )
    })
}

/// `communities` (a JSON array of community states) with each one's status.app link added.
pub(crate) fn with_share_urls(mut communities: serde_json::Value) -> serde_json::Value {
    for c in communities.as_array_mut().into_iter().flatten() {
        if let Some(id) = c["id"].as_str().and_then(|id| CommunityId::parse(id).ok()) {
            c["share_url"] = serde_json::Value::String(id.share_url());
        }
    }
    communities
}

/// Parses hex, with or without `0x`, naming `what` in the error.
pub(crate) fn parse_hex(text: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    let t = text.trim();
    let digits = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
    hex::decode(digits).map_err(|e| anyhow::anyhow!("{what} is not valid hex: {e}"))
}

/// Now, Unix seconds.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Now, Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Now, Unix nanoseconds.
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// A multi-threaded tokio runtime for the network commands.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

/// Whether stderr is a terminal (progress bars are drawn only then).
pub(crate) fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// A progress bar on stderr, hidden when stderr is not a terminal (pipes, tests, CI logs).
pub(crate) fn progress_bar(len: u64, template: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(Some(len), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` (UTC).
pub(crate) fn format_utc(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(i64::MAX / 2));
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Unix milliseconds as RFC 3339 in UTC with milliseconds (`2024-10-24T05:53:43.120Z`), the
/// `timestamp` of log and event lines.
pub(crate) fn rfc3339_ms(ms: i64) -> String {
    let secs = u64::try_from(ms.div_euclid(1000)).unwrap_or(0);
    let day = format_utc(secs).replacen(' ', "T", 1);
    format!("{day}.{:03}Z", ms.rem_euclid(1000))
}

/// A byte count for people: `512 B`, `1.5 KiB`, `3.2 MiB`, `4.0 GiB`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    #[allow(clippy::cast_precision_loss)] // shown with one decimal
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A span of seconds for people: `45s`, `3m 20s`, `2h 5m`, `6d 23h`.
pub(crate) fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// Parses a duration flag: `250ms`, `30s`, `5m`, `2h`, `7d`, `1w` (the configuration's syntax); a
/// bare number is taken as seconds (what these flags took before).
pub(crate) fn parse_duration_arg(text: &str) -> Result<std::time::Duration, String> {
    match text.trim().parse::<u64>() {
        Ok(secs) => Ok(std::time::Duration::from_secs(secs)),
        Err(_) => chs_node::config::parse_duration(text),
    }
}

/// [`parse_duration_arg`] in whole seconds (for flags whose value is used in seconds).
pub(crate) fn parse_duration_secs(text: &str) -> Result<u64, String> {
    parse_duration_arg(text).map(|d| d.as_secs())
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, u32::try_from(m).unwrap_or(1), u32::try_from(d).unwrap_or(1))
}

/// Reads an argument that may be `-` (standard input, trimmed).
pub(crate) fn arg_or_stdin(value: &str, what: &str) -> anyhow::Result<String> {
    if value == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .with_context(|| format!("reading {what} from stdin"))?;
        Ok(s.trim().to_owned())
    } else {
        Ok(value.to_owned())
    }
}

/// Where a private key comes from: never the command line (`ps` shows it to every user), but a
/// file given with a `--*-key-file` flag (`-` for stdin) or the environment variable `env`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeySource<'a> {
    /// The `--*-key-file` flag's value, if given.
    pub(crate) file: Option<&'a Path>,
    /// The flag's name, for messages (`--community-key-file`).
    pub(crate) flag: &'static str,
    /// The environment variable read when the flag is absent (`CHS_COMMUNITY_KEY`).
    pub(crate) env: &'static str,
}

impl KeySource<'_> {
    /// The key (trimmed), or `None` when neither the flag nor the environment variable is given.
    pub(crate) fn read(self) -> anyhow::Result<Option<String>> {
        let key = match self.file {
            Some(path) if path == Path::new("-") => arg_or_stdin("-", &format!("{} -", self.flag))?,
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("reading {} {}", self.flag, path.display()))?
                .trim()
                .to_owned(),
            None => match std::env::var(self.env) {
                Ok(value) => value.trim().to_owned(),
                Err(std::env::VarError::NotPresent) => return Ok(None),
                Err(std::env::VarError::NotUnicode(_)) => anyhow::bail!("{} is not valid UTF-8", self.env),
            },
        };
        anyhow::ensure!(!key.is_empty(), "the key from {} is empty", self.origin());
        Ok(Some(key))
    }

    /// The key; an error naming the flag and the variable when neither is given.
    pub(crate) fn required(self) -> anyhow::Result<String> {
        self.read()?
            .with_context(|| format!("no key given: pass {} PATH (or - for stdin), or set {}", self.flag, self.env))
    }

    /// Where the key was read from, for messages.
    pub(crate) fn origin(self) -> String {
        match self.file {
            Some(path) => format!("{} {}", self.flag, path.display()),
            None => self.env.to_owned(),
        }
    }
}

/// Fails when more than one of `files` reads stdin (`-`).
pub(crate) fn one_stdin(files: &[(&str, Option<&Path>)]) -> anyhow::Result<()> {
    let stdin: Vec<&str> = files.iter().filter(|(_, f)| *f == Some(Path::new("-"))).map(|(flag, _)| *flag).collect();
    anyhow::ensure!(stdin.len() <= 1, "only one key can be read from stdin, but {} all say -", stdin.join(" and "));
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn format_utc_known_dates() {
        assert_eq!(super::format_utc(0), "1970-01-01 00:00:00");
        assert_eq!(super::format_utc(1_729_749_223), "2024-10-24 05:53:43");
        assert_eq!(super::format_utc(951_782_400), "2000-02-29 00:00:00");
    }

    #[test]
    fn rfc3339_ms_known_dates() {
        assert_eq!(super::rfc3339_ms(1_729_749_223_120), "2024-10-24T05:53:43.120Z");
        assert_eq!(super::rfc3339_ms(5), "1970-01-01T00:00:00.005Z");
    }

    #[test]
    fn human_units() {
        assert_eq!(super::human_bytes(512), "512 B");
        assert_eq!(super::human_bytes(1536), "1.5 KiB");
        assert_eq!(super::human_bytes(4 << 30), "4.0 GiB");
        assert_eq!(super::human_duration(45), "45s");
        assert_eq!(super::human_duration(200), "3m 20s");
        assert_eq!(super::human_duration(7 * 86_400 - 1), "6d 23h");
    }

    #[test]
    fn duration_flags_take_the_config_syntax_and_bare_seconds() {
        assert_eq!(super::parse_duration_arg("7d"), Ok(std::time::Duration::from_secs(604_800)));
        assert_eq!(super::parse_duration_arg("604800"), Ok(std::time::Duration::from_secs(604_800)));
        assert_eq!(super::parse_duration_arg("250ms"), Ok(std::time::Duration::from_millis(250)));
        assert!(super::parse_duration_arg("7 days").is_err());
    }
}
