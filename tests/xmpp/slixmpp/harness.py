"""What every slixmpp scenario shares.

Command-line options (where the server is, the one certificate authority to
trust, the accounts), a slixmpp client that connects to exactly that address
(no DNS SRV lookup), insists on STARTTLS and verifies the server's
certificate for its domain, one JSON object per line on stdout for the test
to assert on, and a hard timeout. slixmpp's debug log (every byte of XML
sent and received) goes to stderr. And what several scenarios do: watch
the messages, presences and PEP notifications a client receives, read the
server's rosters, make two users mutual contacts, log in with entity
capabilities, read a stanza error.
"""

import argparse
import asyncio
import json
import logging
import ssl
import sys

import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath


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
    parser.add_argument("--port-of", nargs=2, action="append", default=[], metavar=("NAME", "PORT"),
                        help="another port for one account's client: a node of a cluster")
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


async def login(args, xmpp, name, presence=True, priority=None):
    """Connects `xmpp`, waits for its session, checks that it is encrypted,
    and reports it as `session_start` for `name`. With `presence`, then
    sends initial presence (with `priority`, if given) and fetches the
    roster (a round trip, so the server has seen the presence when this
    returns). Raises AuthFailed if
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
    xmpp.connect(args.host, int(dict(args.port_of).get(name, args.port)))
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
        xmpp.send_presence(ppriority=priority)
        await xmpp.get_roster()


async def logout(xmpp):
    """Closes the stream and waits for the connection to end."""
    await xmpp.disconnect()


def inbox(xmpp, name):
    """A queue of the messages with a body `xmpp` receives, each reported
    as `message` (`client`: `name`; the stanza's `from`, `to`, `type` and
    `body`)."""
    queue = asyncio.Queue()

    def on_message(message):
        emit("message", client=name, **{
            key: str(message[key]) for key in ("from", "to", "type", "body")
        })
        queue.put_nowait(message)

    xmpp.add_event_handler("message", on_message)
    return queue


async def receive(queue, count):
    """The next `count` items of `queue`."""
    return [await queue.get() for _ in range(count)]


# The presence types (as slixmpp names them: `show` for available ones)
# that say a session is available.
AVAILABLE = ("available", "chat", "away", "xa", "dnd")


def watch_presence(xmpp, name, other):
    """A queue of the presences `xmpp` receives from `other` (a bare JID),
    each reported as `presence` (`client`: `name`; `from`, `type`, and
    `status`)."""
    queue = asyncio.Queue()

    def on_presence(presence):
        if presence["from"].bare != other:
            return
        emit("presence", client=name, status=presence["status"],
             **{"from": str(presence["from"]), "type": presence["type"]})
        queue.put_nowait(presence)

    xmpp.add_event_handler("presence", on_presence)
    return queue


async def presence_of(queue, types):
    """The next presence in `queue` (from `watch_presence`) whose type is
    one of `types`; those before it are dropped."""
    while True:
        presence = await queue.get()
        if presence["type"] in types:
            return presence


async def roster_of(xmpp):
    """The roster the server holds for `xmpp`: JID → item."""
    iq = await xmpp.get_roster()
    return {
        str(jid): {"subscription": item["subscription"], "ask": item["ask"], "name": item["name"]}
        for jid, item in iq["roster"]["items"].items()
    }


async def watch_rosters(clients, done):
    """Polls the server's rosters of `clients` (name → client), reporting
    each one whenever it changed as `roster` (`client`, `items`: JID →
    {subscription, ask, name}), until `done(rosters)` (name → items)."""
    reported = {}
    while True:
        rosters = {name: await roster_of(xmpp) for name, xmpp in clients.items()}
        for name, items in rosters.items():
            if reported.get(name) != items:
                emit("roster", client=name, items=items)
        reported = rosters
        if done(rosters):
            return rosters
        await asyncio.sleep(0.2)


async def befriend(asker, asker_name, other, other_name, name):
    """Makes the (logged-in) users of `asker` and `other` mutual contacts:
    `asker` adds `other` to its roster as `name` and subscribes; `other`'s
    slixmpp approves and subscribes back (auto_authorize and
    auto_subscribe, set explicitly), and `asker`'s approves that. Returns
    once both rosters (reported as `watch_rosters` does) show subscription
    'both'."""
    for xmpp in (asker, other):
        xmpp.auto_authorize = True
        xmpp.auto_subscribe = True
    asker_jid, other_jid = asker.boundjid.bare, other.boundjid.bare
    await asker.update_roster(other_jid, name=name)
    asker.send_presence(pto=other_jid, ptype="subscribe")

    def mutual(rosters):
        return (rosters[asker_name].get(other_jid, {}).get("subscription") == "both"
                and rosters[other_name].get(asker_jid, {}).get("subscription") == "both")

    await watch_rosters({asker_name: asker, other_name: other}, mutual)


async def login_with_caps(args, xmpp, name):
    """Logs `xmpp` in as `login` does, its initial presence carrying its
    entity capabilities (XEP-0115) with every interest its plugins
    registered (slixmpp computes them in the background after binding: this
    waits for them)."""
    await login(args, xmpp, name, presence=False)
    await xmpp["xep_0115"].update_caps(broadcast=False)
    xmpp.send_presence()
    await xmpp.get_roster()


# The namespace of XEP-0060 error conditions.
PUBSUB_ERRORS = "http://jabber.org/protocol/pubsub#errors"


def iq_error(error):
    """What an IqError says: `condition`, `type`, and `pubsub`, the
    pubsub#errors condition beside it (or None)."""
    stanza_error = error.iq["error"]
    pubsub = [child.tag.split("}")[1] for child in stanza_error.xml
              if child.tag.startswith("{%s}" % PUBSUB_ERRORS)]
    return {"condition": stanza_error["condition"], "type": stanza_error["type"],
            "pubsub": pubsub[0] if pubsub else None}


def watch_pubsub(xmpp, name):
    """A queue of the PEP notifications (XEP-0163) `xmpp` receives, one
    entry per item or retraction, each reported as `pubsub` (`client`:
    `name`; the message's `from` and `type`, the `node`, `kind`: 'item' or
    'retract', the item's `id`, and `payload`: its payload as XML, or
    None)."""
    queue = asyncio.Queue()

    def on_event(message):
        items = message["pubsub_event"]["items"]
        for item in items:
            payload = list(item.xml)
            entry = {"from": str(message["from"]), "type": message["type"], "node": items["node"],
                     "kind": item.name, "id": item["id"],
                     "payload": slixmpp.xmlstream.tostring(payload[0]) if payload else None}
            emit("pubsub", client=name, **entry)
            queue.put_nowait(entry)

    xmpp.register_handler(Callback(f"PEP notifications of {name}",
                                   StanzaPath("message/pubsub_event/items"), on_event))
    return queue


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
