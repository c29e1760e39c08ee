"""alice adds bob to her roster and subscribes to his presence; bob's
slixmpp approves and subscribes back (auto_authorize and auto_subscribe,
set explicitly here), and alice's approves that. Both are online, with
initial presence sent, throughout.

Reports `session_start` for each, each `presence` of the other one a client
receives (`client`, `from`, `type`, `status`), and each client's roster as
the server returns it whenever it changed (`roster`, with `client` and
`items`: JID → {subscription, ask, name}). Exits 0 once both rosters show
the other with subscription 'both' and alice has received bob's available
presence.
"""

import asyncio

import harness


async def scenario(args):
    alice = harness.client(args, *args.alice)
    bob = harness.client(args, *args.bob)
    alice_jid, bob_jid = alice.requested_jid.bare, bob.requested_jid.bare
    from_bob = harness.watch_presence(alice, "alice", bob_jid)
    harness.watch_presence(bob, "bob", alice_jid)
    await harness.login(args, alice, "alice")
    await harness.login(args, bob, "bob")

    await harness.befriend(alice, "alice", bob, "bob", "Bob")
    await harness.presence_of(from_bob, harness.AVAILABLE)


    await asyncio.gather(harness.logout(alice), harness.logout(bob))


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["alice", "bob"]).parse_args())
