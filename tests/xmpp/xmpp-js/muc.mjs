/**
 * Group chat (XEP-0045) with three users: alice enters
 * `team@conference.DOMAIN`, which creates it (§10.1.1: status 110 and 201
 * in her own presence), and accepts the default configuration with an
 * empty submitted form (§10.1.2, an instant room). bob enters, then carol;
 * each is told of those already there, and they of the newcomer (§7.2.3).
 * carol says something to the room (§7.4): it reaches all three from
 * team@…/carol, with the room's XEP-0359 stanza-id. alice, the owner and
 * so a moderator, kicks carol with a muc#admin set of her role to none
 * (§8.2): carol gets her own unavailable presence with status 307 and
 * 110, alice and bob hers with 307.
 *
 * Reports `session_start` for each, what groupchat.mjs's Observer and
 * `join` report for each client (`presence`, `groupchat`, `joined`, …),
 * `configured` (the type of the form's answer), `said` (`client`, `id`:
 * the id carol's message went with), `kicked` (`client`, `type` of the
 * set's answer). Exits 0 once all three have seen carol go, reporting
 * `done` before logging out (after which the room tells of each leaving).
 */

import * as groupchat from "./groupchat.mjs";
import * as harness from "./harness.mjs";

harness.run(["alice", "bob", "carol"], async (args) => {
  const { xml } = harness;
  const service = groupchat.service(args.alice[0]);
  const names = ["alice", "bob", "carol"];
  const clients = Object.fromEntries(names.map((name) => [name, harness.client(args, name, args[name])]));
  const seen = Object.fromEntries(names.map((name) => [name, new groupchat.Observer(clients[name], service)]));
  for (const name of names) await harness.login(clients[name]);
  const { alice, bob, carol } = clients;
  const room = `team@${service}`;

  await groupchat.join(alice, seen.alice, room, "alice");
  await groupchat.instant(alice, room);

  await groupchat.join(bob, seen.bob, room, "bob");
  await seen.alice.expect("presence", { from: `${room}/bob`, type: "available" });
  await groupchat.join(carol, seen.carol, room, "carol");
  for (const name of ["alice", "bob"]) {
    await seen[name].expect("presence", { from: `${room}/carol`, type: "available" });
  }

  const id = "carol-says-hello";
  harness.emit("said", { client: "carol", id });
  await carol.send(xml("message", { to: room, type: "groupchat", id }, xml("body", {}, "hello, team")));
  for (const name of names) {
    await seen[name].expect("groupchat", { from: `${room}/carol`, body: "hello, team" });
  }

  const kick = xml(
    "query",
    { xmlns: groupchat.NS_MUC_ADMIN },
    xml("item", { nick: "carol", role: "none" }, xml("reason", {}, "meeting's over")),
  );
  const answer = await groupchat.request(alice, "set", room, kick);
  harness.emit("kicked", { client: "alice", type: answer.attrs.type });
  for (const name of names) {
    await seen[name].expect("presence", { from: `${room}/carol`, type: "unavailable" });
  }

  harness.emit("done");
  await Promise.all(names.map((name) => harness.logout(clients[name])));
});
