"""Two clients, alice and bob, log in (each sends initial presence) and
exchange chat messages: first to each other's bare JID, then to each
other's full JID.

Reports `session_start` for each, then every `message` each receives (with
`client`, the receiver, and the stanza's `from`, `to`, `type` and `body`);
exits 0 once each has received the other's two messages.
"""

import asyncio

import harness


async def scenario(args):
    alice = harness.client(args, *args.alice)
    bob = harness.client(args, *args.bob)
    alice_inbox, bob_inbox = harness.inbox(alice, "alice"), harness.inbox(bob, "bob")
    await harness.login(args, alice, "alice")
    await harness.login(args, bob, "bob")

    bob.send_message(mto=alice.boundjid.bare, mbody="to alice's bare JID", mtype="chat")
    alice.send_message(mto=bob.boundjid.bare, mbody="to bob's bare JID", mtype="chat")
    bob.send_message(mto=alice.boundjid.full, mbody="to alice's full JID", mtype="chat")
    alice.send_message(mto=bob.boundjid.full, mbody="to bob's full JID", mtype="chat")
    await asyncio.gather(harness.receive(alice_inbox, 2), harness.receive(bob_inbox, 2))

    await asyncio.gather(harness.logout(alice), harness.logout(bob))


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["alice", "bob"]).parse_args())
