// Shared helpers for the SDK end-to-end suite.
//
// The server itself is started by run.sh, which passes its address and the
// superuser credentials through the environment:
//   BASALT_URL          e.g. http://127.0.0.1:41234
//   BASALT_SU_EMAIL     superuser email (created with `BIN superuser upsert`)
//   BASALT_SU_PASSWORD  superuser password
//
// Every test file creates its own uniquely named collections, so all files can
// share one server instance.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import PocketBase from 'pocketbase';

export const URL = process.env.BASALT_URL;
export const SU_EMAIL = process.env.BASALT_SU_EMAIL;
export const SU_PASSWORD = process.env.BASALT_SU_PASSWORD;

if (!URL || !SU_EMAIL || !SU_PASSWORD) {
  throw new Error(
    'BASALT_URL, BASALT_SU_EMAIL and BASALT_SU_PASSWORD must be set; run the suite with tests/sdk/run.sh BINARY',
  );
}

/** A fresh guest client (no auth), with auto-cancellation disabled. */
export function client() {
  const pb = new PocketBase(URL);
  pb.autoCancellation(false);
  return pb;
}

/** A fresh client authenticated as the suite's superuser. */
export async function superuser() {
  const pb = client();
  await pb.collection('_superusers').authWithPassword(SU_EMAIL, SU_PASSWORD);
  return pb;
}

/** A client authenticated as the given auth record (default collection `users`). */
export async function loginAs(email, password, collection = 'users') {
  const pb = client();
  await pb.collection(collection).authWithPassword(email, password);
  return pb;
}

/** A fresh client sharing `pb`'s current token and record (for per-client hooks). */
export function sameAuth(pb) {
  const copy = client();
  copy.authStore.save(pb.authStore.token, pb.authStore.record);
  return copy;
}

/** A short random lowercase token, safe inside collection names and emails. */
export function rand(n = 6) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(n);
  let s = '';
  for (const b of bytes) s += alphabet[b % alphabet.length];
  return s;
}

/** A unique collection name with a readable prefix, e.g. `posts_k3j9x2`. */
export function uniqueName(prefix) {
  return `${prefix}_${rand(8)}`;
}

/** A unique email address. */
export function uniqueEmail(prefix = 'user') {
  return `${prefix}_${rand(10)}@example.com`;
}

/** A random valid 15-char record id. */
export function recordId() {
  return rand(15);
}

/**
 * Awaits `promise`, expecting it to reject with a ClientResponseError of the
 * given HTTP status. Returns the error so callers can inspect `err.response`.
 */
export async function expectStatus(promise, status, what = 'request') {
  let result;
  try {
    result = await promise;
  } catch (err) {
    assert.equal(
      err?.status,
      status,
      `${what}: expected HTTP ${status}, got ${err?.status}: ${JSON.stringify(err?.response ?? String(err))}`,
    );
    return err;
  }
  assert.fail(`${what}: expected HTTP ${status}, but it succeeded with ${JSON.stringify(result)}`);
}

/**
 * Expects a 400 validation error whose `data[field].code` equals `code`.
 * Returns the error.
 */
export async function expectValidation(promise, field, code, what = 'request') {
  const err = await expectStatus(promise, 400, what);
  const data = err.response?.data ?? {};
  assert.equal(
    data[field]?.code,
    code,
    `${what}: expected data.${field}.code = ${code}, got ${JSON.stringify(err.response)}`,
  );
  return err;
}

/**
 * Attaches an afterSend hook that records the HTTP status of every response,
 * so tests can assert exact success codes (e.g. 204 on delete).
 * Returns a function giving the last seen status.
 */
export function trackStatus(pb) {
  let last = null;
  const prev = pb.afterSend;
  pb.afterSend = (response, data, options) => {
    last = response.status;
    return prev ? prev(response, data, options) : data;
  };
  return () => last;
}

/** Returns the named field of a collection model (throws if missing). */
export function field(collection, name) {
  const f = collection.fields.find((x) => x.name === name);
  assert.ok(f, `collection ${collection.name} has no field ${name}`);
  return f;
}

/** Sorted copy of the `key` values of `items` (for order-independent comparisons). */
export function sortedValues(items, key = 'title') {
  return items.map((x) => x[key]).sort();
}

/** Creates a user in the default `users` collection (as guest, createRule is ""). */
export async function createUser(pb, { email = uniqueEmail(), password = 'password123', ...rest } = {}) {
  const record = await pb.collection('users').create({
    email,
    password,
    passwordConfirm: password,
    ...rest,
  });
  return { record, email, password };
}

/** Best-effort deletion of collections created by a test file (ignores errors). */
export async function dropCollections(pb, names) {
  for (const name of names) {
    try {
      await pb.collections.delete(name);
    } catch {
      // already gone or still referenced; the server's temp dir is removed anyway
    }
  }
}
