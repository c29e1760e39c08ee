//! Project tasks, so that a fresh machine needs nothing but `cargo`:
//!
//! - `cargo xtask run`: set up, build, and serve the richest example on 127.0.0.1:5222 (and 5223, TLS)
//! - `cargo xtask test`: set up, then check formatting, lints and every test,
//!   and run each benchmark once
//! - `cargo xtask guests`: build every example handler: the Rust ones for
//!   wasm32-unknown-unknown or wasm32-wasip2, the C, JavaScript and Python
//!   ones with their own pinned toolchains (installed under `target/tools/`
//!   when missing); `cargo xtask guests --rust` builds the Rust ones alone
//!   (what the tests do before they start a server)
//! - `cargo xtask bench`: set up, then run the benchmarks

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

/// The wasm target of Rust handlers that need no WASI: an instance then
/// imports ej's interfaces alone, and an event costs about 14 % less
/// (BENCHMARKS.md, "Without WASI"). `.cargo/config.toml` makes the linker
/// the one that makes components, as on `WASI`.
const LEAN: &str = "wasm32-unknown-unknown";
/// The wasm target of Rust handlers that use WASI.
const WASI: &str = "wasm32-wasip2";
/// The Rust example handlers, as `(package, target, module file name)`.
const GUESTS: &[(&str, &str, &str)] = &[
    ("ej-example-echo", LEAN, "echo"),
    // The same echo with WASI, which the benchmarks measure beside it.
    ("ej-example-echo", WASI, "echo-wasi"),
    ("ej-example-chat", LEAN, "chat"),
    // The hostile handler: its attacks include WASI's.
    ("ej-example-faulty", WASI, "faulty"),
    ("ej-example-faulty", LEAN, "faulty-lean"),
    // It imports two WASI interfaces by name (the wall clock, random bytes).
    ("ej-example-xmpp", LEAN, "xmpp"),
    // The same built for WASI, which the benchmarks measure beside it.
    ("ej-example-xmpp", WASI, "xmpp-wasi"),
];
/// The handler `cargo xtask run` serves: the richest example there is.
const RICHEST: &str = "xmpp";
/// The accounts `cargo xtask run` makes sure the XMPP server has, with
/// their passwords (for trying it on loopback; the README names them).
const DEMO_ACCOUNTS: &[(&str, &str)] = &[("alice", "alice"), ("bob", "bob")];

/// The example handlers written in other languages, each built by its own
/// toolchain into `target/guests/NAME.wasm`.
const FOREIGN_GUESTS: &[Foreign] = &[
    Foreign {
        name: "echo-c",
        dir: "examples/echo-c",
        language: Language::C,
    },
    Foreign {
        name: "echo-js",
        dir: "examples/echo-js",
        language: Language::JavaScript,
    },
    Foreign {
        name: "echo-py",
        dir: "examples/echo-py",
        language: Language::Python,
    },
];

/// Pinned tool versions, the same as the `build.sh` of each `ej new`
/// project pins (a test below holds them equal). Those of componentize-js
/// and its dependencies are pinned by `JS_TOOLCHAIN/package-lock.json`,
/// those of @xmpp/client
/// (the XMPP handler's tests drive it too) by
/// `tests/xmpp/xmpp-js/package-lock.json`.
const WASM_TOOLS: &str = "1.263.0";
/// Where the JavaScript toolchain is pinned, with its `build.mjs`: the one
/// `ej new --lang js` writes into a project.
const JS_TOOLCHAIN: &str = "templates/js/toolchain";
const WIT_BINDGEN: &str = "0.61.1";
const COMPONENTIZE_PY: &str = "0.25.1";
/// The XMPP client library the end-to-end tests of the XMPP handler drive.
const SLIXMPP: &str = "1.17.0";
/// The C compiler, and the Debian packages that provide it, its wasm linker,
/// the WASI libc and the wasm32 compiler runtime.
const CLANG: &str = "clang-19";
const C_PACKAGES: &[&str] = &["clang-19", "lld-19", "wasi-libc", "libclang-rt-19-dev-wasm32"];
/// Files that show the C packages are installed.
const C_FILES: &[&str] = &[
    "/usr/bin/clang-19",
    "/usr/bin/wasm-ld-19",
    "/usr/include/wasm32-wasi/stdlib.h",
    "/usr/lib/wasm32-wasi/libc.a",
    "/usr/lib/llvm-19/lib/clang/19/lib/wasi/libclang_rt.builtins-wasm32.a",
];
/// The world every handler is built against, in `wit/`.
const WORLD: &str = "handler";

