"""What every slixmpp scenario shares.

Command-line options (where the server is, the one certificate authority to
trust, the accounts), a slixmpp client that connects to exactly that address
(no DNS SRV lookup), insists on STARTTLS and verifies the server's
certificate for its domain, one JSON object per line on stdout for the test
to assert on, and a hard timeout. slixmpp's debug log (every byte of XML
sent and received) goes to stderr.
"""

import argparse
import asyncio
import json
import logging
import ssl
import sys

import slixmpp


class ScenarioFailed(Exception):
    """The scenario could not go on; the message says why."""


class AuthFailed(ScenarioFailed):
    """The server refused the credentials (reported as `failed_auth`)."""


def options(description, accounts):
    """The options every scenario takes, plus `--NAME JID PASSWORD` for
    each account name in `accounts`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", required=True, help="the server's address")
    parser.add_argument("--port", type=int, required=True, help="its STARTTLS port")
    parser.add_argument("--ca", required=True, help="the only CA (PEM) to trust")
    parser.add_argument("--timeout", type=float, default=20, help="seconds for the whole scenario")
    for name in accounts:
        parser.add_argument(f"--{name}", nargs=2, metavar=("JID", "PASSWORD"), required=True)
    return parser


def emit(event, **fields):
    """Reports one result: a JSON object on a line of its own."""
    print(json.dumps({"event": event, **fields}), flush=True)


def client(args, jid, password, mechanism=None, plugins=()):
    """A slixmpp client for `jid`, not connected yet."""
    xmpp = slixmpp.ClientXMPP(jid, password, sasl_mech=mechanism)
    # Trust only the given CA (not the system's), and check the name.
    xmpp.ssl_context = ssl.create_default_context(cafile=args.ca)
    # STARTTLS on the plain port: neither TLS from the first byte nor
    # an unencrypted stream.
    xmpp.enable_direct_tls = False
    xmpp.enable_starttls = True
    xmpp.enable_plaintext = False
    for plugin in plugins:
        xmpp.register_plugin(plugin)
    return xmpp


async def login(args, xmpp, name, presence=True):
    """Connects `xmpp`, waits for its session, checks that it is encrypted,
    and reports it as `session_start` for `name`. With `presence`, then
    sends initial presence and fetches the roster (a round trip, so the
    server has seen the presence when this returns). Raises AuthFailed if
    authentication fails (after reporting `failed_auth`), ScenarioFailed if
    the connection ends first."""
    loop = asyncio.get_running_loop()
    outcome = loop.create_future()
    mechanism = {}

    def settle(result=None, error=None):
        if not outcome.done():
            if error is None:
                outcome.set_result(result)
            else:
                outcome.set_exception(error)

    def on_auth_success(_):
        mechanism["name"] = xmpp["feature_mechanisms"].mech.name

    def on_failed_auth(failure):
        emit("failed_auth", client=name, condition=failure["condition"],
             mechanism=xmpp["feature_mechanisms"].mech.name)
        settle(error=AuthFailed(f"{name}: authentication failed"))

    xmpp.add_event_handler("auth_success", on_auth_success)
    xmpp.add_event_handler("failed_auth", on_failed_auth)
    xmpp.add_event_handler("failed_all_auth", lambda _: settle(error=ScenarioFailed(f"{name}: no mechanism left")))
    xmpp.add_event_handler("session_start", lambda _: settle(True))
    xmpp.add_event_handler("disconnected", lambda reason: settle(error=ScenarioFailed(f"{name}: disconnected ({reason})")))
    xmpp.add_event_handler("connection_failed", lambda error: settle(error=ScenarioFailed(f"{name}: connection failed ({error})")))
    xmpp.connect(args.host, args.port)
    try:
        await outcome
    except ScenarioFailed:
        xmpp.abort()
        raise
    if "starttls" not in xmpp.features:
        raise ScenarioFailed(f"{name}: the session is not encrypted")
    emit("session_start", client=name, jid=str(xmpp.boundjid),
         mechanism=mechanism.get("name"), tls=xmpp.socket.version())
    if presence:
        xmpp.send_presence()
        await xmpp.get_roster()


async def logout(xmpp):
    """Closes the stream and waits for the connection to end."""
    await xmpp.disconnect()


def run(scenario, args):
    """Runs `scenario(args)` with the timeout; exits 0 when it completes,
    1 when it fails (reported as `error`), 2 when it times out (reported as
    `timeout`)."""
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")

    async def bounded():
        return await asyncio.wait_for(scenario(args), args.timeout)

    try:
        asyncio.run(bounded())
    except asyncio.TimeoutError:
        emit("timeout", seconds=args.timeout)
        sys.exit(2)
    except Exception as failed:  # anything else ends the scenario too
        logging.exception("the scenario failed")
        emit("error", error=f"{type(failed).__name__}: {failed}")
        sys.exit(1)
