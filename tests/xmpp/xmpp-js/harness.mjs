/**
 * What every @xmpp/client scenario shares.
 *
 * Command-line options (where the server is, where the library is
 * installed, the accounts), an @xmpp/client client that connects to exactly
 * that address (`xmpp://HOST:PORT`, no DNS SRV lookup) for the JID's
 * domain, one JSON object per line on stdout for the test to assert on, and
 * a hard timeout. Every element the client sends and receives, its status
 * changes and its errors go to stderr, one line each (`NAME SEND: …`,
 * `NAME RECV: …`, the server's stream headers included, `NAME status …`,
 * `NAME Error: …`).
 *
 * Which certificate authority the client trusts is up to the process, not
 * this module: @xmpp/client's STARTTLS passes no TLS options but the host
 * name, so node verifies the server's certificate for the domain against its
 * default store. The test runs node with `--use-openssl-ca` and
 * `SSL_CERT_FILE` naming the server's certificate (and neither
 * `NODE_EXTRA_CA_CERTS` nor `NODE_TLS_REJECT_UNAUTHORIZED`), so that store
 * holds that certificate alone; `login` checks that the session is
 * encrypted and that the certificate was verified.
 *
 * Options: `--host`, `--port` (the STARTTLS port), `--timeout` (seconds for
 * the whole scenario), `--modules` (the `node_modules` directory
 * `cargo xtask test` installed @xmpp/client into), and `--NAME JID PASSWORD`
 * for each account the scenario names.
 */

import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_SASL2 = "urn:xmpp:sasl:2";
const NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind";
const NS_BIND2 = "urn:xmpp:bind:0";

/** The scenario could not go on; the message says why. */
export class ScenarioFailed extends Error {}

/** The server refused the credentials (reported as `failed_auth`). */
export class AuthFailed extends ScenarioFailed {}

/** @xmpp/client's `xml` element builder, once `run` has loaded it. */
export let xml;
/** @xmpp/client's JID parser, once `run` has loaded it. */
export let jid;
let library;

