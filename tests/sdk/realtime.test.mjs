// Realtime through the SDK (`subscribe`/`unsubscribe` over an EventSource shim): events for
// creates, updates and deletes, record topics, options (`fields`, `filter`, `expand`) and
// rules per subscriber.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import PocketBase from 'pocketbase';
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
        const waiter = (e) => {
          clearTimeout(t);
          resolve(e);
        };
        const t = setTimeout(() => {
          // A timed-out wait must not swallow the next event.
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error('no event within ' + ms + ' ms'));
        }, ms);
        waiters.push(waiter);
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

/** Starts `BASALT_BIN serve` on `port` with `dir`; resolves once /api/health answers. */
async function startServer(port, dir, extra = []) {
  const args = ['serve', '--http', `127.0.0.1:${port}`, '--dir', dir, ...extra];
  const proc = spawn(process.env.BASALT_BIN, args, { stdio: 'ignore' });
  const deadline = Date.now() + 30000;
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/api/health`);
      if (res.status === 200) return proc;
    } catch {}
    if (Date.now() > deadline) throw new Error('server not ready');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stopServer(proc) {
  const done = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  await done;
}

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

test('the SDK reconnects and resubscribes after a server restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'basalt-rt-'));
  const port = await freePort();
  execFileSync(process.env.BASALT_BIN, ['superuser', 'upsert', 'rt@example.com', 'password-1234567', '--dir', dir]);
  let proc = await startServer(port, dir);
  try {
    const url = `http://127.0.0.1:${port}`;
    const admin = new PocketBase(url);
    await admin.collection('_superusers').authWithPassword('rt@example.com', 'password-1234567');
    await admin.collections.create({
      name: 'notes',
      type: 'base',
      listRule: '',
      createRule: '',
      fields: [{ name: 'title', type: 'text' }],
    });
    const pb = new PocketBase(url);
    const got = inbox();
    let disconnects = 0;
    pb.realtime.onDisconnect = () => disconnects++;
    await pb.collection('notes').subscribe('*', (e) => got.push(e));
    await admin.collection('notes').create({ title: 'before' });
    assert.equal((await got.next()).record.title, 'before');

    await stopServer(proc);
    proc = await startServer(port, dir);
    // The SDK retries (200 ms, 300 ms, … 2 s apart) and posts its topics again on PB_CONNECT;
    // keep writing until one arrives.
    let seen = null;
    for (let i = 0; i < 40 && !seen; i++) {
      await admin.collection('notes').create({ title: `after ${i}` });
      seen = await got.next(500).catch(() => null);
    }
    assert.ok(seen, 'an event after the restart');
    assert.match(seen.record.title, /^after/);
    assert.ok(disconnects >= 1, 'the SDK saw the disconnect');
    pb.realtime.unsubscribe();
  } finally {
    await stopServer(proc);
    rmSync(dir, { recursive: true, force: true });
  }
});

// Three instances on the suite's PostgreSQL database (only when the suite runs on one): a
// subscriber on B sees writes made through C, through the SDK.
const extra = (process.env.BASALT_SERVER_ARGS || '').split(' ').filter(Boolean);
const onPostgres = extra.some((a) => a.startsWith('postgres'));
test('three instances: a write through one reaches SDK subscribers on the others', { skip: !onPostgres && 'the suite runs on SQLite (one instance)' }, async () => {
  const dirs = [];
  const procs = [];
  try {
    const urls = [];
    for (let i = 0; i < 2; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'basalt-rt-'));
      const port = await freePort();
      dirs.push(dir);
      procs.push(await startServer(port, dir, extra));
      urls.push(`http://127.0.0.1:${port}`);
    }
    const [b, c] = urls.map((u) => new PocketBase(u));
    // The suite's superuser lives in the shared database: its token works everywhere.
    b.authStore.save(su.authStore.token, su.authStore.record);
    const onB = inbox();
    const onA = inbox();
    const guestA = client();
    await b.collection(POSTS).subscribe('*', (e) => onB.push(e));
    await guestA.collection(POSTS).subscribe('*', (e) => onA.push(e));
    const rec = await c.collection(POSTS).create({ title: 'through c' });
    for (const box of [onB, onA]) {
      const e = await box.next(10000);
      assert.equal(e.action, 'create');
      assert.equal(e.record.id, rec.id);
    }
    await c.collection(POSTS).delete(rec.id);
    assert.equal((await onB.next(10000)).record.title, 'through c');
    assert.equal((await onA.next(10000)).action, 'delete');
    b.realtime.unsubscribe();
    guestA.realtime.unsubscribe();
  } finally {
    for (const p of procs) await stopServer(p);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
});
