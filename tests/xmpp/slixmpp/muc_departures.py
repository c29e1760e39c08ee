"""Leaving a room without saying so, and a room's end or not (XEP-0045
§7.14, §10.1, §10.2, §6.4): alice and bob enter `lounge@conference.DOMAIN`,
a temporary room (the default). bob's connection ends abruptly (slixmpp's
`abort`: no unavailable presence, no stream end): alice must see bob's
unavailable presence from the room. alice asks the room for its
disco#info (it is there, temporary). Then alice leaves, the last
occupant: the room must be gone, its disco#info answered with
`item-not-found`. alice also creates `library@…`, makes it persistent and
leaves it: that one must stay (its disco#info answered, persistent), and
the service's disco#items list it, and only it.

Reports what groupchat.py's Observer, `join` and `configure` report for
each client; `aborted` when bob's connection is cut; `room_info` for each disco#info
query and `rooms` for the disco#items one (see groupchat.py). Exits 0 once all is done, reporting `done` before
logging out.
"""

import groupchat
import harness


async def scenario(args):
    alice, bob = (groupchat.client(args, *account) for account in (args.alice, args.bob))
    seen = groupchat.observe(alice=alice, bob=bob)
    for xmpp, name in ((alice, "alice"), (bob, "bob")):
        await harness.login(args, xmpp, name)
    room = f"lounge@{groupchat.service(alice)}"
    await groupchat.join(alice, seen["alice"], room, "alice")
    await groupchat.join(bob, seen["bob"], room, "bob")
    await seen["alice"].expect("presence", from_=f"{room}/bob", type="available")

    bob.abort()
    harness.emit("aborted", client="bob")
    await seen["alice"].expect("presence", from_=f"{room}/bob", type="unavailable")
    await groupchat.room_info(alice, "alice", room)

    await groupchat.leave(alice, seen["alice"], room, "alice")
    await groupchat.room_info(alice, "alice", room)

    library = f"library@{groupchat.service(alice)}"
    await groupchat.join(alice, seen["alice"], library, "alice")
    await groupchat.configure(alice, "alice", library, {"muc#roomconfig_persistentroom": True})
    await groupchat.leave(alice, seen["alice"], library, "alice")
    await groupchat.room_info(alice, "alice", library)
    await groupchat.rooms(alice, "alice")

    await groupchat.finish(alice)


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["alice", "bob"]).parse_args())
