"""Nicknames in a room (XEP-0045 §7.2.9, §7.6, §7.7): alice enters
`cafe@conference.DOMAIN` as "alice"; bob tries to enter as "alice" too and
must be refused with `conflict`, then enters as "bob"; carol enters as
"carol". bob changes his nickname to "robert" (slixmpp's set_self_nick):
alice and carol must see "bob" leave with status 303 and the new nickname,
then "robert" arrive. robert goes away, "back soon" (§7.7): alice and
carol must get his new presence from cafe@…/robert. carol tries to take
the nickname "alice" and must be refused with `conflict` (and stays
"carol"): she says something to the room, which alice gets from
cafe@…/carol.

Reports what groupchat.py's Observer and `join` report for each client
(`join_refused`, `joined`, `presence`, `presence_error`, `groupchat`, …),
and `nick_changed` (`client`, `nick`: the nickname slixmpp ended with).
Exits 0 once alice has carol's message, reporting `done` before logging
out.
"""

import slixmpp

import groupchat
import harness


async def scenario(args):
    alice, bob, carol = (groupchat.client(args, *account) for account in (args.alice, args.bob, args.carol))
    seen = groupchat.observe(alice=alice, bob=bob, carol=carol)
    for xmpp, name in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
        await harness.login(args, xmpp, name)
    room = f"cafe@{groupchat.service(alice)}"

    await groupchat.join(alice, seen["alice"], room, "alice")
    await groupchat.refused(bob, seen["bob"], room, "alice")
    await groupchat.join(bob, seen["bob"], room, "bob")
    await groupchat.join(carol, seen["carol"], room, "carol")
    await seen["alice"].expect("presence", from_=f"{room}/carol", type="available")

    nick = await bob["xep_0045"].set_self_nick(slixmpp.JID(room), "robert", timeout=args.timeout)
    harness.emit("nick_changed", client="bob", nick=nick)
    for name in ("alice", "carol"):
        await seen[name].expect("presence", from_=f"{room}/bob", type="unavailable")
        await seen[name].expect("presence", from_=f"{room}/robert", type="available")

    bob.send_presence(pto=f"{room}/robert", pshow="away", pstatus="back soon")
    for name in ("alice", "carol"):
        await seen[name].expect("presence", from_=f"{room}/robert", show="away")

    carol.send_presence(pto=f"{room}/alice")
    await seen["carol"].expect("presence_error", from_=f"{room}/alice")

    carol.send_message(mto=room, mbody="still carol", mtype="groupchat")
    await seen["alice"].expect("groupchat", from_=f"{room}/carol", body="still carol")

    await groupchat.finish(alice, bob, carol)


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["alice", "bob", "carol"]).parse_args())
