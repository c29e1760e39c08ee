//! Every bound the host enforces, in one place, with the defaults the CLI
//! shows. A limit that a client or a handler could push on lives here.

use std::time::Duration;

/// What to do with a connection whose handler faulted on an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FaultPolicy {
    /// Send an `<internal-server-error/>` stream error and close the connection.
    Close,
    /// Drop the event and keep the connection, its state as before the event.
    Skip,
}

/// Bounds on one connection's input and output.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Largest stanza (or stream header) accepted, in bytes.
    pub max_stanza_bytes: usize,
    /// Deepest nesting of elements accepted in a stanza.
    pub max_depth: usize,
    /// Inbound rate in bytes per second; also the ceiling for `throttle`.
    pub read_rate: u32,
    /// Bytes queued for a peer that has not read them yet; past this the
    /// peer is cut off with a stream error.
    pub max_outbound_bytes: usize,
    /// How long the final bytes of a closing connection may take to drain.
    pub linger: Duration,
    /// What a handler fault does to the connection.
    pub on_fault: FaultPolicy,
    /// Events from other connections (routed payloads) waiting for this one.
    pub mailbox: usize,
    /// How long a route to a full mailbox waits for room.
    pub route_wait: Duration,
    /// Addresses one connection may hold.
    pub max_addresses: usize,
    /// Timers one connection may have set.
    pub max_timers: usize,
    /// Events one event may cause its own connection in a chain (a bounce,
    /// a refused bind, and what those cause in turn).
    pub max_chain: usize,
    /// How long shutdown waits for the connections to close.
    pub shutdown_timeout: Duration,
    /// How long a peer may take to send its stream header, after connecting
    /// and after each restart of its stream.
    pub header_timeout: Duration,
    /// How long a peer may take to send the rest of a stanza (or header)
    /// once it has begun it.
    pub stanza_timeout: Duration,
    /// The longest a session waits for its peer to come back (a `hold`'s
    /// window is cut to this).
    pub max_hold: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_stanza_bytes: 64 * 1024,
            max_depth: crate::framer::DEFAULT_MAX_DEPTH,
            read_rate: 1024 * 1024,
            max_outbound_bytes: 1024 * 1024,
            linger: Duration::from_secs(2),
            on_fault: FaultPolicy::Close,
            mailbox: 256,
            route_wait: Duration::from_secs(1),
            max_addresses: 16,
            max_timers: 64,
            max_chain: 64,
            shutdown_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            stanza_timeout: Duration::from_secs(60),
            max_hold: Duration::from_secs(600),
        }
    }
}

/// Bounds on one event's handler instance.
#[derive(Clone, Debug)]
pub struct SandboxLimits {
    /// Instances that may exist at once; events beyond wait for a slot.
    pub max_instances: u32,
    /// Linear memory one instance may grow to, in bytes.
    pub max_memory_bytes: usize,
    /// Time one event's guest may run, counted in epoch ticks while it runs
    /// (waiting for a CPU after a yield is not counted).
    pub event_timeout: Duration,
    /// Size of the returned state plus every action's payload, in bytes.
    pub max_outcome_bytes: usize,
    /// Actions one outcome may hold, whatever their size.
    pub max_actions: usize,
    /// Guest stdout and stderr kept per event (for crash reports), in bytes.
    pub max_output_bytes: usize,
    /// Bytes of keys and values one event may write to the store.
    pub max_store_write_bytes: usize,
    /// Bytes one event may read through its imports: store keys asked for,
    /// keys and values returned, addresses a registry lookup returns.
    pub max_read_bytes: usize,
    /// Times an event whose store reads went stale before it committed is
    /// run again; past that it faults with `conflict`.
    pub max_retries: u32,
    /// Entries one store `scan` or registry `lookup` returns at most.
    pub max_listed: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            max_instances: 256,
            max_memory_bytes: 64 * 1024 * 1024,
            event_timeout: Duration::from_millis(100),
            max_outcome_bytes: 1024 * 1024,
            max_actions: 4096,
            max_output_bytes: 16 * 1024,
            max_store_write_bytes: 1024 * 1024,
            max_read_bytes: 8 * 1024 * 1024,
            max_retries: 100,
            max_listed: 1000,
        }
    }
}
