"""XEP-0313 message archives, paged with XEP-0059, for an account and a
room. alice sends bob COUNT chat messages (`m000`, `m001`, …) while both
are online; then each pages through their archive with the other, PAGE
results at a time, forwards and backwards; a time window in the future
finds nothing; the stanza-id on what bob received names the same message
in his archive. alice then makes a room and says ROOM_COUNT things in it,
and bob (never in the room) pages through the room's archive.

Reports `session_start` for each; `received` (`count`, and `stanza_id`:
the id on bob's first message, `by`: whose archive it names) once bob has
them all; `archive` for each walk (`client`, `direction`: 'forward' or
'backward', `bodies`: the bodies in the order returned, `ids`: how many
distinct result ids); `window` (`count` of results in the future window);
`first_result` (`id` and `body` of bob's oldest archived message); and
`room_archive` (`bodies`, `froms`: distinct senders' JIDs). Exits 0 once
all are reported.
"""

import asyncio
import datetime

import harness

COUNT = 300
ROOM_COUNT = 120
PAGE = 50
ROOM = "archived@conference.localhost"


async def walk(xmpp, reverse, **query):
    """The results of one paged walk of an archive: (body, id) in the order
    they came."""
    results = []
    async for message in xmpp["xep_0313"].iterate(rsm={"max": PAGE}, reverse=reverse, **query):
        forwarded = message["mam_result"]["forwarded"]["stanza"]
        results.append((str(forwarded["body"]), message["mam_result"]["id"]))
    return results


def report_walk(client, direction, results):
    harness.emit("archive", client=client, direction=direction,
                 bodies=[body for body, _ in results],
                 ids=len({result_id for _, result_id in results}))


async def scenario(args):
    plugins = ["xep_0045", "xep_0059", "xep_0313", "xep_0359"]
    alice = harness.client(args, *args.alice, plugins=plugins)
    bob = harness.client(args, *args.bob, plugins=plugins)
    received = asyncio.Queue()
    bob.add_event_handler("message", lambda message: message["body"] and received.put_nowait(message))
    await harness.login(args, alice, "alice")
    await harness.login(args, bob, "bob")

    for n in range(COUNT):
        alice.send_message(mto=bob.boundjid.bare, mbody=f"m{n:03}", mtype="chat")
    messages = [await received.get() for _ in range(COUNT)]
    first = messages[0]
    harness.emit("received", client="bob", count=len(messages), stanza_id=first["stanza_id"]["id"],
                 by=str(first["stanza_id"]["by"]))

    alice_jid, bob_jid = alice.boundjid.bare, bob.boundjid.bare
    for direction, reverse in (("forward", False), ("backward", True)):
        report_walk("bob", direction, await walk(bob, reverse, with_jid=alice_jid))
    report_walk("alice", "forward", await walk(alice, False, with_jid=bob_jid))
    oldest = (await walk(bob, False))[0]
    harness.emit("first_result", client="bob", body=oldest[0], id=oldest[1])

    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    window = await walk(bob, False, start=later, end=later + datetime.timedelta(hours=1))
    harness.emit("window", client="bob", count=len(window))

    echoes = asyncio.Queue()
    alice.add_event_handler("groupchat_message", lambda message: echoes.put_nowait(message))
    await alice["xep_0045"].join_muc_wait(ROOM, "alice", maxstanzas=0)
    for n in range(ROOM_COUNT):
        alice.send_message(mto=ROOM, mbody=f"r{n:03}", mtype="groupchat")
    for _ in range(ROOM_COUNT):
        await echoes.get()
    results = []
    async for message in bob["xep_0313"].iterate(jid=ROOM, rsm={"max": PAGE}):
        results.append(message["mam_result"]["forwarded"]["stanza"])
    harness.emit("room_archive", client="bob", bodies=[str(message["body"]) for message in results],
                 froms=sorted({str(message["from"]) for message in results}))

    await asyncio.gather(harness.logout(alice), harness.logout(bob))


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["alice", "bob"]).parse_args())
