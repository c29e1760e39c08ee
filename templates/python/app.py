"""app.py: answers each stanza with <ok n='N'/>, N counting the stanzas of
the connection so far. The state is the JSON {"n":N}, as the Rust, C and
JavaScript counters keep it: the handler can be swapped for one of them
under a live connection."""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports.types import Action_Send, Connection, Event, Event_Stanza, Outcome


class WitWorld(wit_world.WitWorld):
    def handle(self, conn: Connection, state: bytes, event: Event) -> Outcome:
        n = 0
        if state:
            try:
                n = json.loads(state)["n"]
            except (ValueError, TypeError, KeyError) as e:
                raise Err(f"bad state: {e}")  # an error is a fault
        actions = []
        if isinstance(event, Event_Stanza):
            n += 1
            actions.append(Action_Send(f"<ok n='{n}'/>"))
        return Outcome(state=json.dumps({"n": n}, separators=(",", ":")).encode(), actions=actions)
