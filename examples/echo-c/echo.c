// Echo, in C: the same handler as examples/echo (Rust), built into a component
// with wit-bindgen's C generator, clang and wasm-tools (`cargo xtask guests`,
// see docs/handlers.md).
//
// Each stanza is echoed with its `from` and `to` attributes swapped (a stanza
// with neither is echoed unchanged), except two questions: `<count/>` gets
// `<count n='N'/>` back, N being the number of stanzas so far, this one
// included; `<module/>` gets `<module n='N' digest='D'/>`, D being the digest
// of the module build that answered. The stream header is answered with one of
// our own, and the peer's end of stream with ours.
//
// The state carried between events is the Rust echo's, as the same JSON:
// `{"stanzas":N,"domain":"…"}`.
//
// Memory: every event runs in a fresh instance, so nothing is freed here; the
// host frees what `handle` returns (through the generated post-return
// function, with `free`), so all of that is allocated with `malloc`. Only
// libc's memory and string functions are used: no WASI import is needed.

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handler.h"

// A growable byte buffer, for building replies and state.
typedef struct {
  uint8_t *ptr;
  size_t len, cap;
} buf_t;

static void buf_reserve(buf_t *b, size_t more) {
  if (b->len + more <= b->cap) return;
  size_t cap = b->cap ? b->cap * 2 : 64;
  while (cap < b->len + more) cap *= 2;
  b->ptr = realloc(b->ptr, cap);
  if (!b->ptr) abort();
  b->cap = cap;
}

static void buf_add(buf_t *b, const void *data, size_t len) {
  buf_reserve(b, len);
  memcpy(b->ptr + b->len, data, len);
  b->len += len;
}

static void buf_str(buf_t *b, const char *s) { buf_add(b, s, strlen(s)); }

static void buf_byte(buf_t *b, uint8_t c) { buf_add(b, &c, 1); }

static void buf_u64(buf_t *b, uint64_t n) {
  char digits[20];
  size_t i = sizeof digits;
  do {
    digits[--i] = (char)('0' + n % 10);
    n /= 10;
  } while (n);
  buf_add(b, digits + i, sizeof digits - i);
}

static void buf_utf8(buf_t *b, uint32_t c) {
  if (c < 0x80) {
    buf_byte(b, (uint8_t)c);
  } else if (c < 0x800) {
    buf_byte(b, (uint8_t)(0xc0 | c >> 6));
    buf_byte(b, (uint8_t)(0x80 | (c & 0x3f)));
  } else if (c < 0x10000) {
    buf_byte(b, (uint8_t)(0xe0 | c >> 12));
    buf_byte(b, (uint8_t)(0x80 | (c >> 6 & 0x3f)));
    buf_byte(b, (uint8_t)(0x80 | (c & 0x3f)));
  } else {
    buf_byte(b, (uint8_t)(0xf0 | c >> 18));
    buf_byte(b, (uint8_t)(0x80 | (c >> 12 & 0x3f)));
    buf_byte(b, (uint8_t)(0x80 | (c >> 6 & 0x3f)));
    buf_byte(b, (uint8_t)(0x80 | (c & 0x3f)));
  }
}

// Escapes text for XML text or an attribute value in either kind of quotes.
static void buf_escaped(buf_t *b, const uint8_t *s, size_t len) {
  for (size_t i = 0; i < len; i++) {
    switch (s[i]) {
      case '<': buf_str(b, "&lt;"); break;
      case '>': buf_str(b, "&gt;"); break;
      case '&': buf_str(b, "&amp;"); break;
      case '\'': buf_str(b, "&apos;"); break;
      case '"': buf_str(b, "&quot;"); break;
      case '\r': buf_str(b, "&#13;"); break;
      default: buf_byte(b, s[i]);
    }
  }
}

// A handler error: `handle` returns it as the `err` case, which the host
// treats as a fault.
typedef struct {
  const char *message;
} echo_error_t;

static bool fail(echo_error_t *error, const char *message) {
  error->message = message;
  return false;
}

// ---------------------------------------------------------------- the state

typedef struct {
  uint64_t stanzas;
  buf_t domain;
} echo_t;

