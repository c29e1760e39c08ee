//! What a failed event left behind: why it failed, where in the guest, and
//! what the guest wrote before it did. Faults are values, never panics.

use serde::Serialize;

/// Why an event's outcome was discarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// The guest trapped (a panic, `unreachable`, an out-of-bounds access…).
    Trap,
    /// The event ran past its deadline.
    Timeout,
    /// The guest tried to grow its memory past the limit.
    Memory,
    /// The returned state and actions were larger than allowed.
    OutcomeTooLarge,
    /// The handler returned an error.
    HandlerError,
    /// The instance could not be created.
    Instantiate,
    /// The event's store writes could not be committed.
    Store,
    /// The event's store reads were changed by other commits every time it
    /// ran, `--max-retries` times over.
    Conflict,
    /// The outcome asked for something the host cannot do on this
    /// connection (`start-tls` on one already encrypted).
    BadAction,
}

impl FaultKind {
    /// The kind's name, as crash reports and logs spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Trap => "trap",
            Self::Timeout => "timeout",
            Self::Memory => "memory",
            Self::OutcomeTooLarge => "outcome-too-large",
            Self::HandlerError => "handler-error",
            Self::Instantiate => "instantiate",
            Self::Store => "store",
            Self::Conflict => "conflict",
            Self::BadAction => "bad-action",
        }
    }
}

/// A failed event, ready to go into a crash report.
#[derive(Clone, Debug, Serialize)]
pub struct Fault {
    pub kind: FaultKind,
    /// One line saying what went wrong.
    pub reason: String,
    /// The guest's call stack at the fault, innermost first, when known.
    pub backtrace: Vec<String>,
    /// What the guest wrote to stdout and stderr during the event (bounded).
    pub output: String,
}

impl Fault {
    /// The first lines of what the guest wrote (a panic message, an
    /// exception), for a log line a person reads; the crash report keeps
    /// all of it.
    pub fn output_head(&self) -> String {
        const LINES: usize = 3;
        let mut head: Vec<&str> = self
            .output
            .lines()
            .filter(|line| !line.trim().is_empty())
            .take(LINES + 1)
            .collect();
        if head.len() > LINES {
            head[LINES] = "…";
        }
        head.join(" | ")
    }

    /// A fault the host found after the guest had finished: no backtrace,
    /// no guest output.
    pub fn host(kind: FaultKind, reason: String) -> Self {
        Self {
            kind,
            reason,
            backtrace: Vec::new(),
            output: String::new(),
        }
    }
}
