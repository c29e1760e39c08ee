//! The `ej-load` command: parses the options, runs the load (see the
//! library's documentation), prints the table and the JSON report on
//! stdout and writes the JSON to `--json FILE` if asked.

use anyhow::{Context as _, Result};
use clap::Parser as _;
use ej_load::Options;

#[tokio::main]
async fn main() -> Result<()> {
    let options = Options::parse();
    let report = ej_load::run(&options).await?;
    print!("{}", report.table());
    let json = serde_json::to_string_pretty(&report.json)?;
    println!("{json}");
    if let Some(path) = &options.json {
        std::fs::write(path, format!("{json}\n")).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
