/**
 * One client logs in and sends a XEP-0199 ping to the server (its domain,
 * e.g. `localhost`).
 *
 * Reports `session_start`, then `pong` with the answer's `type`, `from`,
 * whether its `id` is the ping's, and the names of its children. Exits 0
 * once answered; an error answer ends it with `error` (the stanza error's
 * condition).
 */

import * as harness from "./harness.mjs";

harness.run(["user"], async (args) => {
  const { xml } = harness;
  const user = harness.client(args, "user", args.user);
  await harness.login(user, false);
  const ping = xml("iq", { type: "get", to: user.jid.domain, id: "ping-1" }, xml("ping", { xmlns: "urn:xmpp:ping" }));
  const answer = await user.iqCaller.request(ping);
  harness.emit("pong", {
    client: "user",
    type: answer.attrs.type,
    from: answer.attrs.from ?? null,
    same_id: answer.attrs.id === "ping-1",
    children: answer.getChildElements().map((child) => child.name),
  });
  await harness.logout(user);
});
