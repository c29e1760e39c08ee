//! `ej new` in each language, built as its README says from a directory
//! outside the repository, with the real toolchains: cargo for Rust (into
//! `target/templates`, kept between runs), and for C, JavaScript and Python
//! the pinned tools `cargo xtask guests` installs under `target/tools/`
//! (each project's `build.sh` installs them there itself when missing).
//! Each module must pass `ej check`, and the real `ej` serves it to a TCP
//! client; one connection then sees its counter swapped from language to
//! language and keeps counting.
//!
//! Time, on this project's 2-core machine with the tools installed, the four
//! building at once: Rust 107 s the first time (its dependencies, into
//! `target/templates`; seconds once they are there), C 0.3 s, JavaScript
//! 19 s, Python 31 s; then ej compiles the JavaScript and Python modules
//! (~10 s each, cached). The whole test: ~2 min from nothing, ~1.5 min
//! after.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use common::{Client, STREAM_HEADER, Scratch, Server, compile_cache, ej, replace};

/// The languages of `ej new --lang`, in the order of `BUILT`.
const LANGS: [&str; 4] = ["rust", "c", "js", "python"];

/// Flags for the handlers that carry an interpreter: their events get more
/// time than the default on a machine busy with other tests.
const INTERPRETED: &[&str] = &["--event-timeout", "1s"];

/// The workspace's target directory.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    )
}

/// The counter module `ej new --lang LANG` builds into, made once per test
/// process: in a temporary directory, then `ej check`ed and copied out.
fn counter(lang: &str) -> &'static Path {
    static BUILT: [OnceLock<PathBuf>; 4] = [const { OnceLock::new() }; 4];
    let index = LANGS.iter().position(|known| *known == lang).expect("a language");
    BUILT[index].get_or_init(|| build(lang))
}

fn build(lang: &str) -> PathBuf {
    let scratch = Scratch::new(&format!("template-{lang}"));
    let project = scratch.path("counter");
    run(ej().args(["new", "counter", "--lang", lang, "--dir"]).arg(&project));
    let started = Instant::now();
    let module = if lang == "rust" {
        let target = target_dir().join("templates");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        run(Command::new(cargo)
            .current_dir(&project)
            .args(["build", "--quiet", "--release", "--target", "wasm32-unknown-unknown"])
            .env("CARGO_TARGET_DIR", &target));
        target.join("wasm32-unknown-unknown/release/counter.wasm")
    } else {
        run(Command::new("./build.sh")
            .current_dir(&project)
            .env("EJ_TOOLS", target_dir().join("tools")));
        project.join("counter.wasm")
    };
    eprintln!("the {lang} template built in {:.1} s", started.elapsed().as_secs_f64());
    let checked = run(ej().arg("check").arg("--cache-dir").arg(compile_cache()).arg(&module));
    assert!(checked.contains("fits the ej world"), "{checked}");
    let kept = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("counter-{lang}.wasm"));
    std::fs::copy(&module, &kept).expect("keeping the module");
    kept
}

/// Runs `command`, which must succeed; returns its stdout.
fn run(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|error| panic!("running {command:?}: {error}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn serve(module: &Path) -> Server {
    Server::start_module(module, INTERPRETED)
}

/// A connection whose stream is open (the counter answers no header).
fn open(server: &Server) -> Client {
    let mut client = server.connect();
    client.send(STREAM_HEADER);
    client
}

/// Two connections, each counting its own stanzas, in one write and apart.
fn counts(lang: &str) {
    let server = serve(counter(lang));
    let mut first = open(&server);
    first.send("<a/><b/><message to='x'><body>hi</body></message>");
    first.expect("<ok n='1'/><ok n='2'/><ok n='3'/>");
    let mut second = open(&server);
    second.send("<a/>");
    second.expect("<ok n='1'/>");
    first.send("<a/>");
    first.expect("<ok n='4'/>");
    assert!(server.crashes().is_empty(), "{:#?}", server.crashes());
}

#[test]
fn rust() {
    counts("rust");
}

#[test]
fn c() {
    counts("c");
}

#[test]
fn js() {
    counts("js");
}

#[test]
fn python() {
    counts("python");
}

/// The four counters keep the same state, so one connection's handler can
/// change language between two stanzas and the count goes on.
#[test]
fn a_connection_keeps_its_count_when_its_counter_changes_language() {
    let scratch = Scratch::new("templates-swap");
    let path = scratch.path("counter.wasm");
    std::fs::copy(counter("rust"), &path).unwrap();
    let server = serve(&path);
    let mut client = open(&server);
    client.send("<a/>");
    client.expect("<ok n='1'/>");
    for (n, lang) in (2..).zip(["c", "js", "python", "rust", "python", "c"]) {
        replace(&path, &std::fs::read(counter(lang)).unwrap());
        let out = server.reload();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        client.send("<a/>");
        client.expect(&format!("<ok n='{n}'/>"));
    }
    assert!(server.crashes().is_empty(), "{:#?}", server.crashes());
}

/// What the READMEs and docs/handlers.md show `ej talk` printing.
#[test]
fn ej_talk_prints_the_replies_the_readme_shows() {
    let server = serve(counter("c"));
    let header = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
         to='localhost' version='1.0'>";
    let printed = run(ej()
        .arg("talk")
        .arg(server.addr.to_string())
        .args([header, "<a/>", "<b/>"]));
    assert_eq!(printed, "<ok n='1'/><ok n='2'/>\n");
    for lang in LANGS {
        let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../templates/{lang}/README.md"));
        let text = std::fs::read_to_string(&readme).unwrap();
        assert!(
            text.contains(&format!("\"{header}\" \"<a/>\" \"<b/>\"")),
            "{}",
            readme.display()
        );
        assert!(text.contains("\n<ok n='1'/><ok n='2'/>\n"), "{}", readme.display());
    }
}

#[test]
fn ej_new_leaves_a_directory_that_exists_alone() {
    let scratch = Scratch::new("templates-exists");
    let dir = scratch.path("taken");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("mine.txt"), "keep").unwrap();
    let out = ej()
        .args(["new", "taken", "--lang", "python", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exists"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(left, ["mine.txt"]);
}

/// docs/handlers.md shows each language's counter as its template has it.
#[test]
fn the_guide_shows_each_counter_as_its_template_has_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let guide = std::fs::read_to_string(root.join("docs/handlers.md")).unwrap();
    for source in ["rust/src/lib.rs", "c/counter.c", "js/counter.js", "python/app.py"] {
        let text = std::fs::read_to_string(root.join("templates").join(source)).unwrap();
        assert!(
            guide.contains(&text),
            "docs/handlers.md does not show templates/{source} as it is"
        );
    }
}
