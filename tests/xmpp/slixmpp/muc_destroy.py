"""Destroying a room (XEP-0045 §10.9): alice enters
`attic@conference.DOMAIN` (creating it, so she is its owner) and bob
enters. alice destroys it (slixmpp's `destroy`) with a reason and
`lounge@conference.DOMAIN` as the alternate venue: alice and bob must each
get their own unavailable presence from the room, carrying the muc#user
`<destroy/>` with that venue and that reason. The room is gone: its
disco#info is answered with `item-not-found`. bob then enters
`attic@…` again: a new room is created for him (status 201, owner).

Reports what groupchat.py's Observer, `join` and `room_info` report for
each client (the destruction in `presence`'s `destroy`). Exits 0 once bob
is in the new room, reporting `done` before logging out.
"""

import groupchat
import harness


async def scenario(args):
    alice, bob = (groupchat.client(args, *account) for account in (args.alice, args.bob))
    seen = groupchat.observe(alice=alice, bob=bob)
    for xmpp, name in ((alice, "alice"), (bob, "bob")):
        await harness.login(args, xmpp, name)
    room = f"attic@{groupchat.service(alice)}"
    venue = f"lounge@{groupchat.service(alice)}"
    await groupchat.join(alice, seen["alice"], room, "alice")
    await groupchat.join(bob, seen["bob"], room, "bob")

    await alice["xep_0045"].destroy(room, reason="the roof leaks", altroom=venue)
    for name in ("alice", "bob"):
        await seen[name].expect("presence", from_=f"{room}/{name}", type="unavailable")
    await groupchat.room_info(alice, "alice", room)

    await groupchat.join(bob, seen["bob"], room, "bob")

    await groupchat.finish(alice, bob)


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["alice", "bob"]).parse_args())