fn main() -> Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match task.as_str() {
        "guests" if std::env::args().nth(2).as_deref() == Some("--rust") => rust_guests(&root).map(drop),
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

/// Builds every example handler into `target/guests/NAME.wasm`, installing
/// what is missing. Returns that directory.
fn guests(root: &Path) -> Result<PathBuf> {
    let out = rust_guests(root)?;
    for guest in FOREIGN_GUESTS {
        guest.build(root, &target_dir(root), &out)?;
    }
    println!("guests built in {}", out.display());
    Ok(out)
}

/// Installs the wasm targets if missing, builds the Rust example handlers,
/// and puts each at `target/guests/NAME.wasm` (by a rename, so a test
/// process reading the previous build never sees half a file). Returns
/// that directory.
fn rust_guests(root: &Path) -> Result<PathBuf> {
    let target = target_dir(root);
    let out = target.join("guests");
    std::fs::create_dir_all(&out)?;
    for wasm_target in [LEAN, WASI] {
        ensure_target(wasm_target)?;
        let mut build = cargo();
        build.args(["build", "--quiet", "--release", "--target", wasm_target]);
        for (package, _, _) in GUESTS.iter().filter(|(_, t, _)| *t == wasm_target) {
            build.args(["--package", package]);
        }
        status(&mut build)?;
    }
    for (package, wasm_target, name) in GUESTS {
        let built = target
            .join(wasm_target)
            .join("release")
            .join(format!("{}.wasm", package.replace('-', "_")));
        let staged = out.join(format!("{name}.wasm.{}", std::process::id()));
        std::fs::copy(&built, &staged).with_context(|| format!("copying {}", built.display()))?;
        std::fs::rename(&staged, out.join(format!("{name}.wasm")))?;
    }
    Ok(out)
}

fn test(root: &Path) -> Result<()> {
    guests(root)?;
    // The TLS tests talk to ej with `openssl s_client` too.
    ensure_packages(&["/usr/bin/openssl"], &["openssl"])?;
    // The XMPP handler's tests also drive profanity, a terminal client, in tmux.
    ensure_packages(&["/usr/bin/profanity", "/usr/bin/tmux"], &["profanity", "tmux"])?;
    // The cluster's tests start PostgreSQL servers of their own (Debian's
    // bookworm packages version 15; `pg_isready` tells when one is up).
    ensure_packages(
        &["/usr/lib/postgresql/15/bin/postgres", "/usr/bin/pg_isready"],
        &["postgresql"],
    )?;
    // Routes between the cluster's nodes go through a NATS server of each
    // test's own (bookworm packages 2.9.10).
    ensure_packages(&["/usr/sbin/nats-server"], &["nats-server"])?;
    // The XMPP handler's tests log in with slixmpp and @xmpp/client.
    let tools = target_dir(root).join("tools");
    slixmpp_venv(&tools)?;
    xmpp_js(&tools, &root.join("tests/xmpp/xmpp-js"))?;
    status(cargo().args(["fmt", "--all", "--", "--check"]))?;
    status(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    for wasm_target in [LEAN, WASI] {
        let mut clippy = cargo();
        clippy.args(["clippy", "--target", wasm_target, "--package", "ej-guest"]);
        for (package, _, _) in GUESTS.iter().filter(|(_, t, _)| *t == wasm_target) {
            clippy.args(["--package", package]);
        }
        status(clippy.args(["--", "-D", "warnings"]))?;
    }
    status(cargo().args(["test", "--workspace"]))?;
    // Each benchmark once, unmeasured, so that none of them rots. With the
    // same package selection as above, so the libraries built there are
    // reused rather than rebuilt with other features.
    status(cargo().args(["test", "--workspace", "--benches"]))
}

fn run(root: &Path) -> Result<()> {
    let guests = guests(root)?;
    status(cargo().args(["build", "--release", "--package", "ej"]))?;
    let module = guests.join(format!("{RICHEST}.wasm"));
    let ej = target_dir(root).join("release").join("ej");
    let mut server = Command::new(&ej)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:5222",
            "--listen-tls",
            "127.0.0.1:5223",
            "--module",
        ])
        .arg(module)
        .spawn()
        .context("starting ej serve")?;
    // The demo accounts, made through the running server (its store is
    // ej-data/ in the working directory), keeping any there.
    let started = std::time::Instant::now();
    let accounts = loop {
        let list = Command::new(&ej).args(["command", "user", "list"]).output()?;
        if list.status.success() {
            break String::from_utf8_lossy(&list.stdout).into_owned();
        }
        if server.try_wait()?.is_some() || started.elapsed() > std::time::Duration::from_secs(60) {
            bail!("ej serve did not start (see above)");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    for (user, password) in DEMO_ACCOUNTS {
        if !accounts.lines().any(|line| line == format!("{user}@localhost")) {
            status(Command::new(&ej).args(["command", "user", "add", user, password]))?;
        }
    }
    let logins: Vec<String> = DEMO_ACCOUNTS
        .iter()
        .map(|(user, password)| format!("{user}@localhost (password {password})"))
        .collect();
    println!(
        "XMPP server for localhost on 127.0.0.1:5222 (STARTTLS) and :5223 (direct TLS); log in as {}. \
         Its certificate is self-signed: ej-data/tls/localhost.crt. More accounts: `ej command user add NAME PASSWORD`.",
        logins.join(" or ")
    );
    let exit = server.wait()?;
    if !exit.success() {
        bail!("ej serve exited with {exit}");
    }
    Ok(())
}

fn bench(root: &Path) -> Result<()> {
    guests(root)?;
    status(cargo().args(["bench", "--package", "ej"]))
}

/// A handler in another language than Rust.
struct Foreign {
    /// Its module is `target/guests/NAME.wasm`.
    name: &'static str,
    /// Its sources, relative to the workspace root.
    dir: &'static str,
    language: Language,
}

#[derive(Clone, Copy, Debug, Hash)]
enum Language {
    /// Every `*.c` file, with bindings from `wit-bindgen c`, compiled by
    /// clang and made a component by `wasm-tools component new`.
    C,
    /// `echo.js` (the module exporting `handle`), made a component by
    /// componentize-js through the directory's `build.mjs`.
    JavaScript,
    /// `app.py` (the module with the `WitWorld` class), made a component
    /// by componentize-py.
    Python,
}

impl Foreign {
    /// Builds the module unless it is up to date: built before from the
    /// same sources, WIT and recipe (a stamp next to it records a hash of
    /// them). Installs the language's tools first if they are missing.
    fn build(&self, root: &Path, target: &Path, out: &Path) -> Result<()> {
        let module = out.join(format!("{}.wasm", self.name));
        let stamp_file = out.join(format!("{}.stamp", self.name));
        let stamp = self.stamp(root)?;
        if module.is_file() && std::fs::read_to_string(&stamp_file).ok().as_deref() == Some(stamp.as_str()) {
            println!("{} is up to date", module.display());
            return Ok(());
        }
        let started = Instant::now();
        let tools = target.join("tools");
        let src = root.join(self.dir);
        let wit = root.join("wit");
        let work = target.join("guests-build").join(self.name);
        if work.exists() {
            std::fs::remove_dir_all(&work)?;
        }
        std::fs::create_dir_all(&work)?;
        // Written next to the module, then renamed over it: whoever reads
        // the module (a running test) sees the old one or the new one.
        let partial = out.join(format!("{}.wasm.partial", self.name));
        match self.language {
            Language::C => {
                let wit_bindgen = cargo_tool(&tools, "wit-bindgen-cli", WIT_BINDGEN, "wit-bindgen", &["c"])?;
                let wasm_tools = cargo_tool(&tools, "wasm-tools", WASM_TOOLS, "wasm-tools", &["component"])?;
                ensure_packages(C_FILES, C_PACKAGES)?;
                let bindings = work.join("bindings");
                status(
                    Command::new(wit_bindgen)
                        .arg("c")
                        .arg(&wit)
                        .args(["--world", WORLD, "--out-dir"])
                        .arg(&bindings),
                )?;
                let core = work.join("core.wasm");
                let mut cc = Command::new(CLANG);
                cc.args(["--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-s"])
                    .args(["-Wall", "-Wextra", "-Werror", "-I"])
                    .arg(&bindings)
                    .arg("-o")
                    .arg(&core);
                for file in files(&src)?.into_iter().filter(|file| file.ends_with(".c")) {
                    cc.arg(src.join(file));
                }
                cc.arg(bindings.join(format!("{WORLD}.c")))
                    .arg(bindings.join(format!("{WORLD}_component_type.o")));
                status(&mut cc)?;
                status(
                    Command::new(wasm_tools)
                        .args(["component", "new"])
                        .arg(&core)
                        .arg("-o")
                        .arg(&partial),
                )?;
            }
            Language::JavaScript => {
                let componentize_js = componentize_js(&tools, &root.join(JS_TOOLCHAIN))?;
                status(
                    Command::new("node")
                        .current_dir(&componentize_js)
                        .arg("build.mjs")
                        .arg(src.join("echo.js"))
                        .arg(&wit)
                        .arg(&partial),
                )?;
            }
            Language::Python => {
                let componentize_py = componentize_py(&tools)?;
                // From a copy: componentize-py leaves `__pycache__` behind.
                let copy = work.join("src");
                for file in files(&src)? {
                    let to = copy.join(&file);
                    std::fs::create_dir_all(to.parent().expect("a file has a parent"))?;
                    std::fs::copy(src.join(&file), to)?;
                }
                status(
                    Command::new(componentize_py)
                        .current_dir(&work)
                        .arg("-d")
                        .arg(&wit)
                        .args(["-w", WORLD, "componentize", "-p"])
                        .arg(&copy)
                        .args(["app", "-o"])
                        .arg(&partial),
                )?;
            }
        }
        std::fs::rename(&partial, &module)?;
        std::fs::write(&stamp_file, stamp)?;
        println!("built {} in {:.1} s", module.display(), started.elapsed().as_secs_f64());
        Ok(())
    }

    /// A hash of everything the module is built from: the recipe (language
    /// and tool versions, the JavaScript toolchain's pins), the sources and
    /// the WIT.
    fn stamp(&self, root: &Path) -> Result<String> {
        let mut hasher = DefaultHasher::new();
        (self.language, WASM_TOOLS, WIT_BINDGEN, COMPONENTIZE_PY, CLANG, WORLD).hash(&mut hasher);
        let toolchain = matches!(self.language, Language::JavaScript).then(|| root.join(JS_TOOLCHAIN));
        for dir in [root.join(self.dir), root.join("wit")].into_iter().chain(toolchain) {
            for file in files(&dir)? {
                file.hash(&mut hasher);
                std::fs::read(dir.join(&file))?.hash(&mut hasher);
            }
        }
        Ok(format!("{:016x}\n", hasher.finish()))
    }
}

/// The files under `dir`, as sorted relative paths, leaving out what tools
/// generate there (`node_modules`, `__pycache__`, hidden files).
fn files(dir: &Path) -> Result<Vec<String>> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "node_modules" || name == "__pycache__" {
                continue;
            }
            let path = format!("{prefix}{name}");
            if entry.file_type()?.is_dir() {
                walk(&entry.path(), &format!("{path}/"), out)?;
            } else {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out)?;
    out.sort();
    Ok(out)
}

/// A tool from crates.io at `version`, installed under `tools/bin` with only
/// `features` (which keeps the build short) unless it is there already.
fn cargo_tool(tools: &Path, krate: &str, version: &str, bin: &str, features: &[&str]) -> Result<PathBuf> {
    let path = tools.join("bin").join(bin);
    if reports_version(Command::new(&path).arg("--version"), version) {
        return Ok(path);
    }
    println!(
        "installing {krate} {version} under {} (once: a few minutes)",
        tools.display()
    );
    status(
        cargo()
            .args(["install", "--locked", "--force", "--root"])
            .arg(tools)
            .args(["--version", version, "--no-default-features", "--features"])
            .arg(features.join(","))
            .arg(krate)
            // Build in a temporary directory, not the workspace's target.
            .env_remove("CARGO_TARGET_DIR"),
    )?;
    Ok(path)
}

/// componentize-py at `COMPONENTIZE_PY`, in a virtual environment under
/// `tools/py` made on first use.
fn componentize_py(tools: &Path) -> Result<PathBuf> {
    let venv = tools.join("py");
    let path = venv.join("bin/componentize-py");
    if reports_version(Command::new(&path).arg("--version"), COMPONENTIZE_PY) {
        return Ok(path);
    }
    pip_install(&venv, &format!("componentize-py=={COMPONENTIZE_PY}"))?;
    Ok(path)
}

/// Installs `requirement` with pip into the virtual environment `venv`,
/// made first if need be.
fn pip_install(venv: &Path, requirement: &str) -> Result<()> {
    if !venv.join("bin/pip").is_file() {
        // Debian's python3 makes virtual environments only with python3-venv.
        if !succeeds(Command::new("python3").args(["-c", "import ensurepip, venv"])) {
            apt_install(&["python3", "python3-venv"])?;
        }
        status(Command::new("python3").args(["-m", "venv"]).arg(venv))?;
    }
    status(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(requirement),
    )
}

/// slixmpp at `SLIXMPP`, in a virtual environment under `tools/xmpp-py`
/// (apart from componentize-py's) made on first use; returns its python.
fn slixmpp_venv(tools: &Path) -> Result<PathBuf> {
    let venv = tools.join("xmpp-py");
    let python = venv.join("bin/python");
    let version = "import slixmpp; print(slixmpp.__version__)";
    if reports_version(Command::new(&python).args(["-c", version]), SLIXMPP) {
        return Ok(python);
    }
    println!("installing slixmpp {SLIXMPP} under {}", venv.display());
    pip_install(&venv, &format!("slixmpp=={SLIXMPP}"))?;
    Ok(python)
}

/// componentize-js and its dependencies, as `src/package-lock.json` pins
/// them, installed under `tools/js` with `src/build.mjs`; returns that
/// directory, where `node build.mjs` runs.
fn componentize_js(tools: &Path, src: &Path) -> Result<PathBuf> {
    let dir = tools.join("js");
    npm_ci(src, &dir)?;
    std::fs::copy(src.join("build.mjs"), dir.join("build.mjs"))?;
    Ok(dir)
}

/// @xmpp/client and its dependencies, as `src/package-lock.json` pins them
/// (`src` is `tests/xmpp/xmpp-js`, whose scenario scripts import them from
/// there), installed under `tools/xmpp-js`; returns that directory.
fn xmpp_js(tools: &Path, src: &Path) -> Result<PathBuf> {
    let dir = tools.join("xmpp-js");
    npm_ci(src, &dir)?;
    Ok(dir)
}

/// Installs the packages `src/package-lock.json` pins into `dir/node_modules`
/// with `npm ci` (installing node and npm first if need be), unless `dir`
/// already holds that very lockfile and an installed tree.
fn npm_ci(src: &Path, dir: &Path) -> Result<()> {
    if !succeeds(Command::new("npm").arg("--version")) {
        apt_install(&["nodejs", "npm"])?;
    }
    std::fs::create_dir_all(dir)?;
    let lock = std::fs::read(src.join("package-lock.json"))?;
    let installed = dir.join("node_modules/.package-lock.json").is_file()
        && std::fs::read(dir.join("package-lock.json")).is_ok_and(|old| old == lock);
    if !installed {
        std::fs::copy(src.join("package.json"), dir.join("package.json"))?;
        std::fs::write(dir.join("package-lock.json"), &lock)?;
        status(
            Command::new("npm")
                .current_dir(dir)
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]),
        )?;
    }
    Ok(())
}

