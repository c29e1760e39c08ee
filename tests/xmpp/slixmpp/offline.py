"""bob sends alice a chat message while alice is offline, and logs out;
then alice logs in (with initial presence) and receives it.

Reports `session_start` for each, `sent` when bob has sent the message, and
the `message` alice receives (`from`, `to`, `type`, `body`, and `delay`:
the XEP-0203 stamp, or null). Exits 0 once alice has it.
"""

import asyncio

import slixmpp

import harness

BODY = "sent while you were away"


async def scenario(args):
    bob = harness.client(args, *args.bob)
    await harness.login(args, bob, "bob")
    alice_jid = slixmpp.JID(args.alice[0]).bare
    bob.send_message(mto=alice_jid, mbody=BODY, mtype="chat")
    harness.emit("sent", client="bob", to=alice_jid, body=BODY)
    await harness.logout(bob)

    alice = harness.client(args, *args.alice, plugins=["xep_0203"])
    received = asyncio.get_running_loop().create_future()

    def on_message(message):
        delay = message["delay"]["stamp"] if message.get_plugin("delay", check=True) is not None else None
        harness.emit("message", client="alice", delay=delay and delay.isoformat(), **{
            key: str(message[key]) for key in ("from", "to", "type", "body")
        })
        if message["body"] == BODY and not received.done():
            received.set_result(message)

    alice.add_event_handler("message", on_message)
    await harness.login(args, alice, "alice")
    await received
    await harness.logout(alice)


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["alice", "bob"]).parse_args())
