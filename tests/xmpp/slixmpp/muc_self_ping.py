"""XEP-0410 MUC self-ping: alice enters `lounge@conference.DOMAIN` as
"alice" and pings her own occupant JID, lounge@…/alice, twice: with
slixmpp's `send_self_ping` (which must say she is joined) and with a plain
XEP-0199 ping (which must be answered with a result from that JID). bob,
who is not in the room, pings lounge@…/bob: the room must answer with an
error `not-acceptable` (XEP-0410 §3.2), which `send_self_ping` reads as
disconnected.

Reports what groupchat.py's Observer and `join` report for each client;
`self_ping` (`client`, `to`, `status`: slixmpp's PingStatus name) for each
`send_self_ping`; and `ping` (`client`, `to`, `type`: 'result' or 'error',
`from`, `condition`) for each plain ping. Exits 0 once all four pings are
answered, reporting `done` before logging out.
"""

import slixmpp
from slixmpp.exceptions import IqError

import groupchat
import harness


async def self_ping(xmpp, name, occupant):
    status = await xmpp["xep_0410"].send_self_ping(slixmpp.JID(occupant), timeout=10)
    harness.emit("self_ping", client=name, to=occupant, status=status.name)


async def ping(xmpp, name, occupant):
    try:
        answer = await xmpp["xep_0199"].send_ping(slixmpp.JID(occupant), timeout=10)
        harness.emit("ping", client=name, to=occupant, type=answer["type"], condition=None,
                     **{"from": str(answer["from"])})
    except IqError as error:
        answer = error.iq
        harness.emit("ping", client=name, to=occupant, type=answer["type"],
                     condition=answer["error"]["condition"], **{"from": str(answer["from"])})


async def scenario(args):
    alice, bob = (groupchat.client(args, *account) for account in (args.alice, args.bob))
    seen = groupchat.observe(alice=alice, bob=bob)
    for xmpp, name in ((alice, "alice"), (bob, "bob")):
        await harness.login(args, xmpp, name)
    room = f"lounge@{groupchat.service(alice)}"
    await groupchat.join(alice, seen["alice"], room, "alice")

    await self_ping(alice, "alice", f"{room}/alice")
    await ping(alice, "alice", f"{room}/alice")
    await self_ping(bob, "bob", f"{room}/bob")
    await ping(bob, "bob", f"{room}/bob")

    await groupchat.finish(alice, bob)


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["alice", "bob"]).parse_args())
