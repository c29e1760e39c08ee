/**
 * Message archives (XEP-0313, `urn:xmpp:mam:2`) paged with XEP-0059, for an
 * account and for a room. carol sends bob one chat message, then alice
 * sends him COUNT (`m000`, `m001`, …), all received while he is online.
 * bob queries his archive for his conversation with alice (the form's
 * `with`: her bare JID), PAGE results a page, walking forwards with
 * `<after/>` the previous page's `<last/>` until a `<fin/>` says
 * `complete='true'`; then asks for the last page alone with an empty
 * `<before/>`. Then alice creates `team@conference.DOMAIN` (an instant
 * room), carol enters and says something, and bob, who never entered,
 * queries the room's archive.
 *
 * Reports `session_start` for each; `received` (`client`: bob, `count`,
 * `bodies`: in the order they arrived, `stanza_id` and `by`: the XEP-0359
 * stanza-id on the first of alice's); `page` for each page of each query
 * (`client`, `query`: 'forward', 'last' or 'room', `results`, `complete`,
 * `first`, `index`, `last`, `count`: what the `<fin/>`'s `<set/>` says,
 * `ids`: the results' ids, `stray`: result messages for another query
 * id); `archive` for each walk (`client`, `query`, `bodies` in the order
 * returned, `ids`: the results' ids, `froms`: the distinct senders of the
 * archived messages, `result_froms`: the distinct `from`s of the result
 * messages, null for none, `pages`); `said` (`client`: alice, carol's
 * message in the room as alice got it: `id` and `by` of its stanza-id);
 * and what groupchat.mjs reports of the room. Exits 0 once bob has the
 * room's archive, reporting `done` before logging out.
 */

import * as groupchat from "./groupchat.mjs";
import * as harness from "./harness.mjs";

const COUNT = 200;
const PAGE = 50;
const NS_MAM = "urn:xmpp:mam:2";
const NS_RSM = "http://jabber.org/protocol/rsm";
const NS_FORWARD = "urn:xmpp:forward:0";
/** More pages than a walk may take before it is deemed endless. */
const MOST_PAGES = COUNT / PAGE + 2;

let queries = 0;

/**
 * One page of an archive query from `xmpp` to `to` (its own archive if
 * undefined): the form has `with` if given; the RSM `<set/>` has `max`
 * and, if given, `after` or `before` (an empty string: an empty
 * `<before/>`). Collects the result messages with the query's id until
 * the iq's answer; reports the page as `page` for `name` and `query` (the
 * walk's name); returns the results ({id, body, from}) and the `<fin/>`'s
 * bounds.
 */
async function page(xmpp, name, query, { to, with: peer, after, before }) {
  const { xml } = harness;
  const queryid = `q${++queries}`;
  const results = [];
  const resultFroms = new Set();
  let stray = 0;
  const collect = (stanza) => {
    const result = stanza.is("message") && stanza.getChild("result", NS_MAM);
    if (!result) return;
    if (result.attrs.queryid !== queryid) {
      stray += 1;
      return;
    }
    resultFroms.add(stanza.attrs.from ?? null);
    const message = result.getChild("forwarded", NS_FORWARD)?.getChild("message");
    results.push({ id: result.attrs.id, body: message?.getChildText("body") ?? null, from: message?.attrs.from });
  };
  const form =
    peer &&
    xml(
      "x",
      { xmlns: groupchat.NS_DATA, type: "submit" },
      xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, NS_MAM)),
      xml("field", { var: "with" }, xml("value", {}, peer)),
    );
  const set = xml(
    "set",
    { xmlns: NS_RSM },
    xml("max", {}, String(PAGE)),
    after === undefined ? null : xml("after", {}, after),
    before === undefined ? null : xml("before", {}, before),
  );
  // The results arrive before the answer, and @xmpp/client emits each
  // stanza as it is parsed, before the answer's promise settles.
  xmpp.on("stanza", collect);
  let answer;
  try {
    answer = await groupchat.request(xmpp, "set", to, xml("query", { xmlns: NS_MAM, queryid }, form, set));
  } finally {
    xmpp.removeListener("stanza", collect);
  }
  const fin = answer.getChild("fin", NS_MAM);
  const rsm = fin?.getChild("set", NS_RSM);
  const bounds = {
    complete: fin?.attrs.complete === "true",
    first: rsm?.getChildText("first") ?? null,
    index: rsm?.getChild("first")?.attrs.index ?? null,
    last: rsm?.getChildText("last") ?? null,
    count: rsm?.getChildText("count") ?? null,
  };
  const ids = results.map((result) => result.id);
  harness.emit("page", { client: name, query, results: results.length, ...bounds, ids, stray });
  return { results, resultFroms, ...bounds };
}

