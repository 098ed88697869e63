// Realtime through the SDK (`subscribe`/`unsubscribe` over an EventSource shim): events for
// creates, updates and deletes, record topics, options (`fields`, `filter`, `expand`) and
// rules per subscriber.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from './eventsource.mjs';
import { client, superuser, uniqueName, createUser, loginAs, dropCollections } from './server.mjs';

globalThis.EventSource = EventSource;

const POSTS = uniqueName('rtposts');
const OWNED = uniqueName('rtowned');
let su;

/** Collects events; `next()` waits for the next one (or fails after 5 s). */
function inbox() {
  const items = [];
  const waiters = [];
  return {
    push(e) {
      const w = waiters.shift();
      if (w) w(e);
      else items.push(e);
    },
    next(ms = 5000) {
      if (items.length) return Promise.resolve(items.shift());
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no event within ' + ms + ' ms')), ms);
        waiters.push((e) => {
          clearTimeout(t);
          resolve(e);
        });
      });
    },
    get pending() {
      return items.length;
    },
  };
}

before(async () => {
  su = await superuser();
  await su.collections.create({
    name: POSTS,
    type: 'base',
    listRule: '',
    viewRule: '',
    createRule: '',
    updateRule: '',
    deleteRule: '',
    fields: [
      { name: 'title', type: 'text' },
      { name: 'author', type: 'relation', collectionId: '_pb_users_auth_', maxSelect: 1 },
    ],
  });
  await su.collections.create({
    name: OWNED,
    type: 'base',
    createRule: '',
    listRule: 'author = @request.auth.id',
    viewRule: 'author = @request.auth.id',
    fields: [
      { name: 'title', type: 'text' },
      { name: 'author', type: 'relation', collectionId: '_pb_users_auth_', maxSelect: 1 },
    ],
  });
});

after(async () => {
  await dropCollections(su, [OWNED, POSTS]);
});

test('subscribe, options, record topics, unsubscribe', async () => {
  const guest = client();
  const all = inbox();
  const picked = inbox();
  const wanted = inbox();
  await guest.collection(POSTS).subscribe('*', (e) => all.push(e));
  await guest.collection(POSTS).subscribe('*', (e) => picked.push(e), { fields: 'id,title' });
  await guest.collection(POSTS).subscribe('*', (e) => wanted.push(e), { filter: "title = 'wanted'" });

  const rec = await su.collection(POSTS).create({ title: 'hello' });
  let e = await all.next();
  assert.equal(e.action, 'create');
  assert.equal(e.record.id, rec.id);
  assert.equal(e.record.collectionName, POSTS);
  e = await picked.next();
  assert.deepEqual(Object.keys(e.record).sort(), ['id', 'title']);

  const one = inbox();
  await guest.collection(POSTS).subscribe(rec.id, (e) => one.push(e));
  await su.collection(POSTS).update(rec.id, { title: 'wanted' });
  assert.equal((await one.next()).action, 'update');
  assert.equal((await wanted.next()).record.title, 'wanted');
  assert.equal((await all.next()).action, 'update');
  await picked.next();
  assert.equal(wanted.pending, 0, 'the filter held the create back');

  await su.collection(POSTS).delete(rec.id);
  e = await one.next();
  assert.equal(e.action, 'delete');
  assert.equal(e.record.title, 'wanted');
  assert.equal((await all.next()).action, 'delete');
  assert.equal((await picked.next()).action, 'delete');
  assert.equal((await wanted.next()).action, 'delete', 'the filter is checked on the deleted row');

  await guest.collection(POSTS).unsubscribe();
  await su.collection(POSTS).create({ title: 'after' });
  await assert.rejects(all.next(300), /no event/);
  guest.realtime.unsubscribe();
});

test('rules decide per subscriber', async () => {
  const { record: alice, email: aliceEmail, password } = await createUser(su);
  const { email: bobEmail, password: bobPassword } = await createUser(su);
  const aliceClient = await loginAs(aliceEmail, password);
  const bobClient = await loginAs(bobEmail, bobPassword);
  const guest = client();
  const seen = { alice: inbox(), bob: inbox(), guest: inbox(), su: inbox() };
  await aliceClient.collection(OWNED).subscribe('*', (e) => seen.alice.push(e));
  await bobClient.collection(OWNED).subscribe('*', (e) => seen.bob.push(e));
  await guest.collection(OWNED).subscribe('*', (e) => seen.guest.push(e));
  await su.collection(OWNED).subscribe('*', (e) => seen.su.push(e));

  const rec = await su.collection(OWNED).create({ title: 'for alice', author: alice.id });
  assert.equal((await seen.alice.next()).record.id, rec.id);
  assert.equal((await seen.su.next()).record.id, rec.id);
  await assert.rejects(seen.bob.next(300), /no event/);
  await assert.rejects(seen.guest.next(300), /no event/);
  for (const c of [aliceClient, bobClient, guest, su]) c.realtime.unsubscribe();
});
