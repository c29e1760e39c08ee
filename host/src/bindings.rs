//! Host-side bindings of the `ej:handler` world in `wit/handler.wit`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "handler",
    // A store read or a lookup may wait for the network (the store and
    // the bindings in PostgreSQL).
    imports: {
        "ej:handler/store.get": async | trappable,
        "ej:handler/store.scan": async | trappable,
        "ej:handler/registry.lookup": async | trappable,
        default: trappable,
    },
    exports: { default: async },
});

pub use self::ej::handler::types::{Action, CloseReason, Envelope, ModuleInfo, TlsInfo};

/// The WIT this host serves, for `ej wit`: what a handler is built against.
pub const WIT: &str = include_str!("../../wit/handler.wit");

impl Event {
    /// Every event's name, as in the WIT, in the order of `ordinal`.
    pub const KINDS: [&'static str; 12] = [
        "stream-open",
        "stanza",
        "routed",
        "undeliverable",
        "busy",
        "bind-refused",
        "timer",
        "timer-refused",
        "detached",
        "took-over",
        "closed",
        "operator",
    ];

    /// The event's place in `KINDS` (where the metrics count it).
    pub fn ordinal(&self) -> usize {
        match self {
            Event::StreamOpen(_) => 0,
            Event::Stanza(_) => 1,
            Event::Routed(_) => 2,
            Event::Undeliverable(_) => 3,
            Event::Busy(_) => 4,
            Event::BindRefused(_) => 5,
            Event::Timer(_) => 6,
            Event::TimerRefused(_) => 7,
            Event::Detached => 8,
            Event::TookOver(_) => 9,
            Event::Closed(_) => 10,
            Event::Operator(_) => 11,
        }
    }

    /// The event's name in crash reports and logs.
    pub fn kind(&self) -> &'static str {
        Self::KINDS[self.ordinal()]
    }
}

impl CloseReason {
    /// The reason's name, as in the WIT.
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::StreamEnd => "stream-end",
            CloseReason::Disconnected => "disconnected",
            CloseReason::Handler => "handler",
            CloseReason::Fault => "fault",
            CloseReason::StreamError => "stream-error",
            CloseReason::Shutdown => "shutdown",
            CloseReason::TlsFailed => "tls-failed",
            CloseReason::Expired => "expired",
        }
    }
}

impl Outcome {
    /// Bytes this outcome asks the host to hold or write.
    pub fn size(&self) -> usize {
        self.state.len()
            + self
                .actions
                .iter()
                .map(|action| match action {
                    Action::Send(text)
                    | Action::Close(Some(text))
                    | Action::Bind(text)
                    | Action::Unbind(text)
                    | Action::CancelTimer(text)
                    | Action::TakeOver(text) => text.len(),
                    Action::Hold(hold) => hold.token.len(),
                    Action::Route(route) => route.to.len() + route.payload.len(),
                    Action::SetTimer(timer) => timer.tag.len(),
                    Action::Close(None)
                    | Action::Throttle(_)
                    | Action::ResetStream
                    | Action::StartTls
                    | Action::MaxStanza(_) => 0,
                })
                .sum::<usize>()
    }
}
