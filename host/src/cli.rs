//! The command line: `ej serve`, `ej check`, `ej compile`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::limits::{ConnectionLimits, FaultPolicy, SandboxLimits};

/// Serve long-lived XML streams with protocol logic in a sandboxed
/// WebAssembly component: a fresh instance for every event.
#[derive(Parser, Debug)]
#[command(name = "ej", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Accept connections and run the handler module for each event.
    Serve(Serve),
    /// Check that a module fits the ej world; print what it imports and exports.
    Check {
        /// A component (.wasm) or one compiled by `ej compile` (.cwasm).
        module: PathBuf,
    },
    /// Compile a component ahead of time, so `ej serve` starts in milliseconds.
    Compile {
        /// The component to compile (.wasm).
        module: PathBuf,
        /// Where to write the compiled module (.cwasm).
        #[arg(short, long)]
        output: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct Serve {
    /// Address to listen on; repeat to listen on several.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5222")]
    pub listen: Vec<SocketAddr>,
    /// The handler: a component (.wasm) or one compiled by `ej compile` (.cwasm).
    #[arg(long, value_name = "PATH")]
    pub module: PathBuf,
    /// What a handler fault does to its connection.
    #[arg(long, value_enum, default_value = "close")]
    pub on_fault: FaultPolicy,
    /// Connections served at once; more are refused.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_connections: u32,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Append crash reports (one JSON line per handler fault) to this file
    /// instead of stderr.
    #[arg(long, value_name = "PATH")]
    pub crash_log: Option<PathBuf>,
    /// How log lines look.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// Limits with a size (`64KiB`, `1MiB`, plain bytes) or a duration (`100ms`, `2s`).
#[derive(Args, Debug)]
pub struct LimitArgs {
    /// Largest stanza or stream header accepted; a larger one is a
    /// `<policy-violation/>` stream error.
    #[arg(long, value_name = "SIZE", default_value = "64KiB", value_parser = parse_size)]
    pub max_stanza_bytes: usize,
    /// Inbound bytes per second per connection; handlers may only lower it.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub read_rate: usize,
    /// Bytes queued for a peer that does not read before it is cut off.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub max_outbound_bytes: usize,
    /// How long a closing connection's last bytes may take to drain.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub linger: Duration,
    /// Handler instances alive at once; further events wait for a slot.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_instances: u32,
    /// Linear memory one instance may use.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub max_memory: usize,
    /// Wall-clock time one event may take.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_duration)]
    pub event_timeout: Duration,
    /// Size of one event's returned state plus its actions.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub max_outcome_bytes: usize,
    /// Guest stdout and stderr kept per event for crash reports.
    #[arg(long, value_name = "SIZE", default_value = "16KiB", value_parser = parse_size)]
    pub max_output_bytes: usize,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl LimitArgs {
    pub fn sandbox(&self) -> SandboxLimits {
        SandboxLimits {
            max_instances: self.max_instances.max(1),
            max_memory_bytes: self.max_memory,
            event_timeout: self.event_timeout,
            max_outcome_bytes: self.max_outcome_bytes,
            max_output_bytes: self.max_output_bytes,
        }
    }

    pub fn connection(&self, on_fault: FaultPolicy) -> ConnectionLimits {
        ConnectionLimits {
            max_stanza_bytes: self.max_stanza_bytes,
            read_rate: u32::try_from(self.read_rate).unwrap_or(u32::MAX),
            max_outbound_bytes: self.max_outbound_bytes,
            linger: self.linger,
            on_fault,
        }
    }
}

/// `4096`, `64KiB`, `1MiB`, `1GiB`, `10kB`, `1MB`.
fn parse_size(text: &str) -> Result<usize, String> {
    let digits = text.trim().trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text.trim()[digits.len()..];
    let scale: usize = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(format!("unknown unit `{unit}` (use B, KiB, MiB, GiB, kB, MB or GB)")),
    };
    let value: usize = digits.parse().map_err(|_| format!("`{text}` is not a size"))?;
    value.checked_mul(scale).ok_or_else(|| format!("`{text}` is too large"))
}

/// `250ms`, `2s`, `1m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let value: u64 = digits.parse().map_err(|_| format!("`{text}` is not a duration"))?;
    match &text[digits.len()..] {
        "ms" => Ok(Duration::from_millis(value)),
        "s" => Ok(Duration::from_secs(value)),
        "m" => Ok(Duration::from_secs(value * 60)),
        unit => Err(format!("unknown unit `{unit}` (use ms, s or m)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_like_the_help() {
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("10kB"), Ok(10_000));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("KiB").is_err());
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("2").is_err());
    }

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
