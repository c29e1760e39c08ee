//! The command line: `ej check`, `ej compile`, `ej serve` refusing what it
//! cannot serve, `ej store`, and the help texts.

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Output;

use common::{Scratch, Server, check_digest, ej, guest};

fn run(args: &[&std::ffi::OsStr]) -> Output {
    ej().args(args).output().expect("running ej")
}

fn check(module: &Path) -> Output {
    run(&["check".as_ref(), module.as_os_str()])
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Checks that `out` is a failure with a one-line reason containing `what`.
fn assert_refused(out: &Output, what: &str) {
    assert!(!out.status.success(), "succeeded: {}", stdout(out));
    let stderr = stderr(out);
    assert_eq!(stderr.trim_end().lines().count(), 1, "not one line: {stderr:?}");
    assert!(stderr.contains(what), "{stderr:?} does not mention {what:?}");
}

#[test]
fn check_describes_a_module_that_fits() {
    let out = check(&guest("echo"));
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = stdout(&out);
    assert!(stdout.contains("fits the ej world"), "{stdout}");
    assert!(stdout.contains("export func handle"), "{stdout}");
    let digest = check_digest(&guest("echo"));
    assert_eq!(digest.len(), 64);
    assert_ne!(digest, check_digest(&guest("faulty")));
}

/// A component that does nothing but import an instance `name` exporting
/// one function `f: func()`, in the component binary format.
fn component_importing(name: &str) -> Vec<u8> {
    let name = name.as_bytes();
    let len = |bytes: &[u8]| u8::try_from(bytes.len()).expect("a short section");
    // One type: an instance type (0x42) of two declarations, a function type
    // (0x01 0x40) with no parameters and no results, and an export (0x04)
    // named `f` of that function type (0x01 0x00).
    let types = [
        1, 0x42, 2, 0x01, 0x40, 0x00, 0x01, 0x00, 0x04, 0x00, 1, b'f', 0x01, 0x00,
    ];
    // One import: `name`, an instance (0x05) of type 0.
    let import = [&[1, 0x00, len(name)][..], name, &[0x05, 0]].concat();
    [
        &b"\0asm\x0d\0\x01\0"[..],
        &[0x07, len(&types)],
        &types,
        &[0x0a, len(&import)],
        &import,
    ]
    .concat()
}

/// The broken modules, each with what its refusal must mention.
fn broken_modules(scratch: &Scratch) -> Vec<(std::path::PathBuf, &'static str)> {
    let imports_http = component_importing("wasi:http/types@0.2.0");
    // A core module with one import, `wasi_snapshot_preview1.fd_write`.
    let preview1 = [
        &b"\0asm\x01\0\0\0"[..],
        &[0x02, 35, 1, 22],
        b"wasi_snapshot_preview1",
        &[8],
        b"fd_write",
        &[0x00, 0x00],
    ]
    .concat();
    let cases: [(&str, &[u8], &str); 5] = [
        ("text.wasm", b"this is not wasm\n", "not a WebAssembly component"),
        // What wasm32-unknown-unknown makes with its default linker: the
        // reason says which linker makes a component instead.
        (
            "core.wasm",
            b"\0asm\x01\0\0\0",
            "link it with Rust's `wasm-component-ld`",
        ),
        (
            "core-preview1.wasm",
            &preview1,
            "--adapt wasi_snapshot_preview1.reactor.wasm",
        ),
        ("empty-component.wasm", b"\0asm\x0d\0\x01\0", "handle"),
        (
            "imports-http.wasm",
            &imports_http,
            "it imports `wasi:http/types@0.2.0`, which ej does not provide",
        ),
    ];
    cases
        .into_iter()
        .map(|(name, bytes, what)| {
            let path = scratch.path(name);
            std::fs::write(&path, bytes).unwrap();
            (path, what)
        })
        .collect()
}

#[test]
fn check_refuses_what_does_not_fit_with_a_one_line_reason() {
    let scratch = Scratch::new("check-refuses");
    for (module, what) in broken_modules(&scratch) {
        let out = check(&module);
        assert_refused(&out, what);
        assert!(
            stderr(&out).contains(&*module.to_string_lossy()),
            "names the file: {}",
            stderr(&out)
        );
    }
    let out = check(&scratch.path("missing.wasm"));
    assert_refused(&out, "missing.wasm");
}

#[test]
fn serve_refuses_what_does_not_fit_with_a_one_line_reason() {
    let scratch = Scratch::new("serve-refuses");
    for (module, what) in broken_modules(&scratch) {
        let out = run(&[
            "serve".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--module".as_ref(),
            module.as_os_str(),
        ]);
        assert!(stdout(&out).is_empty(), "no listening line: {}", stdout(&out));
        assert_refused(&out, what);
    }
}

#[test]
fn a_compiled_module_checks_and_serves_like_its_component() {
    let scratch = Scratch::new("compile");
    let compiled = scratch.path("echo.cwasm");
    let out = run(&[
        "compile".as_ref(),
        guest("echo").as_os_str(),
        "-o".as_ref(),
        compiled.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(compiled.exists());

    let out = check(&compiled);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("fits the ej world"), "{}", stdout(&out));
    assert!(stdout(&out).contains("export func handle"), "{}", stdout(&out));

    let server = Server::start_module(&compiled, &[]);
    let mut client = server.connect();
    client.open();
    client.send("<message from='a@x' to='b@x'/>");
    client.expect("<message xmlns='jabber:client' to='a@x' from='b@x'/>");
    client.send("<count/>");
    client.expect("<count n='2'/>");

    // Compiling what is not a component fails the same way as checking it.
    for (module, what) in broken_modules(&scratch) {
        let out = run(&[
            "compile".as_ref(),
            module.as_os_str(),
            "-o".as_ref(),
            scratch.path("x.cwasm").as_os_str(),
        ]);
        assert_refused(&out, what);
    }
}

#[test]
fn help_mentions_the_commands_and_main_flags() {
    let out = run(&["--help".as_ref()]);
    assert!(out.status.success());
    let help = stdout(&out);
    for word in ["serve", "check", "compile"] {
        assert!(help.contains(word), "ej --help does not mention {word}: {help}");
    }

    let out = run(&["serve".as_ref(), "--help".as_ref()]);
    assert!(out.status.success());
    let help = stdout(&out);
    for flag in [
        "--listen",
        "--module",
        "--on-fault",
        "--crash-log",
        "--max-stanza-bytes",
        "--read-rate",
        "--max-outbound-bytes",
        "--max-memory",
        "--event-timeout",
        "--max-outcome-bytes",
        "--max-output-bytes",
    ] {
        assert!(help.contains(flag), "ej serve --help does not mention {flag}: {help}");
    }
}

/// `ej store` on a data directory, and its output.
fn store(data: &Path, admin: &Path, args: &[&str]) -> Output {
    let mut full: Vec<&OsStr> = vec!["store".as_ref(), "--data-dir".as_ref(), data.as_os_str()];
    full.extend(["--admin".as_ref(), admin.as_os_str()]);
    full.extend(args.iter().map(OsStr::new));
    run(&full)
}

#[test]
fn the_store_command_works_with_and_without_a_running_server() {
    let scratch = Scratch::new("store-command");
    let data = scratch.path("data");
    let admin = scratch.path("admin.sock");

    // No server: the command opens the store itself.
    let out = store(&data, &admin, &["put", "room:lobby", "{\"topic\":\"hi there\"}"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = store(&data, &admin, &["get", "room:lobby"]);
    assert_eq!(stdout(&out), "{\"topic\":\"hi there\"}\n");
    let out = store(&data, &admin, &["get", "room:nowhere"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no such key"), "{}", stderr(&out));

    // A server has the store open: the command goes through its admin endpoint.
    let data_flag = data.to_str().unwrap();
    let server = Server::start("echo", &["--data-dir", data_flag]);
    let admin = &server.admin;
    let out = store(&data, admin, &["put", "room:dev", "{}"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = store(&data, admin, &["list", "room:"]);
    assert_eq!(stdout(&out), "room:dev\t{}\nroom:lobby\t{\"topic\":\"hi there\"}\n");
    let out = store(&data, admin, &["delete", "room:dev"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = store(&data, admin, &["list"]);
    assert_eq!(stdout(&out), "room:lobby\t{\"topic\":\"hi there\"}\n");

    // Without a reachable server the store in use is a clear error.
    let out = store(&data, &scratch.path("elsewhere.sock"), &["list"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("admin endpoint"), "{}", stderr(&out));
}

/// Sends `bytes` to the admin socket at `path` and returns the reply.
fn admin_raw(path: &Path, bytes: &[u8]) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::os::unix::net::UnixStream::connect(path).expect("connecting to the admin socket");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}

#[test]
fn the_admin_endpoint_survives_any_bytes_and_a_client_that_never_reads() {
    use std::os::unix::fs::PermissionsExt as _;
    let server = Server::start("echo", &[]);
    let mode = std::fs::metadata(&server.admin).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the admin socket is its owner's alone");
    let data_mode = std::fs::metadata(&server.data_dir).unwrap().permissions().mode();
    assert_eq!(data_mode & 0o777, 0o700, "so is the data directory ej created");

    // Multi-byte characters where hex is expected, invalid UTF-8, garbage.
    for bytes in [
        &b"store get \xc3\xa91\n"[..],
        b"store get 6\xc3\xa9\n",
        b"\xff\xfe\n",
        b"store put\n",
    ] {
        let reply = admin_raw(&server.admin, bytes);
        assert!(reply.starts_with("error - "), "{reply:?}");
        assert!(reply.ends_with("end\n"), "{reply:?}");
    }

    // A client asks for a large reply and never reads it; another, which
    // never sends its command, holds nothing up either.
    let value = "v".repeat(100_000);
    for i in 0..16 {
        server.store(&["put", &format!("big:{i}"), &value]);
    }
    let mut hog = std::os::unix::net::UnixStream::connect(&server.admin).unwrap();
    std::io::Write::write_all(&mut hog, b"store list 626967 1000\n").unwrap();
    let _silent = std::os::unix::net::UnixStream::connect(&server.admin).unwrap();
    let mut status = ej()
        .args(["status", "--admin"])
        .arg(&server.admin)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while status.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(20) {
            let _ = status.kill();
            panic!("`ej status` hung behind an admin client that does not read");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = status.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("echo"), "{}", stdout(&out));
    drop(hog);
}

#[test]
fn the_admin_endpoint_never_removes_a_file_that_is_not_its_socket() {
    let scratch = Scratch::new("admin-file");
    let precious = scratch.path("precious.txt");
    std::fs::write(&precious, "keep me").unwrap();
    let out = ej()
        .args(["serve", "--listen", "127.0.0.1:0", "--module"])
        .arg(guest("echo"))
        .arg("--data-dir")
        .arg(scratch.path("data"))
        .arg("--admin")
        .arg(&precious)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("a file that is not a socket is there"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
}

#[test]
fn check_says_when_it_compiles_and_fills_the_cache_serve_uses() {
    // The Python handler takes seconds to compile: the first check says so,
    // the second finds it in the cache, and so does a server.
    let scratch = Scratch::new("check-cache");
    let cache = scratch.path("cache");
    let module = common::built_guest("echo-py");
    let checked = |args: &[&OsStr]| {
        let mut full: Vec<&OsStr> = vec!["check".as_ref(), "--cache-dir".as_ref(), cache.as_os_str()];
        full.extend_from_slice(args);
        let out = run(&full);
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    let first = checked(&[module.as_os_str()]);
    assert!(first.contains("compiling (the first time"), "{first}");
    let second = checked(&[module.as_os_str()]);
    assert!(!second.contains("compiling"), "{second}");
    let cache_flag = cache.to_str().unwrap();
    let server = Server::start_module(&module, &["--cache-dir", cache_flag]);
    let loaded = server.wait_for_log("compile cache", |_| true);
    assert_eq!(loaded["hit"], true, "{loaded:#}");
}

#[test]
fn wit_prints_the_world_a_handler_is_built_against() {
    let wit = include_str!("../wit/handler.wit");
    let out = run(&["wit".as_ref()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), wit, "the very WIT of this checkout");
    let scratch = Scratch::new("wit-out");
    let dir = scratch.path("wit");
    let out = run(&["wit".as_ref(), "--out".as_ref(), dir.as_os_str()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(dir.join("handler.wit")).unwrap(), wit);
}

#[test]
fn the_rust_sdk_carries_the_very_same_wit() {
    // `guest/` keeps its own copy so that ej-guest can be packaged and
    // published on its own; it must never drift from the host's.
    assert_eq!(
        include_str!("../guest/wit/handler.wit"),
        include_str!("../wit/handler.wit"),
        "guest/wit/handler.wit differs from wit/handler.wit: copy it over"
    );
}