/** Reports one walk's results as `archive`. */
function report(name, query, pages) {
  const results = pages.flatMap((each) => each.results);
  const froms = new Set(results.map((result) => result.from));
  const resultFroms = new Set(pages.flatMap((each) => [...each.resultFroms]));
  harness.emit("archive", {
    client: name,
    query,
    bodies: results.map((result) => result.body),
    ids: results.map((result) => result.id),
    froms: [...froms].sort(),
    result_froms: [...resultFroms],
    pages: pages.length,
  });
}

/**
 * Pages forwards through a query (see `page`) from its start, each page
 * after the last one's `<last/>`, until `complete='true'`.
 */
async function walk(xmpp, name, query, options) {
  const pages = [];
  let after;
  for (;;) {
    if (pages.length === MOST_PAGES) {
      throw new harness.ScenarioFailed(`${name}: no complete='true' after ${MOST_PAGES} pages`);
    }
    const each = await page(xmpp, name, query, { ...options, after });
    pages.push(each);
    if (each.complete) break;
    if (each.last === null) throw new harness.ScenarioFailed(`${name}: an incomplete page without <last/>`);
    after = each.last;
  }
  report(name, query, pages);
}

harness.run(["alice", "bob", "carol"], async (args) => {
  const { xml } = harness;
  const service = groupchat.service(args.alice[0]);
  const names = ["alice", "bob", "carol"];
  const clients = Object.fromEntries(names.map((name) => [name, harness.client(args, name, args[name])]));
  const { alice, bob, carol } = clients;

  // bob's chat messages, as they arrive (the archive's result messages
  // have no body of their own).
  const arrived = [];
  let wake = null;
  bob.on("stanza", (stanza) => {
    if (stanza.is("message") && stanza.attrs.type === "chat" && stanza.getChild("body")) {
      arrived.push(stanza);
      wake?.();
    }
  });
  const received = async (count) => {
    while (arrived.length < count) {
      await new Promise((resolve) => {
        wake = resolve;
      });
    }
  };
  for (const name of names) await harness.login(clients[name]);
  const chat = (from, body) =>
    from.send(xml("message", { to: bob.jid.bare().toString(), type: "chat" }, xml("body", {}, body)));

  await chat(carol, "from carol");
  await received(1);
  const sent = Array.from({ length: COUNT }, (_, n) => `m${String(n).padStart(3, "0")}`);
  for (const body of sent) await chat(alice, body);
  await received(1 + COUNT);
  const fromAlice = arrived.filter((stanza) => stanza.attrs.from.startsWith("alice@"));
  const sid = fromAlice[0]?.getChild("stanza-id", groupchat.NS_SID);
  harness.emit("received", {
    client: "bob",
    count: fromAlice.length,
    bodies: fromAlice.map((stanza) => stanza.getChildText("body")),
    stanza_id: sid?.attrs.id ?? null,
    by: sid?.attrs.by ?? null,
  });

  const peer = alice.jid.bare().toString();
  await walk(bob, "bob", "forward", { with: peer });
  report("bob", "last", [await page(bob, "bob", "last", { with: peer, before: "" })]);

  const seen = {
    alice: new groupchat.Observer(alice, service),
    carol: new groupchat.Observer(carol, service),
  };
  const room = `team@${service}`;
  await groupchat.join(alice, seen.alice, room, "alice");
  await groupchat.instant(alice, room);
  await groupchat.join(carol, seen.carol, room, "carol");
  await carol.send(xml("message", { to: room, type: "groupchat" }, xml("body", {}, "minutes are in the archive")));
  const [said] = await seen.alice.expect("groupchat", { from: `${room}/carol` });
  await seen.carol.expect("groupchat", { from: `${room}/carol` });
  harness.emit("said", { client: "alice", id: said.stanza_id?.id ?? null, by: said.stanza_id?.by ?? null });
  await walk(bob, "bob", "room", { to: room });

  harness.emit("done");
  await Promise.all(names.map((name) => harness.logout(clients[name])));
});
