/**
 * One client logs in: STARTTLS, then authentication and resource binding
 * (SASL2 with Bind2 when the server offers them, as @xmpp/client prefers;
 * the mechanism it prefers among those offered).
 *
 * Reports `session_start` (with the bound JID, the SASL mechanism, how it
 * authenticated and bound, and the TLS version) or `failed_auth` (with the
 * SASL condition), then logs out (`disconnected`). Both are outcomes: the
 * exit status is 0 either way.
 */

import * as harness from "./harness.mjs";

harness.run(["user"], async (args) => {
  const user = harness.client(args, "user", args.user);
  if (await harness.visit(user)) {
    harness.emit("disconnected", { client: "user" });
  }
});
