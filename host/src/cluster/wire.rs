//! What nodes send each other over NATS: a routed payload's envelope, and
//! the one-byte answer to it.
//!
//! An envelope is its three fields, each a 4-byte big-endian length and
//! its bytes, in the order from, to, payload. Hand-written: three strings
//! need no serialization framework, and the codec is on every route
//! between nodes.

use crate::bindings::Envelope;

/// What the node holding an address did with a payload routed to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// In the receiver's mailbox.
    Delivered,
    /// Nobody holds the address there (or it closed before taking it).
    Undeliverable,
    /// The receiver's mailbox stayed full for `--route-wait`.
    Busy,
}

impl Answer {
    pub fn byte(self) -> u8 {
        match self {
            Self::Delivered => b'D',
            Self::Undeliverable => b'U',
            Self::Busy => b'B',
        }
    }

    /// The answer a message carries; none for anything else.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        match bytes {
            b"D" => Some(Self::Delivered),
            b"U" => Some(Self::Undeliverable),
            b"B" => Some(Self::Busy),
            _ => None,
        }
    }
}

/// The bytes of `envelope`.
pub fn encode(envelope: &Envelope) -> Vec<u8> {
    let fields = [&envelope.from, &envelope.to, &envelope.payload];
    let mut bytes = Vec::with_capacity(12 + fields.iter().map(|field| field.len()).sum::<usize>());
    for field in fields {
        // Fields are far below 4 GiB: a stanza is bounded by `--max-stanza`.
        bytes.extend_from_slice(&(field.len() as u32).to_be_bytes());
        bytes.extend_from_slice(field.as_bytes());
    }
    bytes
}

/// The envelope in `bytes`; none if they are not one.
pub fn decode(mut bytes: &[u8]) -> Option<Envelope> {
    let mut field = || -> Option<String> {
        let (len, rest) = bytes.split_first_chunk::<4>()?;
        let len = u32::from_be_bytes(*len) as usize;
        let text = rest.get(..len)?;
        bytes = &rest[len..];
        String::from_utf8(text.to_vec()).ok()
    };
    let envelope = Envelope {
        from: field()?,
        to: field()?,
        payload: field()?,
    };
    bytes.is_empty().then_some(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(from: &str, to: &str, payload: &str) -> Envelope {
        Envelope {
            from: from.to_owned(),
            to: to.to_owned(),
            payload: payload.to_owned(),
        }
    }

    #[test]
    fn an_envelope_comes_back_as_it_went() {
        for sent in [
            envelope("alice@x/a", "bob@x/b", "<message>é</message>"),
            envelope("", "", ""),
            envelope("a\0b", "\n", &"x".repeat(70_000)),
        ] {
            let got = decode(&encode(&sent)).expect("decodes");
            assert_eq!((got.from, got.to, got.payload), (sent.from, sent.to, sent.payload));
        }
    }

    #[test]
    fn anything_else_is_not_an_envelope() {
        let good = encode(&envelope("a", "b", "c"));
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_none(), "cut at {cut}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(decode(&longer).is_none());
        let mut huge = good;
        huge[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode(&huge).is_none());
        assert!(
            decode(&[0, 0, 0, 1, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]).is_none(),
            "not UTF-8"
        );
    }

    #[test]
    fn answers_are_one_byte() {
        for answer in [Answer::Delivered, Answer::Undeliverable, Answer::Busy] {
            assert_eq!(Answer::from_bytes(&[answer.byte()]), Some(answer));
        }
        assert_eq!(Answer::from_bytes(b""), None);
        assert_eq!(Answer::from_bytes(b"DD"), None);
    }
}