typedef struct {
  const uint8_t *at, *end;
} cursor_t;

static void json_space(cursor_t *c) {
  while (c->at < c->end && (*c->at == ' ' || *c->at == '\t' || *c->at == '\n' || *c->at == '\r')) c->at++;
}

static bool json_eat(cursor_t *c, uint8_t byte) {
  json_space(c);
  if (c->at < c->end && *c->at == byte) {
    c->at++;
    return true;
  }
  return false;
}

static int hex_digit(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool json_hex4(cursor_t *c, uint32_t *out) {
  if (c->end - c->at < 4) return false;
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    int d = hex_digit(*c->at++);
    if (d < 0) return false;
    v = v << 4 | (uint32_t)d;
  }
  *out = v;
  return true;
}

// A JSON string, unescaped into `out` (which may be NULL to skip it).
static bool json_string(cursor_t *c, buf_t *out) {
  if (!json_eat(c, '"')) return false;
  while (c->at < c->end) {
    uint8_t byte = *c->at++;
    if (byte == '"') return true;
    if (byte < 0x20) return false;
    if (byte != '\\') {
      if (out) buf_byte(out, byte);
      continue;
    }
    if (c->at == c->end) return false;
    uint8_t esc = *c->at++;
    uint32_t code;
    switch (esc) {
      case '"': case '\\': case '/': code = esc; break;
      case 'b': code = '\b'; break;
      case 'f': code = '\f'; break;
      case 'n': code = '\n'; break;
      case 'r': code = '\r'; break;
      case 't': code = '\t'; break;
      case 'u': {
        if (!json_hex4(c, &code)) return false;
        if (code >= 0xd800 && code < 0xdc00) {
          uint32_t low;
          if (c->end - c->at < 6 || c->at[0] != '\\' || c->at[1] != 'u') return false;
          c->at += 2;
          if (!json_hex4(c, &low) || low < 0xdc00 || low > 0xdfff) return false;
          code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
        } else if (code >= 0xdc00 && code <= 0xdfff) {
          return false;
        }
        break;
      }
      default: return false;
    }
    if (out) buf_utf8(out, code);
  }
  return false;
}

static bool json_u64(cursor_t *c, uint64_t *out) {
  json_space(c);
  if (c->at == c->end || *c->at < '0' || *c->at > '9') return false;
  uint64_t v = 0;
  while (c->at < c->end && *c->at >= '0' && *c->at <= '9') {
    uint64_t digit = (uint64_t)(*c->at++ - '0');
    if (v > (UINT64_MAX - digit) / 10) return false;
    v = v * 10 + digit;
  }
  *out = v;
  return true;
}

// Skips any JSON value: for fields this handler does not know.
static bool json_skip(cursor_t *c, int depth) {
  json_space(c);
  if (c->at == c->end || depth > 64) return false;
  uint8_t first = *c->at;
  if (first == '"') return json_string(c, NULL);
  if (first == '{' || first == '[') {
    uint8_t close = first == '{' ? '}' : ']';
    c->at++;
    if (json_eat(c, close)) return true;
    do {
      if (first == '{' && !(json_string(c, NULL) && json_eat(c, ':'))) return false;
      if (!json_skip(c, depth + 1)) return false;
    } while (json_eat(c, ','));
    return json_eat(c, close);
  }
  // A number, true, false or null.
  const uint8_t *start = c->at;
  while (c->at < c->end && strchr("+-.0123456789eEtruefalsn", *c->at)) c->at++;
  return c->at > start;
}

