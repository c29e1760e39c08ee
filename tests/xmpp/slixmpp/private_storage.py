"""XEP-0049 private XML storage: alice logs in, stores an element of a
namespace of her own (`<notes xmlns='urn:ej:test:notes' topic='…'><note>…
</note></notes>`) and logs out; then she logs in again, in a new session,
and reads it back.

Reports `session_start` for each session (`first`, `second`), `stored`
(the element's `topic` and `note`) once the server accepted it, and
`retrieved` (the same, as the server returned them, and `xml`: the
element). Exits 0 once it is read back.
"""

from slixmpp.xmlstream import ElementBase

import harness


class Notes(ElementBase):
    """The stored element."""
    name = "notes"
    namespace = "urn:ej:test:notes"
    plugin_attrib = "notes"
    interfaces = {"topic", "note"}
    sub_interfaces = {"note"}


def session(args):
    xmpp = harness.client(args, *args.user, plugins=["xep_0049"])
    xmpp["xep_0049"].register(Notes)
    return xmpp


async def scenario(args):
    first = session(args)
    await harness.login(args, first, "first", presence=False)
    notes = Notes()
    notes["topic"] = "groceries"
    notes["note"] = "milk, bread & <cheese>"
    await first["xep_0049"].store(notes)
    harness.emit("stored", client="first", topic=notes["topic"], note=notes["note"])
    await harness.logout(first)

    second = session(args)
    await harness.login(args, second, "second", presence=False)
    iq = await second["xep_0049"].retrieve("notes")
    read = iq["private"]["notes"]
    harness.emit("retrieved", client="second", topic=read["topic"], note=read["note"], xml=str(read))
    await harness.logout(second)


if __name__ == "__main__":
    harness.run(scenario, harness.options(__doc__, ["user"]).parse_args())