/// Installs `packages` with apt-get unless every one of `files` exists.
fn ensure_packages(files: &[&str], packages: &[&str]) -> Result<()> {
    if files.iter().all(|file| Path::new(file).exists()) {
        return Ok(());
    }
    apt_install(packages)
}

/// `apt-get install`, non-interactively, as root (after one `apt-get update`
/// per run).
fn apt_install(packages: &[&str]) -> Result<()> {
    let uid = Command::new("id").arg("-u").output().context("running id")?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        bail!(
            "missing Debian packages: run `sudo apt-get install {}`, then this again",
            packages.join(" ")
        );
    }
    static UPDATED: AtomicBool = AtomicBool::new(false);
    if !UPDATED.swap(true, Ordering::Relaxed) {
        status(
            Command::new("apt-get")
                .args(["update", "--quiet"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }
    println!("installing Debian packages: {}", packages.join(" "));
    status(
        Command::new("apt-get")
            .args(["install", "--yes", "--quiet", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Whether `command` runs and prints `version`.
fn reports_version(command: &mut Command, version: &str) -> bool {
    command
        .output()
        .is_ok_and(|out| out.status.success() && String::from_utf8_lossy(&out.stdout).contains(version))
}

fn succeeds(command: &mut Command) -> bool {
    command.output().is_ok_and(|out| out.status.success())
}

/// `rustup target add` when a wasm target is missing.
fn ensure_target(wasm_target: &str) -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup (ej builds its handlers with a rustup toolchain)")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|line| line.trim() == wasm_target)
    {
        return Ok(());
    }
    status(Command::new("rustup").args(["target", "add", wasm_target]))
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

#[cfg(test)]
mod tests {
    /// The `build.sh` of each `ej new` project installs the versions xtask
    /// does (into the same tools directory, when `EJ_TOOLS` points there).
    #[test]
    fn templates_pin_the_tool_versions_xtask_installs() {
        let c = include_str!("../../templates/c/build.sh");
        for pin in [
            format!("wit_bindgen={}\n", super::WIT_BINDGEN),
            format!("wasm_tools={}\n", super::WASM_TOOLS),
            format!("clang={}\n", super::CLANG),
            format!("apt-get install {}", super::C_PACKAGES.join(" ")),
        ] {
            assert!(c.contains(&pin), "templates/c/build.sh lacks {pin:?}");
        }
        let python = include_str!("../../templates/python/build.sh");
        let pin = format!("version={}\n", super::COMPONENTIZE_PY);
        assert!(python.contains(&pin), "templates/python/build.sh lacks {pin:?}");
    }
}
