"""Two sessions of the same account with the same resource: the first logs
in, then the second. The server must end the first with a `conflict`
stream error and keep the second, which then sends a message to its own
full JID and receives it.

Reports `session_start` for `first` and `second`, the `stream_error` the
first receives (`condition`, `text`), `disconnected` for the first, and the
`message` the second receives. Exits 0 once the first is disconnected and
the second has its message back.
"""

import asyncio

import harness

BODY = "am I still here?"


async def scenario(args):
    first = harness.client(args, *args.user)
    second = harness.client(args, *args.user)
    first_gone = asyncio.get_running_loop().create_future()
    echoed = asyncio.get_running_loop().create_future()

    first.add_event_handler("stream_error", lambda error: harness.emit(
        "stream_error", client="first", condition=error["condition"], text=error["text"]))

    def on_first_disconnected(reason):
        if not first_gone.done():
            harness.emit("disconnected", client="first")
            first_gone.set_result(reason)

    def on_second_message(message):
        harness.emit("message", client="second", **{
            key: str(message[key]) for key in ("from", "to", "type", "body")
        })
        if message["body"] == BODY and not echoed.done():
            echoed.set_result(message)

    second.add_event_handler("message", on_second_message)
    await harness.login(args, first, "first")
    first.add_event_handler("disconnected", on_first_disconnected)
    await harness.login(args, second, "second")
    await first_gone

    second.send_message(mto=second.boundjid.full, mbody=BODY, mtype="chat")
    await echoed
    await harness.logout(second)


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["user"]).parse_args())
