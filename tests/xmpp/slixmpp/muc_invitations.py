"""Invitations to a room: alice creates `lounge@conference.DOMAIN` and
invites bob through it (a mediated invitation, XEP-0045 §7.8.2, slixmpp's
`invite`): bob must get a message from the room with the muc#user
`<invite/>` naming alice, which slixmpp reports as `groupchat_invite`. bob
declines it (slixmpp's `decline`): alice must get the decline from the
room, naming bob. Then alice invites bob directly (XEP-0249, slixmpp's
`send_invitation`): bob must get it from alice, naming the room
(`groupchat_direct_invite`). bob then enters the room he was invited to,
and alice sees him arrive.

Reports what groupchat.py's Observer and `join` report for each client
(the mediated invitation as `invite`, bob's decline as `decline`);
`groupchat_invite` (`client`, `room`, `inviter`, `reason`) when slixmpp
recognises a mediated invitation, and `direct_invite` (`client`, `from`,
`room`, `reason`) for a direct one. Exits 0 once alice sees bob in the
room, reporting `done` before logging out.
"""

import asyncio

import groupchat
import harness


async def scenario(args):
    alice, bob = (groupchat.client(args, *account) for account in (args.alice, args.bob))
    seen = groupchat.observe(alice=alice, bob=bob)
    loop = asyncio.get_running_loop()
    mediated, direct = loop.create_future(), loop.create_future()

    def on_invite(message):
        invite = message["muc"]["invite"]
        harness.emit("groupchat_invite", client="bob", room=str(message["from"]),
                     inviter=str(invite["from"]), reason=invite["reason"])
        if not mediated.done():
            mediated.set_result(message)

    def on_direct_invite(message):
        invite = message["groupchat_invite"]
        harness.emit("direct_invite", client="bob", room=str(invite["jid"]), reason=invite["reason"],
                     **{"from": str(message["from"])})
        if not direct.done():
            direct.set_result(message)

    bob.add_event_handler("groupchat_invite", on_invite)
    bob.add_event_handler("groupchat_direct_invite", on_direct_invite)
    for xmpp, name in ((alice, "alice"), (bob, "bob")):
        await harness.login(args, xmpp, name)
    room = f"lounge@{groupchat.service(alice)}"
    await groupchat.join(alice, seen["alice"], room, "alice")

    alice["xep_0045"].invite(room, bob.boundjid.bare, reason="tea is ready")
    await seen["bob"].expect("invite", from_=room)
    await mediated
    bob["xep_0045"].decline(room, alice.boundjid.full, reason="busy right now")
    await seen["alice"].expect("decline", from_=room)

    alice["xep_0249"].send_invitation(bob.boundjid.bare, room, reason="come to the lounge")
    invitation = await direct

    await groupchat.join(bob, seen["bob"], str(invitation["groupchat_invite"]["jid"]), "bob")
    await seen["alice"].expect("presence", from_=f"{room}/bob", type="available")

    await groupchat.finish(alice, bob)


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["alice", "bob"]).parse_args())