// Decodes the state the previous event left: empty for a new connection.
static bool decode(const handler_list_u8_t *state, echo_t *echo, echo_error_t *error) {
  memset(echo, 0, sizeof *echo);
  if (state->len == 0) return true;
  cursor_t c = {state->ptr, state->ptr + state->len};
  bool stanzas = false, domain = false;
  if (!json_eat(&c, '{')) return fail(error, "decoding state: expected an object");
  if (!json_eat(&c, '}')) {
    do {
      buf_t key = {0};
      if (!json_string(&c, &key) || !json_eat(&c, ':')) return fail(error, "decoding state: bad key");
      if (key.len == 7 && !memcmp(key.ptr, "stanzas", 7)) {
        if (!json_u64(&c, &echo->stanzas)) return fail(error, "decoding state: bad stanzas");
        stanzas = true;
      } else if (key.len == 6 && !memcmp(key.ptr, "domain", 6)) {
        echo->domain.len = 0;
        if (!json_string(&c, &echo->domain)) return fail(error, "decoding state: bad domain");
        domain = true;
      } else if (!json_skip(&c, 0)) {
        return fail(error, "decoding state: bad value");
      }
    } while (json_eat(&c, ','));
    if (!json_eat(&c, '}')) return fail(error, "decoding state: expected }");
  }
  json_space(&c);
  if (c.at != c.end) return fail(error, "decoding state: trailing bytes");
  if (!stanzas || !domain) return fail(error, "decoding state: missing field");
  return true;
}

// Encodes the state as the Rust echo does (serde_json): same keys, same
// order, same escapes.
static void encode(const echo_t *echo, handler_list_u8_t *out) {
  buf_t b = {0};
  buf_str(&b, "{\"stanzas\":");
  buf_u64(&b, echo->stanzas);
  buf_str(&b, ",\"domain\":\"");
  for (size_t i = 0; i < echo->domain.len; i++) {
    uint8_t byte = echo->domain.ptr[i];
    switch (byte) {
      case '"': buf_str(&b, "\\\""); break;
      case '\\': buf_str(&b, "\\\\"); break;
      case '\b': buf_str(&b, "\\b"); break;
      case '\f': buf_str(&b, "\\f"); break;
      case '\n': buf_str(&b, "\\n"); break;
      case '\r': buf_str(&b, "\\r"); break;
      case '\t': buf_str(&b, "\\t"); break;
      default:
        if (byte < 0x20) {
          buf_str(&b, "\\u00");
          buf_byte(&b, (uint8_t)"0123456789abcdef"[byte >> 4]);
          buf_byte(&b, (uint8_t)"0123456789abcdef"[byte & 15]);
        } else {
          buf_byte(&b, byte);
        }
    }
  }
  buf_str(&b, "\"}");
  out->ptr = b.ptr;
  out->len = b.len;
}

// ------------------------------------------------------- the root start tag

typedef struct {
  size_t key_start, key_len, value_start, value_len;
} attr_t;

// The root start tag of a stanza or stream header: its name and attributes,
// as positions in the text, so that attributes can be renamed keeping every
// other byte.
typedef struct {
  const uint8_t *text;
  size_t len;
  size_t name_start, name_len;
  attr_t *attrs;
  size_t n_attrs;
} tag_t;

static bool is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static bool is_name(uint8_t c) { return !is_space(c) && !strchr("/>='\"<", c) && c != 0; }

static bool starts_with(const tag_t *t, size_t at, const char *prefix) {
  size_t n = strlen(prefix);
  return at + n <= t->len && !memcmp(t->text + at, prefix, n);
}

static bool same(const tag_t *t, size_t start, size_t len, const char *s) {
  return strlen(s) == len && !memcmp(t->text + start, s, len);
}