/** Reports one result: a JSON object on a line of its own. */
export function emit(event, fields = {}) {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

/** Writes one line of the client's log to stderr. */
function log(name, ...parts) {
  process.stderr.write(`${new Date().toISOString()} ${name} ${parts.join(" ")}\n`);
}

/**
 * The options (see above), with `accounts[i]` as `[JID, PASSWORD]`, and
 * the scenario's own optional ones, `extra`, one value each.
 */
function options(argv, accounts, extra) {
  const args = { timeout: 20 };
  for (let at = 0; at < argv.length; ) {
    const name = argv[at].replace(/^--/, "");
    if (accounts.includes(name)) {
      args[name] = argv.slice(at + 1, at + 3);
      at += 3;
    } else if (["host", "port", "timeout", "modules", ...extra].includes(name)) {
      args[name] = argv[at + 1];
      at += 2;
    } else {
      throw new Error(`unknown option ${argv[at]}`);
    }
  }
  for (const name of ["host", "port", "modules", ...accounts]) {
    if (args[name] === undefined || args[name].length === 0) {
      throw new Error(`--${name} is required`);
    }
  }
  return { ...args, timeout: Number(args.timeout) };
}

/**
 * Imports @xmpp/client from `modules`. Bare specifiers in ES modules are
 * resolved from the importing file's own directory (NODE_PATH and the
 * working directory play no part), and these scripts live in the source
 * tree, away from the installed packages; so the package's entry point is
 * resolved in `modules` and imported by its URL, and its own imports then
 * resolve next to it.
 */
async function load(modules) {
  const require = createRequire(join(modules, "resolver.js"));
  return import(pathToFileURL(require.resolve("@xmpp/client")).href);
}

/**
 * A client for `account` (`[JID, PASSWORD]`; without a password it can
 * only use a FAST token), not connected yet, logging as `name`, with more
 * @xmpp/client `options` if given (such as its SASL2 `userAgent`). Its
 * `scenario` notes how it authenticated, as the XML shows it:
 * `mechanism` (the SASL mechanism of its last `<auth/>` or
 * `<authenticate/>`), `sasl` (`sasl` for RFC 6120 SASL, `sasl2` for
 * XEP-0388) and `bind` (`bind2` if a SASL2 success said `<bound/>`,
 * `rfc6120` if it sent a bind iq). Each SASL failure it receives is
 * reported as `sasl_failure` (with the profile, mechanism, condition and
 * text).
 */
export function client(args, name, [address, password], options = {}) {
  const { local, domain, resource } = jid(address);
  const xmpp = library.client({
    service: `xmpp://${args.host}:${args.port}`,
    domain,
    username: local,
    password,
    resource: resource || undefined,
    ...options,
  });
  // A lost connection ends the scenario: no reconnecting.
  xmpp.reconnect.stop();
  xmpp.scenario = { name, mechanism: null, sasl: null, bind: null };
  xmpp.on("send", (element) => {
    log(name, "SEND:", element.toString());
    if (element.is("auth", NS_SASL) || element.is("authenticate", NS_SASL2)) {
      xmpp.scenario.mechanism = element.attrs.mechanism;
      xmpp.scenario.sasl = element.is("auth", NS_SASL) ? "sasl" : "sasl2";
    }
    if (element.is("iq") && element.getChild("bind", NS_BIND)) {
      xmpp.scenario.bind = "rfc6120";
    }
  });
  xmpp.on("element", (element) => {
    log(name, "RECV:", element.toString());
    if (element.is("success", NS_SASL2) && element.getChild("bound", NS_BIND2)) {
      xmpp.scenario.bind = "bind2";
    }
    if (element.is("failure", NS_SASL) || element.is("failure", NS_SASL2)) {
      emit("sasl_failure", {
        client: name,
        sasl: xmpp.scenario.sasl,
        mechanism: xmpp.scenario.mechanism,
        condition: element.getChildElements()[0]?.name ?? null,
        text: element.getChildText("text") ?? null,
      });
    }
  });
  xmpp.on("status", (status, value) => {
    if (status === "open") {
      // The server's stream header.
      log(name, "RECV:", value.toString());
    } else {
      log(name, "status", status, value instanceof xml.Element ? value.toString() : (JSON.stringify(value) ?? ""));
    }
  });
  // Errors also reject what is waiting (`start`, `sendReceive`); without a
  // listener, an 'error' event would end the process.
  xmpp.on("error", (error) => log(name, "Error:", error?.stack ?? error));
  return xmpp;
}

/**
 * Connects `xmpp`, waits for its session (STARTTLS, SASL, binding), checks
 * that it is encrypted with a verified certificate, and reports it as
 * `session_start` (with the bound JID, the SASL mechanism, how it
 * authenticated and bound as `scenario` notes it, the TLS version).
 * With `presence`, then sends initial presence and fetches the roster (a
 * round trip, so the server has seen the presence when this returns).
 * Raises AuthFailed if authentication fails (after reporting `failed_auth`
 * with the SASL condition).
 */
export async function login(xmpp, presence = true) {
  const { name } = xmpp.scenario;
  try {
    await xmpp.start();
  } catch (error) {
    if (error?.name === "SASLError") {
      const { mechanism, sasl } = xmpp.scenario;
      emit("failed_auth", { client: name, condition: error.condition, mechanism, sasl });
      await close(xmpp);
      throw new AuthFailed(`${name}: authentication failed (${error.condition})`);
    }
    throw error;
  }
  // @xmpp/client goes on in the clear if the server offers no STARTTLS.
  const socket = xmpp.socket?.socket;
  if (!xmpp.isSecure() || !socket?.encrypted) {
    throw new ScenarioFailed(`${name}: the session is not encrypted`);
  }
  if (!socket.authorized) {
    throw new ScenarioFailed(`${name}: the certificate was not verified (${socket.authorizationError})`);
  }
  emit("session_start", {
    client: name,
    jid: xmpp.jid.toString(),
    mechanism: xmpp.scenario.mechanism,
    sasl: xmpp.scenario.sasl,
    bind: xmpp.scenario.bind,
    tls: socket.getProtocol(),
  });
  if (presence) {
    await xmpp.send(xml("presence"));
    await roster(xmpp);
  }
}

/** The roster the server holds for `xmpp`: JID → {subscription, ask, name}. */
export async function roster(xmpp) {
  const query = await xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
  return items(query);
}

/** The items of a `jabber:iq:roster` query: JID → {subscription, ask, name}. */
export function items(query) {
  return Object.fromEntries(
    query.getChildren("item").map(({ attrs }) => [
      attrs.jid,
      { subscription: attrs.subscription ?? null, ask: attrs.ask ?? null, name: attrs.name ?? null },
    ]),
  );
}

/**
 * Logs `xmpp` in (no presence) and out again; false if authentication
 * failed (reported as `failed_auth`).
 */
export async function visit(xmpp) {
  try {
    await login(xmpp, false);
  } catch (error) {
    if (error instanceof AuthFailed) return false;
    throw error;
  }
  await logout(xmpp);
  return true;
}

/** Closes the stream and waits for the connection to end. */
export async function logout(xmpp) {
  await xmpp.stop();
}

/** Ends `xmpp`'s connection however it can (after a failure). */
async function close(xmpp) {
  try {
    await xmpp.stop();
  } catch {
    xmpp.socket?.socket?.destroy();
  }
}

/** The messages `xmpp` receives, each reported as `message` (with `client`,
 * `from`, `to`, `type`, `body`); `next(count)` waits for `count` more. */
export function inbox(xmpp) {
  const { name } = xmpp.scenario;
  const arrived = [];
  let waiting = null;
  xmpp.on("stanza", (stanza) => {
    if (!stanza.is("message")) return;
    const { from, to, type } = stanza.attrs;
    emit("message", { client: name, from, to, type: type ?? null, body: stanza.getChildText("body") });
    arrived.push(stanza);
    waiting?.();
  });
  return {
    async next(count) {
      while (arrived.length < count) {
        await new Promise((resolve) => {
          waiting = resolve;
        });
      }
      return arrived.splice(0, count);
    },
  };
}

/**
 * Runs `scenario(args)` with the options for `accounts` (and the optional
 * `extra` ones) and the timeout; exits 0 when it completes, 1 when it
 * fails (reported as `error`), 2 when it times out (reported as
 * `timeout`).
 */
export async function run(accounts, scenario, extra = []) {
  let code;
  let timer;
  try {
    const args = options(process.argv.slice(2), accounts, extra);
    library = await load(args.modules);
    ({ xml, jid } = library);
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve("timeout"), args.timeout * 1000);
    });
    const outcome = await Promise.race([scenario(args).then(() => "done"), timeout]);
    if (outcome === "timeout") {
      emit("timeout", { seconds: args.timeout });
      code = 2;
    } else {
      code = 0;
    }
  } catch (error) {
    process.stderr.write(`the scenario failed: ${error?.stack ?? error}\n`);
    emit("error", { error: `${error?.name}: ${error?.message}`, condition: error?.condition ?? null });
    code = 1;
  }
  clearTimeout(timer);
  // Whatever is still open (a connection, a timer) does not keep node up.
  process.exit(code);
}
