//! The chat example's members all talking at once in the lobby, and what
//! each must hear: every message, each sender's in order.

use super::Client;

/// Has each of `members` (nicknames `nicks`, in the lobby) say `n`
/// numbered messages at once; checks that every member hears all of them,
/// each sender's in order, and nothing else.
pub fn everyone_talks_at_once(members: &mut [Client], nicks: &[&str], n: usize) {
    for (member, nick) in members.iter_mut().zip(nicks) {
        let burst: String = (0..n)
            .map(|i| format!("<message room='lobby'><body>{nick} {i}</body></message>"))
            .collect();
        member.send(&burst);
    }
    for (member, me) in members.iter_mut().zip(nicks) {
        let mut next = vec![0usize; nicks.len()];
        for _ in 0..nicks.len() * n {
            let message = member.read_until("</message>");
            let (from, text) = message
                .strip_prefix("<message room='lobby' from='")
                .and_then(|rest| rest.split_once("'><body>"))
                .unwrap_or_else(|| panic!("{me} got {message:?}"));
            let sender = nicks.iter().position(|nick| *nick == from).expect("a member");
            assert_eq!(
                text,
                format!("{from} {}</body></message>", next[sender]),
                "{me}: {from}'s messages out of order"
            );
            next[sender] += 1;
        }
        assert_eq!(next, vec![n; nicks.len()], "{me}");
    }
}
