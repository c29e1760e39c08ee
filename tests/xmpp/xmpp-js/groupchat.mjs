/**
 * What the group chat (XEP-0045) and archive (XEP-0313) scenarios share.
 *
 * @xmpp/client has no plugin for either, so, as xmpp.js applications do,
 * the scenarios build the stanzas with its `xml()` helper, send iqs with its
 * `iqCaller` (which matches the answer by id, and rejects with a
 * `StanzaError` on an error answer) and watch its `stanza` events.
 *
 * An `Observer` reports what the group chat service and its rooms send one
 * client: `presence` (`from`, `type`: 'available' or 'unavailable', `role`,
 * `affiliation`, `jid`, `actor`, `reason`, `codes`: the muc#user status
 * codes as numbers), `presence_error` (`from`, `condition`), `groupchat`
 * (`from`, `to`, `id`, `body`, `stanza_id`: the XEP-0359 `{id, by}` or
 * null), `subject` (`from`, `subject`), `room_status` (`from`, `codes`),
 * `message_error` (`from`, `condition`) and `private` (`from`, `type`,
 * `body`); each with `client`, and, for the scenario's waits, `room` (the
 * bare JID) and `nick`.
 */

import * as harness from "./harness.mjs";

export const NS_MUC = "http://jabber.org/protocol/muc";
export const NS_MUC_USER = "http://jabber.org/protocol/muc#user";
export const NS_MUC_ADMIN = "http://jabber.org/protocol/muc#admin";
export const NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner";
export const NS_DATA = "jabber:x:data";
export const NS_SID = "urn:xmpp:sid:0";
const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";

/** The group chat service of the domain of account `address` (a JID). */
export function service(address) {
  return `conference.${harness.jid(address).domain}`;
}

/** The muc#user status codes of a stanza, as numbers. */
function codes(x) {
  return (x?.getChildren("status") ?? []).map((status) => Number(status.attrs.code));
}

/** The defined condition of a stanza error, if any. */
function condition(stanza) {
  const error = stanza.getChild("error");
  const defined = error?.children.find((child) => typeof child !== "string" && child.attrs.xmlns === NS_STANZAS);
  return defined?.name ?? null;
}

/** Whether `value` is what `wanted` asks for: equal, or a predicate's yes. */
function matches(value, wanted) {
  return typeof wanted === "function" ? wanted(value) : value === wanted;
}

/** Watches what `service` (a domain) and its rooms send `xmpp`. */
export class Observer {
  constructor(xmpp, service) {
    this.name = xmpp.scenario.name;
    this.service = service;
    /** Each `[fields, stanza]` reported, in the order they arrived. */
    this.seen = [];
    this.claimed = new Set();
    this.waiting = [];
    xmpp.on("stanza", (stanza) => this.#arrived(stanza));
  }

  #arrived(stanza) {
    const from = stanza.attrs.from;
    if (!from || harness.jid(from).domain !== this.service) return;
    const fields = this.#fields(stanza);
    if (!fields) return;
    const address = harness.jid(from);
    const { event, ...reported } = { client: this.name, from, ...fields };
    harness.emit(event, reported);
    const room = address.bare().toString();
    this.seen.push([{ event, ...reported, room, nick: address.resource || null }, stanza]);
    const waiting = this.waiting;
    this.waiting = [];
    for (const wake of waiting) wake();
  }

