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
const decoder = new TextDecoder();

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
    // routed, undeliverable, bind-refused, timer: nothing to do.
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
  return text.replace(/[<>&'"\r]/g, (c) => ESCAPES[c]);
}

const ESCAPES = { '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;', '\r': '&#13;' };
const ENTITIES = { lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' };

/// The root start tag of `text` (skipping an XML declaration, comments and
/// whitespace before it): its name, its attributes, and where their names sit
/// in `text`, so that they can be renamed keeping every other byte. Throws
/// (an `err` result: a handler error) if there is no well-formed start tag.
function parseStartTag(text) {
  let at = 0;
  const fail = (why) => {
    throw `malformed start tag: ${why}`;
  };
  const skipSpace = () => {
    while (at < text.length && ' \t\r\n'.includes(text[at])) at++;
  };
  const skipPast = (end) => {
    const found = text.indexOf(end, at);
    if (found < 0) fail(`unterminated ${text.slice(at, at + 4)}`);
    at = found + end.length;
  };
  for (;;) {
    skipSpace();
    if (text.startsWith('<?', at)) skipPast('?>');
    else if (text.startsWith('<!--', at)) skipPast('-->');
    else break;
  }
  if (text[at] !== '<') fail('not an element');
  const isNameChar = (c) => c !== undefined && !' \t\r\n/>=\'"<'.includes(c);
  const nameStart = ++at;
  while (isNameChar(text[at])) at++;
  if (at === nameStart) fail('no element name');
  const name = text.slice(nameStart, at);
  const attrs = [];
  for (;;) {
    const before = at;
    skipSpace();
    if (text.startsWith('/>', at) || text[at] === '>') break;
    if (at === before) fail(`missing whitespace in <${name}>`);
    const keyStart = at;
    while (isNameChar(text[at])) at++;
    const key = text.slice(keyStart, at);
    if (key === '') fail(`bad attribute in <${name}>`);
    skipSpace();
    if (text[at] !== '=') fail(`attribute ${key} in <${name}> has no value`);
    at++;
    skipSpace();
    const quote = text[at];
    if (quote !== "'" && quote !== '"') fail(`attribute ${key} in <${name}> is not quoted`);
    const end = text.indexOf(quote, at + 1);
    if (end < 0) fail(`unterminated attribute ${key} in <${name}>`);
    if (attrs.some((a) => a.key === key)) fail(`duplicate attribute ${key} in <${name}>`);
    attrs.push({ key, keyStart, value: unescapeValue(text.slice(at + 1, end), fail) });
    at = end + 1;
  }
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

/// An attribute value with references resolved and whitespace normalised.
function unescapeValue(raw, fail) {
  if (raw.includes('<')) fail('< in an attribute value');
  return raw.replace(/\r\n|[\t\n\r]/g, ' ').replace(/&([^;]*);|&/g, (whole, ref) => {
    if (ref === undefined) fail('& without a reference');
    if (ref in ENTITIES) return ENTITIES[ref];
    const code = /^#x[0-9a-fA-F]+$/.test(ref)
      ? parseInt(ref.slice(2), 16)
      : /^#[0-9]+$/.test(ref)
        ? parseInt(ref.slice(1), 10)
        : NaN;
    if (!(code > 0 && code <= 0x10ffff) || (code >= 0xd800 && code <= 0xdfff)) {
      fail(`unknown reference &${ref};`);
    }
    return String.fromCodePoint(code);
  });
}
