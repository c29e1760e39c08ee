"""alice's client (slixmpp with XEP-0198) loses its socket in the middle
of a conversation and resumes its session on a new one.

alice and bob log in; alice's slixmpp enables stream management with
resumption. bob sends alice `one`, which she gets. Then alice sends bob
`a1` and her socket is cut at once (the transport aborted: no stream end,
and whatever was still buffered is lost); bob sends `two` and `three`
while she is away. alice connects again and slixmpp resumes the stream:
what the server had sent her and she never acknowledged comes again,
what she had sent and the server never handled goes again. Then bob sends
`four`.

Reports `sm_enabled` (`resume`: whether the server offered resumption),
`cut`, `session_resumed`, a `message` for each message either receives,
and `done` a second after alice has `four` and bob has `a1` (time for
anything duplicated to show up).
"""

import asyncio

import harness


async def scenario(args):
    alice = harness.client(args, *args.alice, plugins=["xep_0198"])
    bob = harness.client(args, *args.bob)
    enabled = asyncio.get_running_loop().create_future()
    resumed = asyncio.get_running_loop().create_future()

    def on_enabled(stanza):
        harness.emit("sm_enabled", client="alice", resume=stanza["resume"] in ("true", "1", True))
        if not enabled.done():
            enabled.set_result(True)

    def on_resumed(stanza):
        harness.emit("session_resumed", client="alice", h=str(stanza["h"]))
        if not resumed.done():
            resumed.set_result(True)

    alice.add_event_handler("sm_enabled", on_enabled)
    alice.add_event_handler("session_resumed", on_resumed)
    alice_inbox = harness.inbox(alice, "alice")
    bob_inbox = harness.inbox(bob, "bob")
    await harness.login(args, alice, "alice")
    await enabled
    await harness.login(args, bob, "bob")
    alice_jid = str(alice.boundjid)
    bob_jid = str(bob.boundjid)

    bob.send_message(mto=alice_jid, mbody="one", mtype="chat")
    await harness.receive(alice_inbox, 1)

    alice.send_message(mto=bob_jid, mbody="a1", mtype="chat")
    alice.transport.abort()
    harness.emit("cut", client="alice")
    for body in ("two", "three"):
        bob.send_message(mto=alice_jid, mbody=body, mtype="chat")
    # A moment for them to reach the session while it has no socket.
    await asyncio.sleep(0.3)

    alice.connect(args.host, args.port)
    await resumed
    bob.send_message(mto=alice_jid, mbody="four", mtype="chat")
    received = await harness.receive(alice_inbox, 3)
    while received[-1]["body"] != "four":
        received += await harness.receive(alice_inbox, 1)
    await harness.receive(bob_inbox, 1)
    await asyncio.sleep(1)
    harness.emit("done")
    await harness.logout(alice)
    await harness.logout(bob)


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["alice", "bob"]).parse_args())
