//! `cargo xtask ci`: everything CI checks, in the order that fails fastest.

use std::path::Path;

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(root);
    step("fmt", || {
        cmd!(sh, "cargo fmt --all -- --check").run()?;
        // fuzz/ is a standalone crate (not a workspace member).
        Ok(cmd!(sh, "cargo fmt --manifest-path fuzz/Cargo.toml -- --check").run()?)
    })?;
    step("codegen --check", || crate::codegen::run(root, true))?;
    step("layering", || crate::layering::check(root))?;
    step("tidy", || crate::tidy::check(root))?;
    step("protoc golden decode", || protoc_golden(&sh, root))?;
    step("clippy", || {
        cmd!(sh, "cargo clippy --workspace --all-targets --locked -- -D warnings").run()?;
        // chs-archive alone, without SQLite (its `store` feature off), as a library user gets it.
        Ok(cmd!(sh, "cargo clippy -p chs-archive --no-default-features --locked -- -D warnings").run()?)
    })?;
    step("tests", || {
        if cmd!(sh, "cargo nextest --version").quiet().ignore_stdout().ignore_stderr().run().is_ok() {
            cmd!(sh, "cargo nextest run --workspace --locked --no-fail-fast").run()?;
            // nextest does not run doctests.
            cmd!(sh, "cargo test --workspace --locked --doc").run()?;
        } else {
            cmd!(sh, "cargo test --workspace --locked --no-fail-fast").run()?;
        }
        Ok(())
    })?;
    step("rustdoc", || {
        Ok(cmd!(sh, "cargo doc --workspace --no-deps --locked").env("RUSTDOCFLAGS", "-D warnings").run()?)
    })?;
    println!("xtask ci: all green");
    Ok(())
}

fn step(name: &str, f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    println!("==> {name}");
    let start = std::time::Instant::now();
    f().with_context(|| format!("ci step `{name}` failed"))?;
    println!("<== {name} ok ({:.1}s)", start.elapsed().as_secs_f64());
    Ok(())
}

/// Decodes every golden vector of `proto/golden.json` with `protoc --decode` (an independent
/// protobuf implementation, reading our .proto files) and compares the fields it prints.
fn protoc_golden(sh: &Shell, root: &Path) -> anyhow::Result<()> {
    if cmd!(sh, "protoc --version").quiet().ignore_stdout().run().is_err() {
        bail!("protoc not found: install Debian's protobuf-compiler (`.ci/run` does)");
    }
    let text = std::fs::read_to_string(root.join("proto/golden.json"))?;
    let vectors: Vec<serde_json::Value> = serde_json::from_str(&text)?;
    for v in &vectors {
        let field = |k: &str| v[k].as_str().map(str::to_owned).with_context(|| format!("golden entry without {k}"));
        let (message, proto, hex, want) = (field("message")?, field("proto")?, field("hex")?, field("protoc_text")?);
        let bytes = decode_hex(&hex)?;
        let got = cmd!(sh, "protoc --decode={message} -Iproto proto/{proto}").stdin(bytes).quiet().read()?;
        if got.trim_end() != want.trim_end() {
            bail!(
                "protoc decodes the golden {message} ({}) differently:\n--- expected\n{want}\n--- protoc\n{got}",
                field("source")?
            );
        }
    }
    println!("protoc confirmed {} golden vectors", vectors.len());
    Ok(())
}

fn decode_hex(s: &str) -> anyhow::Result<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        bail!("odd-length hex");
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).context("bad hex")).collect()
}
