/**
 * alice logs in (without presence), gets her roster (which also asks the
 * server for roster pushes), adds bob to it with an iq set (name "Bob"),
 * and gets it again.
 *
 * Reports `session_start`; `roster` (`when`: "before" or "after", `items`:
 * JID → {subscription, ask, name}); `roster_set` (the type of the set's
 * answer); and each `roster_push` alice receives (`from`, `to`, `items`),
 * which @xmpp/client answers with a result. Exits 0 once the set is
 * answered, the push has arrived and the roster is fetched again.
 */

import * as harness from "./harness.mjs";

harness.run(["alice", "bob"], async (args) => {
  const { xml, jid } = harness;
  const alice = harness.client(args, "alice", args.alice);
  const bob = jid(args.bob[0]).bare().toString();
  let pushed;
  const push = new Promise((resolve) => {
    pushed = resolve;
  });
  alice.iqCallee.set("jabber:iq:roster", "query", ({ stanza, element }) => {
    const { from, to } = stanza.attrs;
    harness.emit("roster_push", { client: "alice", from: from ?? null, to: to ?? null, items: harness.items(element) });
    pushed();
    return true;
  });
  await harness.login(alice, false);

  harness.emit("roster", { client: "alice", when: "before", items: await harness.roster(alice) });
  const set = xml("iq", { type: "set" }, xml("query", { xmlns: "jabber:iq:roster" }, xml("item", { jid: bob, name: "Bob" })));
  const answer = await alice.iqCaller.request(set);
  harness.emit("roster_set", { client: "alice", type: answer.attrs.type });
  await push;
  harness.emit("roster", { client: "alice", when: "after", items: await harness.roster(alice) });

  await harness.logout(alice);
});
