//! Repository conventions checked in CI: every crate root opens with a `//!` doc comment saying
//! what the crate is for, and every member inherits the workspace lints.

use std::path::Path;

use anyhow::bail;

pub(crate) fn check(root: &Path) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(root.join("crates"))? {
        let dir = entry?.path();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
        if !manifest.contains("[lints]") || !manifest.contains("workspace = true") {
            problems.push(format!("{}: Cargo.toml lacks `[lints] workspace = true`", dir.display()));
        }
        for root_file in ["src/lib.rs", "src/main.rs"] {
            let path = dir.join(root_file);
            if let Ok(text) = std::fs::read_to_string(&path)
                && !text.trim_start().starts_with("//!")
            {
                problems.push(format!("{}: crate root must open with a `//!` doc comment", path.display()));
            }
        }
    }
    if problems.is_empty() { Ok(()) } else { bail!("tidy:\n  {}", problems.join("\n  ")) }
}