// Resolves the references of a raw attribute value and normalises its
// whitespace (as an XML parser does) into `out`, which may be NULL to only
// check it.
static bool unescape(const uint8_t *raw, size_t len, buf_t *out, echo_error_t *error) {
  for (size_t i = 0; i < len; i++) {
    uint8_t c = raw[i];
    if (c == '<') return fail(error, "malformed start tag: < in an attribute value");
    if (c == '\r' && i + 1 < len && raw[i + 1] == '\n') i++;
    if (is_space(c)) {
      if (out) buf_byte(out, ' ');
      continue;
    }
    if (c != '&') {
      if (out) buf_byte(out, c);
      continue;
    }
    size_t semi = i + 1;
    while (semi < len && raw[semi] != ';' && raw[semi] != '&') semi++;
    if (semi == len || raw[semi] != ';') return fail(error, "malformed start tag: & without a reference");
    const uint8_t *ref = raw + i + 1;
    size_t ref_len = semi - i - 1;
    static const char *const names[] = {"lt", "gt", "amp", "apos", "quot"};
    static const char chars[] = "<>&'\"";
    uint32_t code = 0;
    bool known = false;
    for (int k = 0; k < 5; k++) {
      if (strlen(names[k]) == ref_len && !memcmp(ref, names[k], ref_len)) {
        code = (uint8_t)chars[k];
        known = true;
      }
    }
    if (!known && ref_len >= 2 && ref[0] == '#') {
      bool hex = ref[1] == 'x';
      size_t digits = hex ? 2 : 1;
      known = ref_len > digits;
      for (size_t d = digits; d < ref_len && known; d++) {
        int v = hex ? hex_digit(ref[d]) : (ref[d] >= '0' && ref[d] <= '9' ? ref[d] - '0' : -1);
        if (v < 0 || code > 0x10ffff) known = false;
        else code = code * (hex ? 16 : 10) + (uint32_t)v;
      }
      if (code == 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) known = false;
    }
    if (!known) return fail(error, "malformed start tag: unknown reference");
    if (out) buf_utf8(out, code);
    i = semi;
  }
  return true;
}

// Parses the first start tag of `text`, skipping an XML declaration,
// comments and whitespace before it.
static bool parse_tag(const handler_string_t *text, tag_t *t, echo_error_t *error) {
  memset(t, 0, sizeof *t);
  t->text = text->ptr;
  t->len = text->len;
  size_t at = 0;
  for (;;) {
    while (at < t->len && is_space(t->text[at])) at++;
    const char *close = starts_with(t, at, "<?") ? "?>" : starts_with(t, at, "<!--") ? "-->" : NULL;
    if (!close) break;
    size_t n = strlen(close);
    at += 2;
    while (at < t->len && !starts_with(t, at, close)) at++;
    if (at == t->len) return fail(error, "malformed start tag: unterminated declaration or comment");
    at += n;
  }
  if (!starts_with(t, at, "<")) return fail(error, "malformed start tag: not an element");
  t->name_start = ++at;
  while (at < t->len && is_name(t->text[at])) at++;
  t->name_len = at - t->name_start;
  if (t->name_len == 0) return fail(error, "malformed start tag: no element name");
  size_t cap = 0;
  for (;;) {
    while (at < t->len && is_space(t->text[at])) at++;
    if (starts_with(t, at, "/>") || starts_with(t, at, ">")) return true;
    if (at == t->len) return fail(error, "malformed start tag: unterminated");
    attr_t a = {.key_start = at};
    while (at < t->len && is_name(t->text[at])) at++;
    a.key_len = at - a.key_start;
    if (a.key_len == 0) return fail(error, "malformed start tag: bad attribute");
    while (at < t->len && is_space(t->text[at])) at++;
    if (!starts_with(t, at, "=")) return fail(error, "malformed start tag: attribute without a value");
    at++;
    while (at < t->len && is_space(t->text[at])) at++;
    if (at == t->len || (t->text[at] != '\'' && t->text[at] != '"')) {
      return fail(error, "malformed start tag: unquoted attribute value");
    }
    uint8_t quote = t->text[at++];
    a.value_start = at;
    while (at < t->len && t->text[at] != quote) at++;
    if (at == t->len) return fail(error, "malformed start tag: unterminated attribute value");
    a.value_len = at++ - a.value_start;
    for (size_t i = 0; i < t->n_attrs; i++) {
      const attr_t *b = &t->attrs[i];
      if (b->key_len == a.key_len && !memcmp(t->text + b->key_start, t->text + a.key_start, a.key_len)) {
        return fail(error, "malformed start tag: duplicate attribute");
      }
    }
    if (!unescape(t->text + a.value_start, a.value_len, NULL, error)) return false;
    if (t->n_attrs == cap) {
      cap = cap ? cap * 2 : 8;
      t->attrs = realloc(t->attrs, cap * sizeof *t->attrs);
      if (!t->attrs) abort();
    }
    t->attrs[t->n_attrs++] = a;
  }
}

