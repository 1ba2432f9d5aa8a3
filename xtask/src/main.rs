//! Project automation: `cargo xtask <task>`. See README.md for the list of tasks.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod ci;
mod codegen;
mod fuzz;
mod interop;
mod layering;
mod tidy;

use std::path::PathBuf;

fn project_root() -> PathBuf {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    PathBuf::from(dir).parent().map(PathBuf::from).unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    std::env::set_current_dir(&root)?;
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    match args.first().map(String::as_str) {
        Some("codegen") => codegen::run(&root, rest.contains(&"--check")),
        Some("ci") => ci::run(&root),
        Some("bench") => bench::run(&root, rest.first().copied()),
        Some("layering") => layering::check(&root),
        Some("fuzz") => fuzz::run(&root, &rest),
        Some("interop") => interop::run(&root),
        _ => {
            eprintln!(
                "usage: cargo xtask <codegen [--check] | ci | bench [name] | interop | fuzz [target] [--seconds N]>"
            );
            std::process::exit(2)
        }
    }
}
