/**
 * Two clients, alice and bob, log in (each sends initial presence) and
 * exchange chat messages: first to each other's bare JID, then to each
 * other's full JID.
 *
 * Reports `session_start` for each, then every `message` each receives
 * (with `client`, the receiver, and the stanza's `from`, `to`, `type` and
 * `body`); exits 0 once each has received the other's two messages.
 */

import * as harness from "./harness.mjs";

harness.run(["alice", "bob"], async (args) => {
  const { xml } = harness;
  const alice = harness.client(args, "alice", args.alice);
  const bob = harness.client(args, "bob", args.bob);
  const aliceInbox = harness.inbox(alice);
  const bobInbox = harness.inbox(bob);
  await harness.login(alice);
  await harness.login(bob);

  const chat = (from, to, body) => from.send(xml("message", { to, type: "chat" }, xml("body", {}, body)));
  await chat(bob, alice.jid.bare().toString(), "to alice's bare JID");
  await chat(alice, bob.jid.bare().toString(), "to bob's bare JID");
  await chat(bob, alice.jid.toString(), "to alice's full JID");
  await chat(alice, bob.jid.toString(), "to bob's full JID");
  await Promise.all([aliceInbox.next(2), bobInbox.next(2)]);

  await Promise.all([harness.logout(alice), harness.logout(bob)]);
});
