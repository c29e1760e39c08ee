"""alice adds bob to her roster and subscribes to his presence; bob's
slixmpp approves and subscribes back (auto_authorize and auto_subscribe,
set explicitly here), and alice's approves that. Both are online, with
initial presence sent, throughout.

Reports `session_start` for each, each `presence` of the other one a client
receives (`client`, `from`, `type`), and each client's roster as the server
returns it whenever it changed (`roster`, with `client` and `items`: JID →
{subscription, ask, name}). Exits 0 once both rosters show the other with
subscription 'both' and alice has received bob's available presence.
"""

import asyncio

import harness


def watch_presence(xmpp, name, other, seen):
    """Reports the presences `xmpp` receives from `other`; sets `seen` on an
    available one."""

    def on_presence(presence):
        if presence["from"].bare != other:
            return
        harness.emit("presence", client=name, **{"from": str(presence["from"]), "type": presence["type"]})
        if presence["type"] in ("available", "chat", "away", "xa", "dnd"):
            seen.set()

    xmpp.add_event_handler("presence", on_presence)


async def roster_of(xmpp):
    """The roster the server holds for `xmpp`: JID → item."""
    iq = await xmpp.get_roster()
    return {
        str(jid): {"subscription": item["subscription"], "ask": item["ask"], "name": item["name"]}
        for jid, item in iq["roster"]["items"].items()
    }


async def scenario(args):
    alice = harness.client(args, *args.alice)
    bob = harness.client(args, *args.bob)
    for xmpp in (alice, bob):
        xmpp.auto_authorize = True
        xmpp.auto_subscribe = True
    alice_jid, bob_jid = alice.requested_jid.bare, bob.requested_jid.bare
    bob_seen = asyncio.Event()
    watch_presence(alice, "alice", bob_jid, bob_seen)
    watch_presence(bob, "bob", alice_jid, asyncio.Event())
    await harness.login(args, alice, "alice")
    await harness.login(args, bob, "bob")

    await alice.update_roster(bob_jid, name="Bob")
    alice.send_presence(pto=bob_jid, ptype="subscribe")

    # Polls the server's rosters (reporting each change) until they show
    # the mutual subscription.
    reported = {}
    while True:
        rosters = {"alice": await roster_of(alice), "bob": await roster_of(bob)}
        for name, items in rosters.items():
            if reported.get(name) != items:
                harness.emit("roster", client=name, items=items)
        reported = rosters
        if (rosters["alice"].get(bob_jid, {}).get("subscription") == "both"
                and rosters["bob"].get(alice_jid, {}).get("subscription") == "both"):
            break
        await asyncio.sleep(0.2)
    await bob_seen.wait()

    await asyncio.gather(harness.logout(alice), harness.logout(bob))


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["alice", "bob"]).parse_args())
