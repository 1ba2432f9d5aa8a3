//! The layering check: a crate may depend only on crates of a strictly lower layer
//! (see docs/ARCHITECTURE.md), `chs-node` has no `rusqlite`, and `chs-archive` without default
//! features has neither SQLite nor tokio. Reads `cargo metadata` and `cargo tree`.

use std::path::Path;

use anyhow::{Context, bail};

/// Layer of every workspace crate; dependencies must point to a strictly lower number.
const LAYERS: &[(&str, u32)] = &[
    ("chs-proto", 0),
    ("chs-store", 1),
    ("chs-waku-payload", 1),
    ("chs-archive", 2),
    ("chs-status", 2),
    ("chs-torrent", 3),
    ("chs-waku", 3),
    ("chs-community", 3),
    ("chs-node", 4),
    ("chs-demo", 5),
    ("chs", 6),
    ("chs-tests", 7),
    ("xtask", 7),
];

pub(crate) fn check(root: &Path) -> anyhow::Result<()> {
    let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(root)
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let layer = |name: &str| LAYERS.iter().find(|(n, _)| *n == name).map(|(_, l)| *l);
    let mut errors = Vec::new();
    for pkg in meta["packages"].as_array().context("no packages")? {
        let name = pkg["name"].as_str().unwrap_or_default();
        let Some(own) = layer(name) else {
            errors.push(format!("crate {name} has no layer in xtask/src/layering.rs"));
            continue;
        };
        for dep in pkg["dependencies"].as_array().into_iter().flatten() {
            let dep_name = dep["name"].as_str().unwrap_or_default();
            let is_dev = dep["kind"].as_str() == Some("dev");
            if !is_dev && FORBIDDEN.contains(&(name, dep_name)) {
                errors.push(format!("{name} must not depend on {dep_name} (its SQL lives in the layers below)"));
            }
            if let Some(dep_layer) = layer(dep_name) {
                // Dev-dependencies may reach sideways for tests (or the crate itself, to turn on a
                // feature its tests need), never upwards.
                let ok = if is_dev { dep_layer <= own } else { dep_layer < own };
                if !ok {
                    errors.push(format!("{name} (layer {own}) depends on {dep_name} (layer {dep_layer})"));
                }
            }
        }
    }
    errors.extend(lean_archive(root)?);
    if errors.is_empty() { Ok(()) } else { bail!("layering violations:\n  {}", errors.join("\n  ")) }
}

/// Direct dependencies a crate must not have: the orchestrator reaches SQLite only through the
/// store and community crates.
const FORBIDDEN: &[(&str, &str)] = &[("chs-node", "rusqlite")];

/// Crates that `chs-archive` without default features must not pull in: a program that only reads
/// and writes status-go archives needs neither SQLite nor an async runtime.
const NOT_IN_LEAN_ARCHIVE: &[&str] = &["rusqlite", "libsqlite3-sys", "tokio", "chs-store"];

fn lean_archive(root: &Path) -> anyhow::Result<Vec<String>> {
    let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["tree", "-p", "chs-archive", "--no-default-features", "-e", "normal", "--prefix", "none", "--offline"])
        .current_dir(root)
        .output()
        .context("running cargo tree")?;
    if !out.status.success() {
        bail!("cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let tree = String::from_utf8_lossy(&out.stdout);
    Ok(tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| NOT_IN_LEAN_ARCHIVE.contains(name))
        .map(|name| format!("chs-archive --no-default-features depends on {name}"))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect())
}
