/**
 * XEP-0484 FAST with @xmpp/client, which asks for a token whenever the
 * server offers FAST inline in SASL2 and it holds none, and tries the
 * token it holds (HT-SHA-256-NONE) before its password, falling back to
 * the password if the server refuses the token.
 *
 * Without `--token`: `user` logs in with its password (and a SASL2
 * user-agent id of its own), reports the token it was given (`token`,
 * with the installation's `agent` id), logs out; then `again`, the same
 * installation with no password, logs in with that token and logs out.
 *
 * With `--agent ID --token TOKEN`: `user`, as installation ID, logs in
 * once holding TOKEN (said to be valid for a day) and its password;
 * `failed_auth` if it could not.
 *
 * Reports `session_start` for each login (see `harness.login`), every
 * `sasl_failure`, and every `token` a client was given (its `mechanism`,
 * `token`, `expiry`, and the `days` until then).
 */

import { randomUUID } from "node:crypto";

import * as harness from "./harness.mjs";

const HT = "HT-SHA-256-NONE";

harness.run(
  ["user"],
  async (args) => {
    const [address, password] = args.user;
    const agent = args.agent ?? randomUUID();
    const userAgent = () =>
      harness.xml(
        "user-agent",
        { id: agent },
        harness.xml("software", {}, "ej tests"),
        harness.xml("device", {}, "node"),
      );
    // A client of installation `agent` that starts out holding `held`
    // and reports the tokens it is given; `given()` is the last of them.
    const installation = (name, secret, held) => {
      const xmpp = harness.client(args, name, [address, secret], { userAgent: userAgent() });
      let token = held;
      xmpp.fast.fetchToken = async () => token;
      xmpp.fast.saveToken = async (saved) => {
        token = saved;
        const days = (new Date(saved.expiry) - Date.now()) / 86_400_000;
        harness.emit("token", { client: name, agent, ...saved, days });
      };
      xmpp.given = () => token;
      return xmpp;
    };

    if (args.token === undefined) {
      const user = installation("user", password, null);
      await harness.login(user, false);
      await harness.logout(user);
      const again = installation("again", undefined, user.given());
      await harness.login(again, false);
      await harness.logout(again);
      return;
    }

    const day = new Date(Date.now() + 86_400_000).toISOString();
    const held = { mechanism: HT, token: args.token, expiry: day };
    await harness.visit(installation("user", password, held));
  },
  ["agent", "token"],
);
