//! The server's CPU time and resident memory, read from `/proc` (Linux).

use anyhow::{Context as _, Result};

/// Clock ticks per second in `/proc/PID/stat` (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of a process.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// User plus system CPU time, in seconds, over all its threads.
    pub cpu_seconds: f64,
    /// The part of `cpu_seconds` spent in the kernel on the process's
    /// behalf (system calls: the sockets' sends and receives, wake-ups).
    pub system_seconds: f64,
    /// Resident memory (`VmRSS`), in bytes.
    pub rss_bytes: u64,
}

/// Reads process `pid`'s CPU time and resident memory.
pub fn sample(pid: u32) -> Result<Sample> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat"))?;
    let (user, system) = cpu_seconds(&stat).with_context(|| format!("parsing /proc/{pid}/stat"))?;
    Ok(Sample {
        cpu_seconds: user + system,
        system_seconds: system,
        rss_bytes: rss_bytes(&std::fs::read_to_string(format!("/proc/{pid}/status"))?)
            .with_context(|| format!("no VmRSS in /proc/{pid}/status"))?,
    })
}

/// utime and stime, in seconds, from a `/proc/PID/stat` line. The command
/// name in parentheses may hold spaces, so fields are counted after its `)`.
fn cpu_seconds(stat: &str) -> Option<(f64, f64)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime as f64 / TICKS_PER_SECOND, stime as f64 / TICKS_PER_SECOND))
}

fn rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_and_status() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(cpu_seconds(stat), Some((2.5, 0.75)));
        assert_eq!(rss_bytes("Name:\tej\nVmRSS:\t  2048 kB\n"), Some(2 << 20));
        assert_eq!(rss_bytes("Name:\tej\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = sample(std::process::id()).unwrap();
        assert!(me.rss_bytes > 0);
    }
}
