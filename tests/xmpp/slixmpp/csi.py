"""XEP-0352 client state indication: alice and bob log in and become
mutual contacts (as in roster.py). alice says she is inactive (with
slixmpp's plugin, which needs the server to offer CSI); bob changes his
presence twice (show 'away', then 'dnd'), then sends alice a chat message.
Messages are not held back, and bob's stanzas to alice arrive in order, so
once alice has the message, any presence of bob's she were sent would be
there already. Then alice says she is active and pings the server: by the
pong, what was held for her has arrived.

Reports `session_start` and `roster` changes as roster.py does, `csi`
(`state`) when alice sends one, every `presence` of bob's alice receives
(`from`, `type`, `status`), the `message` she receives, and `pong`. Exits
0 once the pong is in.
"""

import asyncio

import slixmpp

import harness


async def scenario(args):
    alice = harness.client(args, *args.alice, plugins=["xep_0199", "xep_0352"])
    bob = harness.client(args, *args.bob)
    from_bob = harness.watch_presence(alice, "alice", bob.requested_jid.bare)
    alice_inbox = harness.inbox(alice, "alice")
    await harness.login(args, alice, "alice")
    await harness.login(args, bob, "bob")
    await harness.befriend(alice, "alice", bob, "bob", "Bob")
    # The presence of bob's that the subscription brings to alice.
    await harness.presence_of(from_bob, harness.AVAILABLE)
    if not alice["xep_0352"].enabled:
        raise harness.ScenarioFailed("the server does not offer CSI (urn:xmpp:csi:0)")

    alice["xep_0352"].send_inactive()
    harness.emit("csi", client="alice", state="inactive")
    # By the pong, the server has seen it.
    await alice["xep_0199"].send_ping(slixmpp.JID(alice.boundjid.domain), timeout=10)
    bob.send_presence(pshow="away", pstatus="away")
    bob.send_presence(pshow="dnd", pstatus="dnd")
    bob.send_message(mto=alice.boundjid.bare, mbody="after my presence changes", mtype="chat")
    await alice_inbox.get()

    alice["xep_0352"].send_active()
    harness.emit("csi", client="alice", state="active")
    pong = await alice["xep_0199"].send_ping(slixmpp.JID(alice.boundjid.domain), timeout=10)
    harness.emit("pong", client="alice", type=pong["type"])

    await asyncio.gather(harness.logout(alice), harness.logout(bob))


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["alice", "bob"]).parse_args())
