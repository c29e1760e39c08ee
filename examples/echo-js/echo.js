// Echo, in JavaScript: the same handler as examples/echo (Rust), built into a
// component by componentize-js (`cargo xtask guests`, see docs/handlers.md).
//
// Each stanza is echoed with its `from` and `to` attributes swapped (a stanza
// with neither is echoed unchanged), except two questions: `<count/>` gets
// `<count n='N'/>` back, N being the number of stanzas so far, this one
// included; `<module/>` gets `<module n='N' digest='D'/>`, D being the digest
// of the module build that answered. The stream header is answered with one
// of our own, and the peer's end of stream with ours.
//
// The state carried between events is the Rust echo's, as the same JSON:
// `{"stanzas":N,"domain":"…"}`.
//
// WIT to JavaScript: records are objects with camelCase fields, u64 is a
// BigInt, list<u8> a Uint8Array, a variant `{ tag, val }`, an enum a string,
// and throwing from `handle` returns the `err` case of its result.

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/// The one function of the `handler` world.
export function handle(conn, state, event) {
  const echo = decode(state);
  const actions = [];
  const send = (text) => actions.push({ tag: 'send', val: text });
  switch (event.tag) {
    case 'stream-open': {
      echo.domain = parseStartTag(event.val).attr('to') ?? '';
      send(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " +
          `xmlns:stream='http://etherx.jabber.org/streams' from='${escape(echo.domain)}' version='1.0'>`,
      );
      break;
    }
    case 'stanza': {
      echo.stanzas += 1;
      const el = parseStartTag(event.val);
      if (el.name === 'count') {
        send(`<count n='${echo.stanzas}'/>`);
      } else if (el.name === 'module') {
        send(`<module n='${echo.stanzas}' digest='${conn.module.digest}'/>`);
      } else {
        send(el.swapFromTo());
      }
      break;
    }
    case 'closed':
      if (event.val === 'stream-end') {
        send('</stream:stream>');
      }
      break;
    // routed, undeliverable, busy, bind-refused, timer, timer-refused, detached,
    // took-over: nothing to do.
  }
  return { state: encoder.encode(JSON.stringify(echo)), actions };
}

/// The state of the previous event: empty for a new connection.
function decode(bytes) {
  if (bytes.length === 0) {
    return { stanzas: 0, domain: '' };
  }
  let parsed;
  try {
    parsed = JSON.parse(decoder.decode(bytes));
  } catch (e) {
    throw `decoding state: ${e}`;
  }
  if (!Number.isSafeInteger(parsed?.stanzas) || parsed.stanzas < 0 || typeof parsed.domain !== 'string') {
    throw 'decoding state: expected {"stanzas": N, "domain": "…"}';
  }
  // Key order as in the Rust echo's JSON.
  return { stanzas: parsed.stanzas, domain: parsed.domain };
}

/// Escapes text for XML text or an attribute value in either kind of quotes.
function escape(text) {
  return SPECIAL.test(text) ? text.replace(SPECIALS, (c) => ESCAPES[c]) : text;
}

const SPECIAL = /[<>&'"\r]/;
const SPECIALS = /[<>&'"\r]/g;

const ESCAPES = { '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;', '\r': '&#13;' };
const ENTITIES = { lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' };

/// The root start tag of `text` (skipping an XML declaration, comments and
/// whitespace before it): its name, its attributes, and where their names sit
/// in `text`, so that they can be renamed keeping every other byte. Throws
/// (an `err` result: a handler error) if there is no well-formed start tag.
///
/// Sticky regular expressions do the scanning: the engine runs them natively,
/// much faster than a loop over characters in JavaScript.
function parseStartTag(text) {
  const fail = (why) => {
    throw `malformed start tag: ${why}`;
  };
  PROLOG.lastIndex = 0;
  PROLOG.test(text);
  NAME.lastIndex = PROLOG.lastIndex;
  const name = NAME.exec(text)?.[1];
  if (name === undefined) fail('not an element');
  const attrs = [];
  let at = NAME.lastIndex;
  for (;;) {
    ATTR.lastIndex = at;
    const m = ATTR.exec(text);
    if (m === null) break;
    const key = m[2];
    if (attrs.some((a) => a.key === key)) fail(`duplicate attribute ${key} in <${name}>`);
    attrs.push({ key, keyStart: at + m[1].length, value: unescapeValue(m[3] ?? m[4], fail) });
    at = ATTR.lastIndex;
  }
  END.lastIndex = at;
  if (!END.test(text)) fail(`bad attribute or end in <${name}>`);
  return {
    name,
    attr: (key) => attrs.find((a) => a.key === key)?.value,
    swapFromTo() {
      let out = '';
      let from = 0;
      for (const a of attrs) {
        const renamed = a.key === 'from' ? 'to' : a.key === 'to' ? 'from' : null;
        if (renamed !== null) {
          out += text.slice(from, a.keyStart) + renamed;
          from = a.keyStart + a.key.length;
        }
      }
      return out + text.slice(from);
    },
  };
}

// XML's white space is these four characters only (not JavaScript's \s).
const PROLOG = /(?:[ \t\r\n]+|<\?[^]*?\?>|<!--[^]*?-->)*/y;
const NAME = /<([^ \t\r\n/>='"<]+)/y;
const ATTR = /([ \t\r\n]*)([^ \t\r\n/>='"<]+)[ \t\r\n]*=[ \t\r\n]*(?:'([^'<]*)'|"([^"<]*)")/y;
const END = /[ \t\r\n]*\/?>/y;

const NEEDS_WORK = /[&\t\n\r]/;
const NEWLINES = /\r\n|[\t\n\r]/g;
const REFERENCES = /&([^;]*);|&/g;
const HEX_REFERENCE = /^#x[0-9a-fA-F]+$/;
const DECIMAL_REFERENCE = /^#[0-9]+$/;

/// An attribute value with references resolved and whitespace normalised.
function unescapeValue(raw, fail) {
  if (!NEEDS_WORK.test(raw)) return raw;
  return raw.replace(NEWLINES, ' ').replace(REFERENCES, (whole, ref) => {
    if (ref === undefined) fail('& without a reference');
    if (ref in ENTITIES) return ENTITIES[ref];
    const code = HEX_REFERENCE.test(ref)
      ? parseInt(ref.slice(2), 16)
      : DECIMAL_REFERENCE.test(ref)
        ? parseInt(ref.slice(1), 10)
        : NaN;
    if (!(code > 0 && code <= 0x10ffff) || (code >= 0xd800 && code <= 0xdfff)) {
      fail(`unknown reference &${ref};`);
    }
    return String.fromCodePoint(code);
  });
}

// Runs each kind of event once while the component is built: componentize-js
// snapshots the engine after this top level has run, so what the first call
// would otherwise do in every fresh instance (compiling the regular
// expressions, warming the engine's caches) is done once, in the snapshot.
{
  const conn = { module: { digest: '' } };
  let state = handle(conn, new Uint8Array(0), {
    tag: 'stream-open',
    val: "<stream:stream xmlns='jabber:client' to='a&amp;b\n' version='1.0'>",
  }).state;
  for (const stanza of ["<message xmlns='jabber:client' from='a' to='b'><body>x</body></message>", '<count/>']) {
    state = handle(conn, state, { tag: 'stanza', val: stanza }).state;
  }
  handle(conn, state, { tag: 'closed', val: 'stream-end' });
}
