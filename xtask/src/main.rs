//! Project tasks, so that a fresh machine needs nothing but `cargo`:
//!
//! - `cargo xtask run`: set up, build, and serve the richest example on 127.0.0.1:5222
//! - `cargo xtask test`: set up, then check formatting, lints and every test
//! - `cargo xtask guests`: build every example handler for wasm32-wasip2
//! - `cargo xtask bench`: set up, then run the benchmarks

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

/// The wasm target every Rust handler is built for.
const GUEST_TARGET: &str = "wasm32-wasip2";
/// The example handlers, as `(package, module file name)`.
const GUESTS: &[(&str, &str)] = &[("ej-example-echo", "echo"), ("ej-example-faulty", "faulty")];
/// The handler `cargo xtask run` serves: the richest example there is.
const RICHEST: &str = "echo";

fn main() -> Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match task.as_str() {
        "guests" => guests(&root).map(drop),
        "test" => test(&root),
        "run" => run(&root),
        "bench" => bench(&root),
        _ => bail!("usage: cargo xtask <run|test|guests|bench>"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Installs the wasm target if missing, builds every example handler, and
/// copies each to `target/guests/NAME.wasm`. Returns that directory.
fn guests(root: &Path) -> Result<PathBuf> {
    ensure_target()?;
    let mut build = cargo();
    build.args(["build", "--release", "--target", GUEST_TARGET]);
    for (package, _) in GUESTS {
        build.args(["--package", package]);
    }
    status(&mut build)?;
    let target = target_dir(root);
    let out = target.join("guests");
    std::fs::create_dir_all(&out)?;
    for (package, name) in GUESTS {
        let built = target
            .join(GUEST_TARGET)
            .join("release")
            .join(format!("{}.wasm", package.replace('-', "_")));
        std::fs::copy(&built, out.join(format!("{name}.wasm")))
            .with_context(|| format!("copying {}", built.display()))?;
    }
    println!("guests built in {}", out.display());
    Ok(out)
}

fn test(root: &Path) -> Result<()> {
    guests(root)?;
    status(cargo().args(["fmt", "--all", "--", "--check"]))?;
    status(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    status(cargo().args([
        "clippy",
        "--target",
        GUEST_TARGET,
        "--package",
        "ej-guest",
        "--package",
        "ej-example-echo",
        "--package",
        "ej-example-faulty",
        "--",
        "-D",
        "warnings",
    ]))?;
    status(cargo().args(["test", "--workspace"]))
}

fn run(root: &Path) -> Result<()> {
    let guests = guests(root)?;
    status(cargo().args(["build", "--release", "--package", "ej"]))?;
    let module = guests.join(format!("{RICHEST}.wasm"));
    let ej = target_dir(root).join("release").join("ej");
    status(
        Command::new(ej)
            .args(["serve", "--listen", "127.0.0.1:5222", "--module"])
            .arg(module),
    )
}

fn bench(root: &Path) -> Result<()> {
    guests(root)?;
    status(cargo().args(["bench", "--package", "ej"]))
}

/// `rustup target add` when the wasm target is missing.
fn ensure_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup (ej builds its handlers with a rustup toolchain)")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|line| line.trim() == GUEST_TARGET)
    {
        return Ok(());
    }
    status(Command::new("rustup").args(["target", "add", GUEST_TARGET]))
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

fn status(command: &mut Command) -> Result<()> {
    let status = command.status().with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}