static const attr_t *find_attr(const tag_t *t, const char *key) {
  for (size_t i = 0; i < t->n_attrs; i++) {
    if (same(t, t->attrs[i].key_start, t->attrs[i].key_len, key)) return &t->attrs[i];
  }
  return NULL;
}

// The text with the root tag's `from` and `to` attributes renamed to each
// other: every other byte stays as it was.
static void swap_from_to(const tag_t *t, buf_t *out) {
  size_t done = 0;
  for (size_t i = 0; i < t->n_attrs; i++) {
    const attr_t *a = &t->attrs[i];
    const char *renamed = same(t, a->key_start, a->key_len, "from") ? "to"
                          : same(t, a->key_start, a->key_len, "to") ? "from"
                                                                    : NULL;
    if (!renamed) continue;
    buf_add(out, t->text + done, a->key_start - done);
    buf_str(out, renamed);
    done = a->key_start + a->key_len;
  }
  buf_add(out, t->text + done, t->len - done);
}

// ------------------------------------------------------------- the handler

static void add_send(ej_handler_types_list_action_t *actions, buf_t *text) {
  actions->ptr = realloc(actions->ptr, (actions->len + 1) * sizeof *actions->ptr);
  if (!actions->ptr) abort();
  ej_handler_types_action_t *action = &actions->ptr[actions->len++];
  action->tag = EJ_HANDLER_TYPES_ACTION_SEND;
  action->val.send.ptr = text->ptr;
  action->val.send.len = text->len;
}

static bool handle(const handler_connection_t *conn, echo_t *echo, const handler_event_t *event,
                   ej_handler_types_list_action_t *actions, echo_error_t *error) {
  tag_t tag;
  buf_t reply = {0};
  switch (event->tag) {
    case EJ_HANDLER_TYPES_EVENT_STREAM_OPEN: {
      if (!parse_tag(&event->val.stream_open, &tag, error)) return false;
      echo->domain.len = 0;
      const attr_t *to = find_attr(&tag, "to");
      if (to && !unescape(tag.text + to->value_start, to->value_len, &echo->domain, error)) return false;
      buf_str(&reply,
              "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
              "xmlns:stream='http://etherx.jabber.org/streams' from='");
      buf_escaped(&reply, echo->domain.ptr, echo->domain.len);
      buf_str(&reply, "' version='1.0'>");
      add_send(actions, &reply);
      return true;
    }
    case EJ_HANDLER_TYPES_EVENT_STANZA: {
      echo->stanzas++;
      if (!parse_tag(&event->val.stanza, &tag, error)) return false;
      if (same(&tag, tag.name_start, tag.name_len, "count")) {
        buf_str(&reply, "<count n='");
        buf_u64(&reply, echo->stanzas);
        buf_str(&reply, "'/>");
      } else if (same(&tag, tag.name_start, tag.name_len, "module")) {
        buf_str(&reply, "<module n='");
        buf_u64(&reply, echo->stanzas);
        buf_str(&reply, "' digest='");
        buf_add(&reply, conn->module.digest.ptr, conn->module.digest.len);
        buf_str(&reply, "'/>");
      } else {
        swap_from_to(&tag, &reply);
      }
      add_send(actions, &reply);
      return true;
    }
    case EJ_HANDLER_TYPES_EVENT_CLOSED:
      if (event->val.closed == EJ_HANDLER_TYPES_CLOSE_REASON_STREAM_END) {
        buf_str(&reply, "</stream:stream>");
        add_send(actions, &reply);
      }
      return true;
    default:
      // routed, undeliverable, busy, bind-refused, timer, timer-refused, detached,
      // took-over: nothing to do.
      return true;
  }
}

// The one export of the `handler` world.
bool exports_handler_handle(handler_connection_t *conn, handler_list_u8_t *state, handler_event_t *event,
                            handler_outcome_t *ret, handler_string_t *err) {
  echo_t echo;
  echo_error_t error = {0};
  memset(ret, 0, sizeof *ret);
  if (!decode(state, &echo, &error) || !handle(conn, &echo, event, &ret->actions, &error)) {
    handler_string_dup(err, error.message);
    return false;
  }
  encode(&echo, &ret->state);
  return true;
}
