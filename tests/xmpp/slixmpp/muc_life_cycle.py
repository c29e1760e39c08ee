"""A group chat room's life (XEP-0045 §7.1–§7.4, §7.14, §8.1, §10.1, §10.2,
§6): alice enters `lounge@conference.DOMAIN`, which creates it (status
201, affiliation owner); she gets its configuration form and submits it
with the room persistent and named "The Lounge". bob enters, and may not
get the form (`forbidden`); then carol enters. Each newcomer gets the
others' presence, and those present get the newcomer's. bob says something
to the room: all three get it from lounge@…/bob. alice sets the subject:
all three get it; bob, a mere participant, may not (an error `forbidden`).
carol leaves, saying "good night": alice and bob see her unavailable
presence with that status, and carol her own (status 110). alice says
something more; then carol enters again, a late joiner, and gets both
messages as discussion history (with XEP-0203 delay from the room) and
alice's subject. Last, bob asks the service for its rooms (disco#items)
and the room for its disco#info.

Reports what groupchat.py's Observer, `join`, `configure`, `rooms` and
`room_info` report for each client (`presence`, `groupchat`, `subject`,
`message_error`, `joined`, `config_form`, …), and `config_refused`
(`client`, `condition`) for bob's attempt at the form. Exits 0 once all
is done, reporting `done` before logging out.
"""

from slixmpp.exceptions import IqError

import groupchat
import harness


async def scenario(args):
    alice, bob, carol = (groupchat.client(args, *account) for account in (args.alice, args.bob, args.carol))
    seen = groupchat.observe(alice=alice, bob=bob, carol=carol)
    for xmpp, name in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
        await harness.login(args, xmpp, name)
    room = f"lounge@{groupchat.service(alice)}"

    await groupchat.join(alice, seen["alice"], room, "alice")
    await groupchat.configure(alice, "alice", room, {
        "muc#roomconfig_persistentroom": True,
        "muc#roomconfig_roomname": "The Lounge",
    })
    await seen["alice"].expect("room_status", from_=room)

    await groupchat.join(bob, seen["bob"], room, "bob")
    await seen["alice"].expect("presence", from_=f"{room}/bob", type="available")
    try:
        await bob["xep_0045"].get_room_config(room)
        harness.emit("config_refused", client="bob", condition=None)
    except IqError as error:
        harness.emit("config_refused", client="bob", condition=error.iq["error"]["condition"])
    await groupchat.join(carol, seen["carol"], room, "carol")
    for name in ("alice", "bob"):
        await seen[name].expect("presence", from_=f"{room}/carol", type="available")

    bob.send_message(mto=room, mbody="hello from bob", mtype="groupchat")
    for name in ("alice", "bob", "carol"):
        await seen[name].expect("groupchat", from_=f"{room}/bob", body="hello from bob")

    alice["xep_0045"].set_subject(room, "Tea at five")
    for name in ("alice", "bob", "carol"):
        await seen[name].expect("subject", from_=f"{room}/alice", subject="Tea at five")
    bob["xep_0045"].set_subject(room, "Coffee at six")
    await seen["bob"].expect("message_error", from_=room)

    await groupchat.leave(carol, seen["carol"], room, "carol", status="good night")
    for name in ("alice", "bob"):
        await seen[name].expect("presence", from_=f"{room}/carol", type="unavailable")

    alice.send_message(mto=room, mbody="carol has gone", mtype="groupchat")
    for name in ("alice", "bob"):
        await seen[name].expect("groupchat", from_=f"{room}/alice", body="carol has gone")

    await groupchat.join(carol, seen["carol"], room, "carol")

    await groupchat.rooms(bob, "bob")
    await groupchat.room_info(bob, "bob", room)

    await groupchat.finish(alice, bob, carol)


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["alice", "bob", "carol"]).parse_args())
