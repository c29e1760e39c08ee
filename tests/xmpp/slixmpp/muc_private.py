"""Private messages between occupants (XEP-0045 §7.5), and a request to an
occupant: alice enters `lounge@conference.DOMAIN`, then bob and carol. bob
sends carol a private message (type chat, to lounge@…/carol): carol must
get it from lounge@…/bob, with the muc#user `<x/>` that says it came
through the room. carol answers (to lounge@…/bob), and bob gets it from
lounge@…/carol. alice asks lounge@…/bob for its disco#info: the room
passes the request to bob's client, and its answer back, from
lounge@…/bob. Then bob says something to the whole room, which alice gets:
had alice been sent either private message, it would have reached her
before.

Reports what groupchat.py's Observer and `join` report for each client
(the private messages as `private`), and `occupant_info` (`client`,
`from`, `type`, `features`) for the disco#info answer. Exits 0 once alice
has bob's message to the room, reporting `done` before logging out.
"""

import slixmpp

import groupchat
import harness


async def scenario(args):
    alice, bob, carol = (groupchat.client(args, *account) for account in (args.alice, args.bob, args.carol))
    seen = groupchat.observe(alice=alice, bob=bob, carol=carol)
    for xmpp, name in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
        await harness.login(args, xmpp, name)
    room = f"lounge@{groupchat.service(alice)}"
    await groupchat.join(alice, seen["alice"], room, "alice")
    await groupchat.join(bob, seen["bob"], room, "bob")
    await groupchat.join(carol, seen["carol"], room, "carol")

    bob.send_message(mto=f"{room}/carol", mbody="psst, carol", mtype="chat")
    await seen["carol"].expect("private", from_=f"{room}/bob", body="psst, carol")
    carol.send_message(mto=f"{room}/bob", mbody="yes, bob?", mtype="chat")
    await seen["bob"].expect("private", from_=f"{room}/carol", body="yes, bob?")

    info = await alice["xep_0030"].get_info(jid=slixmpp.JID(f"{room}/bob"), cached=False, timeout=10)
    harness.emit("occupant_info", client="alice", type=info["type"],
                 features=sorted(info["disco_info"]["features"]), **{"from": str(info["from"])})

    bob.send_message(mto=room, mbody="nothing, everyone", mtype="groupchat")
    await seen["alice"].expect("groupchat", from_=f"{room}/bob", body="nothing, everyone")

    await groupchat.finish(alice, bob, carol)


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["alice", "bob", "carol"]).parse_args())
