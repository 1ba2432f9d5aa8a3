//! `GET /metrics`: Prometheus text exposition (version 0.0.4) of what the node's signals and its
//! status snapshot say. Names follow the Prometheus conventions: `chs_` prefix, base units
//! (`_seconds`, `_bytes`), `_total` on counters.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

/// Upper bounds of the duration histograms, seconds: a build, a download or a store catch-up takes
/// from a fraction of a second to minutes (an hour is the last finite bound).
const DURATION_BUCKETS: [f64; 12] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

/// Distinct `reason` labels kept; more fall into `other` (a hostile peer must not grow the output).
const MAX_REASONS: usize = 32;

/// A Prometheus histogram with [`DURATION_BUCKETS`].
#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; DURATION_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, value: f64) {
        for (bound, count) in DURATION_BUCKETS.iter().zip(self.counts.iter_mut()) {
            if value <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += value;
    }
}

/// Counters and histograms fed by signals (as their JSON form, so that new signal kinds need no
/// change here).
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    messages_captured: BTreeMap<String, u64>,
    archives_built: BTreeMap<String, u64>,
    archive_builds: BTreeMap<(String, &'static str), u64>,
    archives_downloaded: BTreeMap<String, u64>,
    archive_imports_failed: BTreeMap<String, u64>,
    downloads: BTreeMap<(String, &'static str), u64>,
    fetched_bytes: BTreeMap<String, u64>,
    magnetlinks: BTreeMap<(&'static str, String), u64>,
    magnetlinks_published: BTreeMap<String, u64>,
    download_duration: BTreeMap<String, Histogram>,
    build_duration: BTreeMap<String, Histogram>,
    store_catch_ups: BTreeMap<(String, String, &'static str), u64>,
    store_fetched: BTreeMap<(String, String), u64>,
    store_peer_failures: BTreeMap<(String, String), u64>,
    store_catch_up_duration: BTreeMap<String, Histogram>,
    signals_lagged: u64,
}

/// A short label from a free-text reason: the words before the first `:`, in snake_case.
fn reason_label(reason: &str) -> String {
    let head = reason.split(':').next().unwrap_or("").trim().to_ascii_lowercase();
    let mut label: String = head.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    label.truncate(48);
    let label = label.trim_matches('_').to_owned();
    if label.is_empty() { "unknown".to_owned() } else { label }
}

fn add<K: Ord>(map: &mut BTreeMap<K, u64>, key: K, n: u64) {
    *map.entry(key).or_insert(0) += n;
}

/// The `elapsed_ms` of a signal, in seconds.
fn elapsed_seconds(event: &Value) -> f64 {
    #[allow(clippy::cast_precision_loss)] // milliseconds of a build, download or query
    let seconds = event["elapsed_ms"].as_u64().unwrap_or(0) as f64 / 1000.0;
    seconds
}

/// The `what` of a store catch-up: `description`, `shard-info`, `magnetlinks` or `channels`
/// (anything else is `other`).
fn catch_up_label(event: &Value) -> String {
    match event["what"].as_str() {
        Some(what @ ("description" | "shard-info" | "magnetlinks" | "channels")) => what.to_owned(),
        _ => "other".to_owned(),
    }
}

impl Metrics {
    /// Counts one signal (its JSON form: `{"type": "...", ...}`).
    pub(crate) fn observe(&mut self, event: &Value) {
        let community = event["community_id"].as_str().unwrap_or("").to_owned();
        let n = |key: &str| event[key].as_u64().unwrap_or(0);
        match event["type"].as_str().unwrap_or("") {
            "messagesCaptured" => add(&mut self.messages_captured, community, n("messages")),
            "historyArchivesCreated" => {
                let built = event["archive_ids"].as_array().map_or(0, Vec::len) as u64;
                add(&mut self.archives_built, community.clone(), built);
                self.build_duration.entry(community.clone()).or_default().observe(elapsed_seconds(event));
                add(&mut self.archive_builds, (community, "created"), 1);
            }
            "noHistoryArchivesCreated" => {
                self.build_duration.entry(community.clone()).or_default().observe(elapsed_seconds(event));
                add(&mut self.archive_builds, (community, "empty"), 1);
            }
            "storeCatchUp" => {
                let what = catch_up_label(event);
                let result = if event["answered"] == true { "answered" } else { "failed" };
                add(&mut self.store_catch_ups, (community.clone(), what.clone(), result), 1);
                add(&mut self.store_fetched, (community.clone(), what.clone()), n("messages"));
                add(&mut self.store_peer_failures, (community.clone(), what), n("failed_peers"));
                self.store_catch_up_duration.entry(community).or_default().observe(elapsed_seconds(event));
            }
            "historyArchivesFailed" => add(&mut self.archive_builds, (community, "failed"), 1),
            "historyArchiveDownloaded" => add(&mut self.archives_downloaded, community, 1),
            "historyArchiveImportFailed" => add(&mut self.archive_imports_failed, community, 1),
            "downloadingHistoryArchivesFinished" => {
                add(&mut self.fetched_bytes, community.clone(), n("bytes_received"));
                self.download_duration.entry(community.clone()).or_default().observe(elapsed_seconds(event));
                add(&mut self.downloads, (community, "finished"), 1);
            }
            "historyArchiveDownloadFailed" => add(&mut self.downloads, (community, "failed"), 1),
            "magnetlinkPublished" => add(&mut self.magnetlinks_published, community, 1),
            "magnetlinkAccepted" => add(&mut self.magnetlinks, ("accepted", String::new()), 1),
            "magnetlinkRejected" => {
                let reason = self.bounded_reason(event["reason"].as_str().unwrap_or(""));
                add(&mut self.magnetlinks, ("rejected", reason), 1);
            }
            "magnetlinksDropped" => {
                let reason = self.bounded_reason(event["last_reason"].as_str().unwrap_or(""));
                add(&mut self.magnetlinks, ("rejected", reason), n("rejected") + n("lost"));
            }
            _ => {}
        }
    }

    /// The signal printer fell behind by `lost` signals (they are not counted above).
    pub(crate) fn lagged(&mut self, lost: u64) {
        self.signals_lagged += lost;
    }

    fn bounded_reason(&self, reason: &str) -> String {
        let label = reason_label(reason);
        let known = self.magnetlinks.keys().filter(|(verdict, _)| *verdict == "rejected").count();
        if known >= MAX_REASONS && !self.magnetlinks.contains_key(&("rejected", label.clone())) {
            "other".to_owned()
        } else {
            label
        }
    }

    /// The exposition: these counters plus gauges read from the status `snapshot` (what
    /// `status.json` holds).
    pub(crate) fn render(&self, snapshot: &Value) -> String {
        let mut out = String::new();
        let communities: Vec<&Value> =
            snapshot["communities"].as_array().map(|a| a.iter().collect()).unwrap_or_default();

        family(&mut out, "chs_up", "gauge", "1 while the node runs.");
        let _ = writeln!(out, "chs_up 1");
        family(&mut out, "chs_start_time_seconds", "gauge", "When the node started, Unix seconds.");
        #[allow(clippy::cast_precision_loss)] // Unix milliseconds
        let start = snapshot["started_at_ms"].as_i64().unwrap_or(0) as f64 / 1000.0;
        let _ = writeln!(out, "chs_start_time_seconds {start}");

        family(&mut out, "chs_messages_captured_total", "counter", "Live community messages stored (control node).");
        counters(&mut out, "chs_messages_captured_total", &self.messages_captured, |c| vec![("community", c.clone())]);
        family(&mut out, "chs_archives_built_total", "counter", "Archives built (control node).");
        counters(&mut out, "chs_archives_built_total", &self.archives_built, |c| vec![("community", c.clone())]);
        family(
            &mut out,
            "chs_archive_builds_total",
            "counter",
            "Archive build cycles by result (created, empty, failed).",
        );
        counters(&mut out, "chs_archive_builds_total", &self.archive_builds, |(c, r)| {
            vec![("community", c.clone()), ("result", (*r).to_owned())]
        });
        family(&mut out, "chs_archives_downloaded_total", "counter", "Archives downloaded (member).");
        counters(&mut out, "chs_archives_downloaded_total", &self.archives_downloaded, |c| {
            vec![("community", c.clone())]
        });
        family(&mut out, "chs_archive_imports_failed_total", "counter", "Downloaded archives that failed to import.");
        counters(&mut out, "chs_archive_imports_failed_total", &self.archive_imports_failed, |c| {
            vec![("community", c.clone())]
        });
        family(&mut out, "chs_downloads_total", "counter", "Magnet link downloads by result (finished, failed).");
        counters(&mut out, "chs_downloads_total", &self.downloads, |(c, r)| {
            vec![("community", c.clone()), ("result", (*r).to_owned())]
        });
        family(&mut out, "chs_fetched_bytes_total", "counter", "Bytes received by finished downloads.");
        counters(&mut out, "chs_fetched_bytes_total", &self.fetched_bytes, |c| vec![("community", c.clone())]);
        family(&mut out, "chs_seeded_bytes_total", "counter", "Bytes uploaded to peers by the seeded torrent.");
        for c in &communities {
            if let Some(bytes) = c["seeding"]["uploaded_bytes"].as_u64() {
                sample(&mut out, "chs_seeded_bytes_total", &[("community", str_of(c, "id"))], bytes);
            }
        }
        family(
            &mut out,
            "chs_magnetlinks_total",
            "counter",
            "Magnetlinks received by verdict (accepted, rejected) and reason.",
        );
        counters(&mut out, "chs_magnetlinks_total", &self.magnetlinks, |(v, r)| {
            let mut labels = vec![("verdict", (*v).to_owned())];
            if !r.is_empty() {
                labels.push(("reason", r.clone()));
            }
            labels
        });
        family(&mut out, "chs_magnetlinks_published_total", "counter", "Signed magnetlinks published (control node).");
        counters(&mut out, "chs_magnetlinks_published_total", &self.magnetlinks_published, |c| {
            vec![("community", c.clone())]
        });
        family(&mut out, "chs_signals_lagged_total", "counter", "Signals the API missed because it fell behind.");
        let _ = writeln!(out, "chs_signals_lagged_total {}", self.signals_lagged);

        family(&mut out, "chs_download_duration_seconds", "histogram", "Time from a download's start to its import.");
        histograms(&mut out, "chs_download_duration_seconds", &self.download_duration);
        family(
            &mut out,
            "chs_archive_build_duration_seconds",
            "histogram",
            "Time an archive build took (reading the store, writing the archives), control node.",
        );
        histograms(&mut out, "chs_archive_build_duration_seconds", &self.build_duration);

        family(
            &mut out,
            "chs_store_catch_ups_total",
            "counter",
            "Store v3 catch-ups this node ran (what: description, shard-info, magnetlinks, channels) by result (answered, failed).",
        );
        counters(&mut out, "chs_store_catch_ups_total", &self.store_catch_ups, |(c, w, r)| {
            vec![("community", c.clone()), ("what", w.clone()), ("result", (*r).to_owned())]
        });
        family(&mut out, "chs_store_fetched_messages_total", "counter", "Messages fetched by store catch-ups.");
        counters(&mut out, "chs_store_fetched_messages_total", &self.store_fetched, |(c, w)| {
            vec![("community", c.clone()), ("what", w.clone())]
        });
        family(
            &mut out,
            "chs_store_peer_failures_total",
            "counter",
            "Store nodes that failed a catch-up (lied, stalled, refused, unreachable).",
        );
        counters(&mut out, "chs_store_peer_failures_total", &self.store_peer_failures, |(c, w)| {
            vec![("community", c.clone()), ("what", w.clone())]
        });
        family(&mut out, "chs_store_catch_up_duration_seconds", "histogram", "Time a store catch-up took.");
        histograms(&mut out, "chs_store_catch_up_duration_seconds", &self.store_catch_up_duration);
        let server = &snapshot["store_server"];
        if server.is_object() {
            let get = |key: &str| server[key].as_u64().unwrap_or(0);
            family(
                &mut out,
                "chs_store_server_requests_total",
                "counter",
                "Store v3 queries received (streams opened).",
            );
            let _ = writeln!(out, "chs_store_server_requests_total {}", get("requests"));
            family(&mut out, "chs_store_server_pages_served_total", "counter", "Store v3 pages answered (200).");
            let _ = writeln!(out, "chs_store_server_pages_served_total {}", get("pages_served"));
            family(&mut out, "chs_store_server_messages_served_total", "counter", "Messages in the pages answered.");
            let _ = writeln!(out, "chs_store_server_messages_served_total {}", get("messages_served"));
            family(
                &mut out,
                "chs_store_server_refused_total",
                "counter",
                "Store v3 queries refused, by reason (bad_request 400, busy 429, backend_failure 503, unread).",
            );
            for (reason, key) in [
                ("bad_request", "bad_requests"),
                ("busy", "busy"),
                ("backend_failure", "backend_failures"),
                ("unread", "unread"),
            ] {
                sample(&mut out, "chs_store_server_refused_total", &[("reason", reason.to_owned())], get(key));
            }
        }

        family(&mut out, "chs_peers", "gauge", "Connected peers by protocol.");
        let waku = super::connected_waku_peers(&snapshot["waku_peers"]);
        sample(&mut out, "chs_peers", &[("protocol", "waku".to_owned())], waku);
        let bittorrent: u64 = communities.iter().filter_map(|c| c["seeding"]["peers"].as_u64()).sum();
        sample(&mut out, "chs_peers", &[("protocol", "bittorrent".to_owned())], bittorrent);
        family(&mut out, "chs_archives", "gauge", "Archives in the community's archive folder.");
        for c in &communities {
            sample(&mut out, "chs_archives", &[("community", str_of(c, "id"))], c["archives"].as_u64().unwrap_or(0));
        }
        family(&mut out, "chs_stored_messages", "gauge", "Messages stored on the community's topics.");
        for c in &communities {
            let n = c["stored_messages"].as_u64().unwrap_or(0);
            sample(&mut out, "chs_stored_messages", &[("community", str_of(c, "id"))], n);
        }
        family(&mut out, "chs_download_bytes", "gauge", "The running download: bytes done and total.");
        for c in &communities {
            if let Some(d) = c["download"].as_object() {
                for (kind, key) in [("done", "bytes_done"), ("total", "bytes_total")] {
                    let labels = [("community", str_of(c, "id")), ("kind", kind.to_owned())];
                    sample(&mut out, "chs_download_bytes", &labels, d.get(key).and_then(Value::as_u64).unwrap_or(0));
                }
            }
        }
        out
    }
}

/// The samples of one histogram family, one histogram per community.
fn histograms(out: &mut String, name: &str, map: &BTreeMap<String, Histogram>) {
    for (community, h) in map {
        let base = [("community", community.clone())];
        for (bound, count) in DURATION_BUCKETS.iter().zip(h.counts) {
            let mut labels = base.to_vec();
            labels.push(("le", bound.to_string()));
            sample(out, &format!("{name}_bucket"), &labels, count);
        }
        let mut labels = base.to_vec();
        labels.push(("le", "+Inf".to_owned()));
        sample(out, &format!("{name}_bucket"), &labels, h.count);
        let _ = writeln!(out, "{name}_sum{} {}", label_text(&base), h.sum);
        sample(out, &format!("{name}_count"), &base, h.count);
    }
}

fn str_of(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or("").to_owned()
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn counters<K>(
    out: &mut String,
    name: &str,
    map: &BTreeMap<K, u64>,
    labels: impl Fn(&K) -> Vec<(&'static str, String)>,
) {
    for (key, value) in map {
        sample(out, name, &labels(key), *value);
    }
}

fn sample(out: &mut String, name: &str, labels: &[(&str, String)], value: u64) {
    let _ = writeln!(out, "{name}{} {value}", label_text(labels));
}

/// `{a="x",b="y"}` with Prometheus escaping (`\`, `"` and newlines), or nothing without labels.
fn label_text(labels: &[(&str, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")))
        .collect();
    format!("{{{}}}", parts.join(","))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Metrics, reason_label};

    #[test]
    fn signals_become_prometheus_samples() {
        let mut m = Metrics::default();
        let c = "0x02aa";
        m.observe(&json!({"type": "messagesCaptured", "community_id": c, "messages": 1}));
        m.observe(&json!({"type": "messagesCaptured", "community_id": c, "messages": 1}));
        m.observe(&json!({"type": "historyArchivesCreated", "community_id": c, "archive_ids": ["a", "b"]}));
        m.observe(&json!({"type": "magnetlinkRejected", "reason": "stale clock: 5 < 7"}));
        m.observe(&json!({"type": "downloadingHistoryArchivesFinished", "community_id": c, "bytes_received": 300, "elapsed_ms": 1500}));
        let text = m.render(&json!({"waku_peers": 3, "communities": [{"id": c, "archives": 2, "seeding": {"peers": 1, "uploaded_bytes": 9}}]}));
        assert!(text.contains("chs_messages_captured_total{community=\"0x02aa\"} 2"), "{text}");
        assert!(text.contains("chs_archives_built_total{community=\"0x02aa\"} 2"), "{text}");
        assert!(text.contains("chs_magnetlinks_total{verdict=\"rejected\",reason=\"stale_clock\"} 1"), "{text}");
        assert!(text.contains("chs_fetched_bytes_total{community=\"0x02aa\"} 300"), "{text}");
        assert!(text.contains("chs_download_duration_seconds_bucket{community=\"0x02aa\",le=\"1\"} 0"), "{text}");
        assert!(text.contains("chs_download_duration_seconds_bucket{community=\"0x02aa\",le=\"2.5\"} 1"), "{text}");
        assert!(text.contains("chs_download_duration_seconds_sum{community=\"0x02aa\"} 1.5"), "{text}");
        assert!(text.contains("chs_peers{protocol=\"waku\"} 3"), "{text}");
        assert!(text.contains("chs_seeded_bytes_total{community=\"0x02aa\"} 9"), "{text}");
        // Every sample line belongs to a family announced with # TYPE.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or("");
            let family = name.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count");
            assert!(text.contains(&format!("# TYPE {family} ")) || text.contains(&format!("# TYPE {name} ")), "{line}");
        }
    }

    /// Issue 21: archive build durations as a histogram, store v3 catch-ups (client) and the
    /// store server's counters.
    #[test]
    fn build_durations_and_store_queries_become_samples() {
        let mut m = Metrics::default();
        let c = "0x02aa";
        m.observe(
            &json!({"type": "historyArchivesCreated", "community_id": c, "archive_ids": ["a"], "elapsed_ms": 4000}),
        );
        m.observe(&json!({"type": "noHistoryArchivesCreated", "community_id": c, "elapsed_ms": 250}));
        m.observe(&json!({"type": "storeCatchUp", "community_id": c, "what": "channels", "messages": 25, "pages": 3,
            "failed_peers": 1, "answered": true, "elapsed_ms": 700}));
        m.observe(&json!({"type": "storeCatchUp", "community_id": c, "what": "magnetlinks", "messages": 0, "pages": 0,
            "failed_peers": 2, "answered": false, "elapsed_ms": 20000}));
        let server = json!({"requests": 9, "pages_served": 7, "messages_served": 70, "bad_requests": 1, "busy": 0,
            "backend_failures": 0, "unread": 1});
        let text = m.render(&json!({"store_server": server}));
        for expected in [
            "chs_archive_build_duration_seconds_bucket{community=\"0x02aa\",le=\"0.1\"} 0",
            "chs_archive_build_duration_seconds_bucket{community=\"0x02aa\",le=\"0.25\"} 1",
            "chs_archive_build_duration_seconds_bucket{community=\"0x02aa\",le=\"2.5\"} 1",
            "chs_archive_build_duration_seconds_bucket{community=\"0x02aa\",le=\"5\"} 2",
            "chs_archive_build_duration_seconds_count{community=\"0x02aa\"} 2",
            "chs_archive_build_duration_seconds_sum{community=\"0x02aa\"} 4.25",
            "chs_store_catch_ups_total{community=\"0x02aa\",what=\"channels\",result=\"answered\"} 1",
            "chs_store_catch_ups_total{community=\"0x02aa\",what=\"magnetlinks\",result=\"failed\"} 1",
            "chs_store_fetched_messages_total{community=\"0x02aa\",what=\"channels\"} 25",
            "chs_store_peer_failures_total{community=\"0x02aa\",what=\"magnetlinks\"} 2",
            "chs_store_catch_up_duration_seconds_bucket{community=\"0x02aa\",le=\"30\"} 2",
            "chs_store_server_requests_total 9",
            "chs_store_server_pages_served_total 7",
            "chs_store_server_messages_served_total 70",
            "chs_store_server_refused_total{reason=\"bad_request\"} 1",
            "chs_store_server_refused_total{reason=\"unread\"} 1",
            "# TYPE chs_archive_build_duration_seconds histogram",
        ] {
            assert!(text.contains(expected), "{expected}\n{text}");
        }
        // Without a store server, no server samples.
        assert!(!m.render(&json!({})).contains("chs_store_server_"));
    }

    #[test]
    fn reasons_are_short_labels_and_bounded() {
        assert_eq!(reason_label("already fetched: same info hash as the last"), "already_fetched");
        assert_eq!(reason_label(""), "unknown");
        let mut m = Metrics::default();
        for n in 0..100 {
            m.observe(&json!({"type": "magnetlinkRejected", "reason": format!("reason {n}: x")}));
        }
        assert!(m.render(&json!({})).contains("reason=\"other\"} 68"));
    }
}
