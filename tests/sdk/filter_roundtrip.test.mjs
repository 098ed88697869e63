// Property test: pb.filter("t = {:v}", { v }) finds exactly the record whose text is v, for
// random strings full of quotes, backslashes, typed escape sequences, control chars, non-BMP
// chars, combining marks and line separators. SDK 0.28.1 writes strings with JSON.stringify, so
// this relies on Basalt decoding \b, \f and \uXXXX (a deliberate difference from PocketBase,
// which keeps those escapes as written and so cannot match text holding a control char).
//
// The seed is random unless FILTER_ROUNDTRIP_SEED is set; it is printed on failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { superuser, uniqueName, dropCollections } from './server.mjs';

const COLL = uniqueName('froundtrip');
const COUNT = 300;
const SEED = Number(process.env.FILTER_ROUNDTRIP_SEED || Math.floor(Math.random() * 2 ** 32));

let su;

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Pieces a string is built from. Sequences such as `\n` or `\u0041` are typed literally
// (a backslash and letters), to check they are not decoded twice.
const PIECES = [
  "'", '"', '\\', '\\\\', "\\'", '\\"', '\\n', '\\t', '\\r', '\\b', '\\f', '\\u0041', '\\u00e9',
  '\\uD83D\\uDE00', '\\uD83D', '\\u0000', '\\x41', '\\0', '\\', '{:v}', '//', '%', '_', ' ',
  '\t', '\n', '\r', '\r\n', '\u007f', '\u0085', '\u00a0', '\u2028', '\u2029', '\ufeff',
  '😀', '𝄞', '🇫🇷', '👩\u200d👩\u200d👧', 'e\u0301', '\u0300', '\u0336x', '日本', 'é',
];

function randomString(rnd) {
  const pick = (n) => Math.floor(rnd() * n);
  let s = '';
  const parts = pick(12);
  for (let i = 0; i < parts; i++) {
    const kind = pick(4);
    if (kind === 0) {
      s += String.fromCharCode(0x20 + pick(0x5f)); // printable ASCII
    } else if (kind === 1) {
      s += String.fromCharCode(1 + pick(0x1f)); // control chars U+0001..U+001F
    } else {
      s += PIECES[pick(PIECES.length)];
    }
  }
  return s;
}

/** COUNT distinct strings, plus a few fixed ones worth always covering. */
function strings(seed) {
  const rnd = prng(seed);
  const set = new Set(['', ' ', '\\', '"', "'", '\b\f\u0001\u001f', 'a\\"b', 'x\\']);
  while (set.size < COUNT) set.add(randomString(rnd));
  return [...set];
}

const describe = (s) => JSON.stringify(s);

before(async () => {
  su = await superuser();
  await su.collections.create({
    name: COLL,
    type: 'base',
    fields: [{ name: 't', type: 'text' }],
  });
});

after(async () => {
  await dropCollections(su, [COLL]);
});

test(`pb.filter round-trips random strings (seed ${SEED})`, async () => {
  const texts = strings(SEED);
  const ids = new Map();
  for (const t of texts) {
    const rec = await su.collection(COLL).create({ t });
    assert.equal(rec.t, t, `seed ${SEED}: stored text differs for ${describe(t)}`);
    ids.set(t, rec.id);
  }
  const failures = [];
  for (const t of texts) {
    const filter = su.filter('t = {:v}', { v: t });
    try {
      const found = await su.collection(COLL).getFirstListItem(filter);
      const all = await su.collection(COLL).getList(1, 2, { filter });
      if (found.id !== ids.get(t) || all.items.length !== 1) {
        failures.push(`${describe(t)} via ${describe(filter)}: found ${describe(found.t)}, ${all.items.length} match(es)`);
      }
    } catch (err) {
      failures.push(`${describe(t)} via ${describe(filter)}: HTTP ${err?.status} ${JSON.stringify(err?.response ?? String(err))}`);
    }
  }
  assert.equal(
    failures.length,
    0,
    `seed ${SEED} (rerun with FILTER_ROUNDTRIP_SEED=${SEED}): ${failures.length} of ${texts.length} strings failed:\n${failures.slice(0, 20).join('\n')}`,
  );
});
