//! `ej new`: a ready handler project, the counter of docs/handlers.md in
//! Rust, C, JavaScript or Python, written from the templates under
//! `templates/` (embedded in the binary) with the WIT this ej serves.
//!
//! A Rust project gets the SDK's sources too, vendored in `ej-guest/` and
//! depended on by path: ej-guest is not published, and a copy taken from
//! the very binary that will serve the handler cannot disagree with it.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::ValueEnum;

/// The languages `ej new` makes projects in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    Rust,
    C,
    Js,
    Python,
}

/// One file of a project: where it goes, and its text, in which `{{name}}`
/// stands for the project's name and `{{crate}}` for that name as a Rust
/// identifier.
struct File {
    path: &'static str,
    text: &'static str,
}

/// `file!("PATH", "SOURCE")`: the file at PATH in the project, from SOURCE
/// (relative to the repository's root).
macro_rules! file {
    ($path:literal, $source:literal) => {
        File {
            path: $path,
            text: include_str!(concat!("../../", $source)),
        }
    };
}

/// The SDK's sources, as `guest/` has them (a test keeps this list whole).
const SDK: &[File] = &[
    file!("ej-guest/Cargo.toml", "templates/rust/ej-guest/Cargo.toml"),
    file!("ej-guest/src/lib.rs", "guest/src/lib.rs"),
    file!("ej-guest/src/memory.rs", "guest/src/memory.rs"),
    file!("ej-guest/src/store.rs", "guest/src/store.rs"),
    file!("ej-guest/src/xml.rs", "guest/src/xml.rs"),
    file!("ej-guest/wit/handler.wit", "guest/wit/handler.wit"),
];

const RUST: &[File] = &[
    file!("Cargo.toml", "templates/rust/Cargo.toml"),
    file!("Cargo.lock", "templates/rust/Cargo.lock"),
    file!("src/lib.rs", "templates/rust/src/lib.rs"),
    file!("README.md", "templates/rust/README.md"),
    file!(".gitignore", "templates/rust/.gitignore"),
    file!(".cargo/config.toml", "templates/rust/.cargo/config.toml"),
];

const C: &[File] = &[
    file!("counter.c", "templates/c/counter.c"),
    file!("build.sh", "templates/c/build.sh"),
    file!("README.md", "templates/c/README.md"),
    file!(".gitignore", "templates/c/.gitignore"),
    file!("wit/handler.wit", "wit/handler.wit"),
];

const JS: &[File] = &[
    file!("counter.js", "templates/js/counter.js"),
    file!("build.sh", "templates/js/build.sh"),
    file!("toolchain/build.mjs", "templates/js/toolchain/build.mjs"),
    file!("toolchain/package.json", "templates/js/toolchain/package.json"),
    file!(
        "toolchain/package-lock.json",
        "templates/js/toolchain/package-lock.json"
    ),
    file!("README.md", "templates/js/README.md"),
    file!(".gitignore", "templates/js/.gitignore"),
    file!("wit/handler.wit", "wit/handler.wit"),
];

const PYTHON: &[File] = &[
    file!("app.py", "templates/python/app.py"),
    file!("build.sh", "templates/python/build.sh"),
    file!("README.md", "templates/python/README.md"),
    file!(".gitignore", "templates/python/.gitignore"),
    file!("wit/handler.wit", "wit/handler.wit"),
];

impl Lang {
    fn files(self) -> impl Iterator<Item = &'static File> {
        let (own, sdk) = match self {
            Lang::Rust => (RUST, SDK),
            Lang::C => (C, &[][..]),
            Lang::Js => (JS, &[][..]),
            Lang::Python => (PYTHON, &[][..]),
        };
        own.iter().chain(sdk)
    }

    /// The command that builds a project, run in its directory.
    pub fn build_command(self) -> &'static str {
        match self {
            Lang::Rust => "cargo build --release --target wasm32-unknown-unknown",
            Lang::C | Lang::Js | Lang::Python => "./build.sh",
        }
    }

    /// The module the build makes, relative to the project's directory.
    pub fn module(self, name: &str) -> String {
        match self {
            Lang::Rust => format!("target/wasm32-unknown-unknown/release/{}.wasm", crate_name(name)),
            Lang::C | Lang::Js | Lang::Python => format!("{name}.wasm"),
        }
    }
}

/// `name` as the identifier of a Rust crate (what cargo names its library).
fn crate_name(name: &str) -> String {
    name.replace('-', "_")
}

/// Writes the project `name` in `lang` into the directory `dir`, which must
/// not exist yet.
pub fn create(dir: &Path, name: &str, lang: Lang) -> Result<()> {
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        bail!("`{name}` cannot name a project: use letters, digits, `-` and `_`, starting with a letter");
    }
    if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    match std::fs::create_dir(dir) {
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!(
                "{} exists: ej new makes a new directory, and leaves one there alone",
                dir.display()
            )
        }
        result => result.with_context(|| format!("creating {}", dir.display()))?,
    }
    for file in lang.files() {
        let path: PathBuf = dir.join(file.path);
        std::fs::create_dir_all(path.parent().expect("a file in the project"))?;
        let text = file
            .text
            .replace("{{name}}", name)
            .replace("{{crate}}", &crate_name(name));
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        if file.path.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of `guest/` but its Cargo.toml (which inherits from the
    /// workspace, so the template has a standalone one) is vendored.
    #[test]
    fn the_vendored_sdk_is_all_of_guest() {
        let guest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest");
        let mut on_disk = Vec::new();
        for dir in ["src", "wit"] {
            for entry in std::fs::read_dir(guest.join(dir)).unwrap() {
                on_disk.push(format!(
                    "ej-guest/{dir}/{}",
                    entry.unwrap().file_name().to_string_lossy()
                ));
            }
        }
        on_disk.sort();
        let sources = SDK.iter().filter(|file| !file.path.ends_with("Cargo.toml"));
        let mut vendored: Vec<String> = sources.map(|file| file.path.to_owned()).collect();
        vendored.sort();
        assert_eq!(
            vendored, on_disk,
            "scaffold::SDK must list every file of guest/src and guest/wit"
        );
    }

    #[test]
    fn names_that_are_not_plain_words_are_refused() {
        let dir = std::env::temp_dir().join(format!("ej-scaffold-names-{}", std::process::id()));
        for name in ["", "../up", "a/b", "-x", "1st", "a b"] {
            let error = create(&dir.join("p"), name, Lang::C).unwrap_err();
            assert!(error.to_string().contains("cannot name a project"), "{name:?}: {error}");
        }
        assert!(!dir.exists());
    }
}
