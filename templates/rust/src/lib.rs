//! Answers each stanza with <ok n='N'/>, N counting the stanzas of the
//! connection so far.

use ej_guest::{Context, Handler};

/// The handler is the connection's state, kept between events as the JSON
/// `{"n":N}`, as the C, JavaScript and Python counters keep it: the handler
/// can be swapped for one of them under a live connection.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Counter {
    n: u64,
}

impl Handler for Counter {
    fn stanza(&mut self, cx: &mut Context, _stanza: &str) -> Result<(), String> {
        self.n += 1;
        cx.send(format!("<ok n='{}'/>", self.n));
        Ok(())
    }
}

ej_guest::export!(Counter);
