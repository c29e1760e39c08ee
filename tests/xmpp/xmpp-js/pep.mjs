/**
 * PEP (XEP-0163) with a client that has no plugin for it, as applications
 * built on @xmpp/client do it: bob's presence carries entity capabilities
 * (XEP-0115) that this script computes itself, naming the feature
 * `http://jabber.org/protocol/geoloc+notify`, and it answers the server's
 * disco#info query for them; alice and bob become mutual contacts; alice
 * publishes her location (XEP-0080) with a raw iq, and bob hears of it;
 * then he reads it back with a raw items request.
 *
 * Reports `session_start` for each; `caps_query` (the `node` the server
 * asked bob about, and `ver`, the verification string bob sent); `published`
 * (the item id the server answered with); `pubsub` (bob's notification:
 * `from`, `type`, `node`, `id`, `lat`, `lon`); `retrieved` (bob's read:
 * `ids`, `lat`); exits 0 once all are reported.
 */

import { createHash } from "node:crypto";

import * as harness from "./harness.mjs";

const CAPS = "http://jabber.org/protocol/caps";
const DISCO_INFO = "http://jabber.org/protocol/disco#info";
const PUBSUB = "http://jabber.org/protocol/pubsub";
const EVENT = "http://jabber.org/protocol/pubsub#event";
const GEOLOC = "http://jabber.org/protocol/geoloc";
const NODE = "https://ej.test/xmpp-js";
const IDENTITY = ["client", "pc", "", "xmpp.js"];
const FEATURES = [CAPS, DISCO_INFO, `${GEOLOC}+notify`];

/** The XEP-0115 §5.1 verification string of IDENTITY and FEATURES. */
function verification() {
  const text = [IDENTITY.join("/"), ...[...FEATURES].sort()].map((part) => `${part}<`).join("");
  return createHash("sha1").update(text, "utf8").digest("base64");
}

/** Resolves when `xmpp` has received a stanza `matches` accepts; with it. */
function arrival(xmpp, matches) {
  return new Promise((resolve) => {
    const listener = (stanza) => {
      if (matches(stanza)) {
        xmpp.removeListener("stanza", listener);
        resolve(stanza);
      }
    };
    xmpp.on("stanza", listener);
  });
}

/** Makes alice and bob mutual contacts: each asks, each approves. */
async function befriend(alice, bob) {
  const { xml } = harness;
  const [aliceJid, bobJid] = [alice, bob].map((xmpp) => xmpp.jid.bare().toString());
  const approve = (xmpp, other) =>
    xmpp.on("stanza", (stanza) => {
      if (stanza.is("presence") && stanza.attrs.type === "subscribe" && stanza.attrs.from === other) {
        xmpp.send(xml("presence", { to: other, type: "subscribed" }));
      }
    });
  approve(alice, bobJid);
  approve(bob, aliceJid);
  await alice.send(xml("presence", { to: bobJid, type: "subscribe" }));
  await bob.send(xml("presence", { to: aliceJid, type: "subscribe" }));
  const mutual = async () =>
    (await harness.roster(alice))[bobJid]?.subscription === "both" &&
    (await harness.roster(bob))[aliceJid]?.subscription === "both";
  while (!(await mutual())) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

harness.run(["alice", "bob"], async (args) => {
  const { xml } = harness;
  const alice = harness.client(args, "alice", args.alice);
  const bob = harness.client(args, "bob", args.bob);
  const ver = verification();
  bob.iqCallee.get(DISCO_INFO, "query", ({ element }) => {
    harness.emit("caps_query", { client: "bob", node: element.attrs.node ?? null, ver });
    const [category, type, , name] = IDENTITY;
    return xml(
      "query",
      { xmlns: DISCO_INFO, node: element.attrs.node },
      xml("identity", { category, type, name }),
      ...FEATURES.map((feature) => xml("feature", { var: feature })),
    );
  });
  const heard = arrival(bob, (stanza) => stanza.is("message") && stanza.getChild("event", EVENT));
  await harness.login(alice);
  await harness.login(bob, false);
  await bob.send(xml("presence", {}, xml("c", { xmlns: CAPS, hash: "sha-1", node: NODE, ver })));
  await harness.roster(bob);
  await befriend(alice, bob);

  const geoloc = xml("geoloc", { xmlns: GEOLOC }, xml("lat", {}, "48.8566"), xml("lon", {}, "2.3522"));
  const publish = xml("pubsub", { xmlns: PUBSUB }, xml("publish", { node: GEOLOC }, xml("item", {}, geoloc)));
  const answer = await alice.iqCaller.set(publish);
  const id = answer.getChild("publish").getChild("item").attrs.id;
  harness.emit("published", { client: "alice", id });

  const message = await heard;
  const items = message.getChild("event", EVENT).getChild("items");
  const item = items.getChild("item");
  const location = item.getChild("geoloc", GEOLOC);
  harness.emit("pubsub", {
    client: "bob",
    from: message.attrs.from,
    type: message.attrs.type,
    node: items.attrs.node,
    id: item.attrs.id,
    lat: location.getChildText("lat"),
    lon: location.getChildText("lon"),
  });

  const request = xml("pubsub", { xmlns: PUBSUB }, xml("items", { node: GEOLOC, max_items: "1" }));
  const read = await bob.iqCaller.get(request, alice.jid.bare().toString());
  const found = read.getChild("items").getChildren("item");
  harness.emit("retrieved", {
    client: "bob",
    ids: found.map((each) => each.attrs.id),
    lat: found[0]?.getChild("geoloc", GEOLOC)?.getChildText("lat") ?? null,
  });

  await Promise.all([harness.logout(alice), harness.logout(bob)]);
});
