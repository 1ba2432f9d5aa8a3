//! The layering check: a crate may depend only on crates of a strictly lower layer
//! (see docs/ARCHITECTURE.md). Reads `cargo metadata`.

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
    ("chs", 5),
    ("chs-tests", 6),
    ("xtask", 6),
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
            if let Some(dep_layer) = layer(dep_name) {
                // Dev-dependencies may reach sideways for tests, never upwards.
                let ok = if is_dev { dep_layer <= own && dep_name != name } else { dep_layer < own };
                if !ok {
                    errors.push(format!("{name} (layer {own}) depends on {dep_name} (layer {dep_layer})"));
                }
            }
        }
    }
    if errors.is_empty() { Ok(()) } else { bail!("layering violations:\n  {}", errors.join("\n  ")) }
}
