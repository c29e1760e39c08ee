//! Round trips through the faulty example handler's probes, and reading
//! the attributes of its replies.

use super::Client;

/// What faulty echoes for `<ping/>`: a round trip that proves everything
/// sent to the client before it has arrived, and nothing else.
pub const PONG: &str = "<ping xmlns='jabber:client'/>";

/// A round trip: fails if anything but the echo of `<ping/>` arrives.
pub fn sync(client: &mut Client) {
    client.send("<ping/>");
    client.expect(PONG);
}

/// Binds `address`, checking the bind was not refused.
pub fn bind(client: &mut Client, address: &str) {
    client.send(&format!("<bind address='{address}'/>"));
    client.expect(&format!("<binding address='{address}'/>"));
    sync(client);
}

/// The value of the first attribute `name` in `text`.
pub fn attr<'a>(text: &'a str, name: &str) -> &'a str {
    let start = text
        .find(&format!(" {name}='"))
        .unwrap_or_else(|| panic!("no {name} in {text:?}"))
        + name.len()
        + 3;
    let len = text[start..].find('\'').expect("a closing quote");
    &text[start..start + len]
}

/// The attribute `name` in `text`, a number.
pub fn number(text: &str, name: &str) -> usize {
    attr(text, name)
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number in {text:?}"))
}
