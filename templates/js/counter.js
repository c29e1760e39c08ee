// counter.js: answers each stanza with <ok n='N'/>, N counting the stanzas
// of the connection so far. The state is the JSON {"n":N}, as the Rust, C
// and Python counters keep it: the handler can be swapped for one of them
// under a live connection.
export function handle(conn, state, event) {
  let n = 0;
  if (state.length > 0) {
    // A throw returns the `error` case: a fault.
    n = JSON.parse(new TextDecoder().decode(state)).n;
    if (!Number.isSafeInteger(n) || n < 0) throw new Error('bad state');
  }
  const actions = [];
  if (event.tag === 'stanza') {
    n += 1;
    actions.push({ tag: 'send', val: `<ok n='${n}'/>` });
  }
  return { state: new TextEncoder().encode(JSON.stringify({ n })), actions };
}
