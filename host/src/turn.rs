//! Which of a session's two sources of work goes next: what its peer sent
//! and what was routed to it take turns.
//!
//! Left to `select!`, whichever source's branch the random start reached
//! first won, and the peer's stanzas, found ready after a run of idle
//! branches, won two turns in three. Past capacity every session then took
//! in its peer's stanzas faster than it delivered what others routed to it:
//! mailboxes filled with work the server had no time for, and it delivered
//! about half its capacity. Taking turns, each stanza taken in is matched
//! by a delivery, so the excess waits in the peers' sockets instead.
//! (While its mailbox is empty, a session handles the frames of a read
//! one after another without coming back here: see `Session::frames`.)

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use tokio::sync::mpsc;

use crate::registry::Delivery;
use crate::transport::Input;

/// The next piece of work.
pub enum Work {
    /// Something routed to the session.
    Delivery(Delivery),
    /// The peer's next frame, already read.
    Frame,
    /// What the reader read next (`None`: the reader is gone).
    Input(Option<Input>),
}

/// Whose turn it is.
#[derive(Default)]
pub struct Turns {
    peer_next: bool,
}

/// The session's sources of work, as they stand this turn.
pub struct Sources<'a> {
    pub deliveries: &'a mut mpsc::Receiver<Delivery>,
    pub input: &'a mut mpsc::Receiver<Input>,
    /// Whether the peer's stanzas are taken now at all.
    pub reading: bool,
    /// Whether a frame may be waiting in the framer (then nothing more is
    /// read until it is handled).
    pub framed: bool,
}

impl Turns {
    /// Waits for the next piece of work: from the source whose turn it is,
    /// or the other if that one has none.
    pub fn next<'a>(&'a mut self, sources: Sources<'a>) -> Next<'a> {
        Next { turns: self, sources }
    }
}

/// The future of [`Turns::next`]: a plain struct rather than an `async
/// fn`'s, because every idle session holds one (32 bytes).
pub struct Next<'a> {
    turns: &'a mut Turns,
    sources: Sources<'a>,
}

impl Future for Next<'_> {
    type Output = Work;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Work> {
        let Next { turns, sources } = self.get_mut();
        let peer_first = turns.peer_next;
        for peer in [peer_first, !peer_first] {
            let polled = if peer {
                sources.poll_peer(cx)
            } else {
                sources.poll_mailbox(cx)
            };
            if let Poll::Ready(work) = polled {
                turns.peer_next = !peer;
                return Poll::Ready(work);
            }
        }
        Poll::Pending
    }
}

impl Sources<'_> {
    fn poll_mailbox(&mut self, cx: &mut Context<'_>) -> Poll<Work> {
        match self.deliveries.poll_recv(cx) {
            Poll::Ready(Some(delivery)) => Poll::Ready(Work::Delivery(delivery)),
            // A mailbox given away (see `Session::hand_over`) has nothing.
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }

    fn poll_peer(&mut self, cx: &mut Context<'_>) -> Poll<Work> {
        if !self.reading {
            Poll::Pending
        } else if self.framed {
            // A frame costs budget like a read: a task that used its budget
            // yields rather than run only its peer's stanzas.
            pin!(tokio::task::coop::consume_budget()).poll(cx).map(|()| Work::Frame)
        } else {
            self.input.poll_recv(cx).map(Work::Input)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::Envelope;

    fn bounced(payload: &str) -> Delivery {
        Delivery::Bounced(Box::new(Envelope {
            from: String::new(),
            to: "somebody".into(),
            payload: payload.into(),
        }))
    }

    /// What came next, named: `d:` a delivery's payload, `i:` an input's
    /// bytes, `frame`.
    fn name(work: Work) -> String {
        match work {
            Work::Delivery(delivery) => format!("d:{}", delivery.into_envelope().payload),
            Work::Frame => "frame".into(),
            Work::Input(Some(Input::Data(bytes))) => format!("i:{}", String::from_utf8_lossy(&bytes)),
            Work::Input(_) => "i:end".into(),
        }
    }

    struct Rig {
        turns: Turns,
        deliveries: mpsc::Receiver<Delivery>,
        input: mpsc::Receiver<Input>,
        /// The senders, kept: a closed channel is work of its own.
        _senders: (mpsc::Sender<Delivery>, mpsc::Sender<Input>),
    }

    impl Rig {
        /// A session's sources, both already holding work.
        fn new(delivered: &[&str], read: &[&str]) -> Self {
            let (mailbox, deliveries) = mpsc::channel(8);
            let (reader, input) = mpsc::channel(8);
            for payload in delivered {
                mailbox.try_send(bounced(payload)).unwrap();
            }
            for bytes in read {
                reader.try_send(Input::Data(bytes.as_bytes().into())).unwrap();
            }
            Self {
                turns: Turns::default(),
                deliveries,
                input,
                _senders: (mailbox, reader),
            }
        }

        /// The next `n` pieces of work (`reading`, `framed` as given).
        async fn take(&mut self, n: usize, reading: bool, framed: bool) -> Vec<String> {
            let mut taken = Vec::new();
            for _ in 0..n {
                let sources = Sources {
                    deliveries: &mut self.deliveries,
                    input: &mut self.input,
                    reading,
                    framed,
                };
                let work = tokio::time::timeout(std::time::Duration::from_secs(1), self.turns.next(sources))
                    .await
                    .expect("work was waiting");
                taken.push(name(work));
            }
            taken
        }
    }

    #[tokio::test]
    async fn the_mailbox_and_the_peer_take_turns_while_both_have_work() {
        let mut rig = Rig::new(&["a", "b", "c"], &["1", "2", "3"]);
        assert_eq!(
            rig.take(6, true, false).await,
            ["d:a", "i:1", "d:b", "i:2", "d:c", "i:3"]
        );
    }

    #[tokio::test]
    async fn a_frame_already_read_takes_the_peer_s_turn_and_nothing_more_is_read() {
        let mut rig = Rig::new(&["a", "b"], &["1"]);
        assert_eq!(rig.take(4, true, true).await, ["d:a", "frame", "d:b", "frame"]);
        assert_eq!(rig.take(1, true, false).await, ["i:1"]);
    }

    #[tokio::test]
    async fn either_source_alone_goes_on_without_waiting_for_the_other() {
        let mut rig = Rig::new(&["a", "b"], &[]);
        assert_eq!(rig.take(2, true, false).await, ["d:a", "d:b"]);
        let mut rig = Rig::new(&[], &["1", "2"]);
        assert_eq!(rig.take(2, true, false).await, ["i:1", "i:2"]);
    }

    #[tokio::test]
    async fn only_the_mailbox_goes_while_the_peer_is_not_read() {
        let mut rig = Rig::new(&["a", "b"], &["1"]);
        assert_eq!(rig.take(2, false, true).await, ["d:a", "d:b"]);
        let waited = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            rig.turns.next(Sources {
                deliveries: &mut rig.deliveries,
                input: &mut rig.input,
                reading: false,
                framed: false,
            }),
        )
        .await;
        assert!(
            waited.is_err(),
            "the peer's input was taken while it was not to be read"
        );
    }
}