  /** What is reported of `stanza` (with `event`), or null to ignore it. */
  #fields(stanza) {
    const { type } = stanza.attrs;
    if (stanza.is("presence")) {
      if (type === "error") return { event: "presence_error", condition: condition(stanza) };
      const x = stanza.getChild("x", NS_MUC_USER);
      const item = x?.getChild("item");
      return {
        event: "presence",
        type: type === "unavailable" ? "unavailable" : "available",
        role: item?.attrs.role ?? null,
        affiliation: item?.attrs.affiliation ?? null,
        jid: item?.attrs.jid ?? null,
        actor: item?.getChild("actor")?.attrs.nick ?? null,
        reason: item?.getChildText("reason") ?? null,
        codes: codes(x),
      };
    }
    if (!stanza.is("message")) return null;
    const body = stanza.getChildText("body");
    const subject = stanza.getChildText("subject");
    if (type === "error") return { event: "message_error", condition: condition(stanza) };
    if (type === "groupchat" && body !== null) {
      const sid = stanza.getChild("stanza-id", NS_SID);
      return {
        event: "groupchat",
        to: stanza.attrs.to ?? null,
        id: stanza.attrs.id ?? null,
        body,
        stanza_id: sid ? { id: sid.attrs.id ?? null, by: sid.attrs.by ?? null } : null,
      };
    }
    if (type === "groupchat" && subject !== null) return { event: "subject", subject };
    if (type === "groupchat") return { event: "room_status", codes: codes(stanza.getChild("x", NS_MUC_USER)) };
    if (body !== null) return { event: "private", type: type ?? null, body };
    return null;
  }

  /**
   * The first stanza reported as `event` whose fields have the `wanted`
   * values (or pass its predicates) that no earlier wait returned: one
   * already received, or the next to arrive. Returns `[fields, stanza]`.
   */
  expect(event, wanted = {}) {
    return this.first([event, wanted]);
  }

  /** Like `expect`, for whichever of several `[event, wanted]` comes first. */
  async first(...choices) {
    const fits = (fields, [event, wanted]) =>
      fields.event === event && Object.entries(wanted).every(([key, value]) => matches(fields[key], value));
    for (;;) {
      const index = this.seen.findIndex(
        ([fields], at) => !this.claimed.has(at) && choices.some((choice) => fits(fields, choice)),
      );
      if (index >= 0) {
        this.claimed.add(index);
        return this.seen[index];
      }
      await new Promise((resolve) => {
        this.waiting.push(resolve);
      });
    }
  }
}

/** A room refused entry; `condition` says why. */
export class Refused extends harness.ScenarioFailed {
  constructor(room, condition) {
    super(`${room} refused entry: ${condition}`);
    this.condition = condition;
  }
}

/**
 * `xmpp` (watched by `observer`) enters `room` as `nick` (§7.2): waits for
 * its own presence (status 110), then for the subject, which ends the
 * entry (§7.2.16). Reports `joined` (`client`, `room`, `nick`, `codes`,
 * `role`, `affiliation`); raises Refused on a presence error.
 */
export async function join(xmpp, observer, room, nick) {
  const occupant = `${room}/${nick}`;
  await xmpp.send(xml("presence", { to: occupant }, xml("x", { xmlns: NS_MUC })));
  const own = (codes) => codes.includes(110);
  const [fields] = await observer.first(
    ["presence", { from: occupant, type: "available", codes: own }],
    ["presence_error", { from: occupant }],
  );
  if (fields.event === "presence_error") throw new Refused(room, fields.condition);
  await observer.expect("subject", { room });
  const { codes, role, affiliation } = fields;
  harness.emit("joined", { client: observer.name, room, nick, codes, role, affiliation });
  return fields;
}

/** @xmpp/client's `xml`, loaded by `harness.run`. */
function xml(...args) {
  return harness.xml(...args);
}

/**
 * An iq of `type` to `to` with `payload`, through @xmpp/client's
 * iqCaller: the answer, or (an error answer) its StanzaError raised.
 */
export function request(xmpp, type, to, payload) {
  return xmpp.iqCaller.request(xml("iq", { type, to }, payload));
}

/**
 * The owner of a new `room` accepts its default configuration: an instant
 * room (§10.1.2), an empty submitted form. Reports `configured`
 * (`client`, `room`, `type` of the answer).
 */
export async function instant(xmpp, room) {
  const form = xml("query", { xmlns: NS_MUC_OWNER }, xml("x", { xmlns: NS_DATA, type: "submit" }));
  const answer = await request(xmpp, "set", room, form);
  harness.emit("configured", { client: xmpp.scenario.name, room, type: answer.attrs.type });
}
