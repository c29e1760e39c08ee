//! ej: a server for long-lived XML streams whose protocol logic is an
//! untrusted WebAssembly component, instantiated afresh for every event.
//!
//! The host owns the sockets, the per-connection state and the flow
//! control; handlers only ever see one event, its connection's state, and
//! return the new state and a list of actions.

pub mod admin;
pub mod admission;
pub mod bindings;
pub mod cache;
pub mod cli;
pub mod cluster;
pub mod crash;
pub mod db;
pub mod fault;
pub mod framer;
pub mod holds;
pub mod imports;
pub mod limits;
pub mod metrics;
pub mod module;
pub mod outbox;
pub mod outgoing;
pub mod registry;
pub mod remote;
pub mod sandbox;
pub mod scaffold;
pub mod server;
pub mod service;
pub mod session;
pub mod store_ops;
pub mod talk;
pub mod throttle;
pub mod timers;
pub mod tls;
pub mod transport;
pub mod turn;
pub mod warning;
pub mod watch;
