// counter.c: answers each stanza with <ok n='N'/>, N counting the stanzas of
// the connection so far. The state is the JSON {"n":N}, as the Rust,
// JavaScript and Python counters keep it: the handler can be swapped for one
// of them under a live connection.
//
// Only libc's memory and string functions are used (no stdio), so the core
// module imports nothing from WASI and needs no adapter to be a component.
#include <stdlib.h>
#include <string.h>

#include "handler.h"

// Reads {"n":N} (exactly as the four counters write it) into *n.
static bool read_state(const handler_list_u8_t *state, unsigned long long *n) {
  static const char open[] = "{\"n\":";
  const size_t len = sizeof open - 1;
  *n = 0;
  if (state->len == 0) return true;  // a new connection
  if (state->len < len + 2 || memcmp(state->ptr, open, len) != 0 ||
      state->ptr[state->len - 1] != '}')
    return false;
  for (size_t i = len; i < state->len - 1; i++) {
    if (state->ptr[i] < '0' || state->ptr[i] > '9') return false;
    *n = *n * 10 + (state->ptr[i] - '0');
  }
  return true;
}

// Writes `prefix`, N in decimal, and `suffix` into a new string. What
// `handle` returns is freed by the host with free(): it is malloc'd.
static handler_string_t with_number(const char *prefix, unsigned long long n,
                                    const char *suffix) {
  char digits[20];
  size_t count = 0;
  do {
    digits[count++] = (char)('0' + n % 10);
    n /= 10;
  } while (n > 0);
  size_t before = strlen(prefix), after = strlen(suffix);
  uint8_t *text = malloc(before + count + after);
  memcpy(text, prefix, before);
  for (size_t i = 0; i < count; i++) text[before + i] = digits[count - 1 - i];
  memcpy(text + before + count, suffix, after);
  return (handler_string_t){.ptr = text, .len = before + count + after};
}

bool exports_handler_handle(handler_connection_t *conn, handler_list_u8_t *state,
                            handler_event_t *event, handler_outcome_t *ret,
                            handler_string_t *err) {
  (void)conn;
  unsigned long long n;
  if (!read_state(state, &n)) {
    handler_string_dup(err, "bad state");  // an error is a fault
    return false;
  }
  memset(ret, 0, sizeof *ret);
  if (event->tag == EJ_HANDLER_TYPES_EVENT_STANZA) {
    n++;
    ret->actions.ptr = malloc(sizeof *ret->actions.ptr);
    ret->actions.len = 1;
    ret->actions.ptr[0].tag = EJ_HANDLER_TYPES_ACTION_SEND;
    ret->actions.ptr[0].val.send = with_number("<ok n='", n, "'/>");
  }
  handler_string_t json = with_number("{\"n\":", n, "}");
  ret->state.ptr = json.ptr;
  ret->state.len = json.len;
  return true;
}
