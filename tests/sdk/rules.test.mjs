// API rules through the SDK: a scenario table of guest / owner / other user /
// superuser × list / view / create / update / delete on a collection with
// owner-based rules and on one whose rules are all null (contract §7).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  client,
  superuser,
  loginAs,
  createUser,
  uniqueName,
  expectStatus,
  trackStatus,
  sameAuth,
  dropCollections,
} from './server.mjs';

const OWNED = uniqueName('owned');
const LOCKED = uniqueName('locked');
const OWNER_RULE = 'owner = @request.auth.id';
const CREATE_RULE = "@request.auth.id != '' && @request.body.owner = @request.auth.id";

let su;
let ownerUser; // { record, email, password }
let otherUser;
const actors = {}; // name -> PocketBase client
let ownerRecs; // records in OWNED owned by ownerUser
let otherRec; // record in OWNED owned by otherUser
let lockedRec;

before(async () => {
  su = await superuser();
  await su.collections.create({
    name: OWNED,
    type: 'base',
    listRule: OWNER_RULE,
    viewRule: OWNER_RULE,
    createRule: CREATE_RULE,
    updateRule: OWNER_RULE,
    deleteRule: OWNER_RULE,
    fields: [
      { name: 'title', type: 'text' },
      { name: 'owner', type: 'relation', collectionId: '_pb_users_auth_', maxSelect: 1 },
    ],
  });
  await su.collections.create({
    name: LOCKED,
    type: 'base',
    fields: [{ name: 'title', type: 'text' }],
  });
  ownerUser = await createUser(client(), { name: 'Owner' });
  otherUser = await createUser(client(), { name: 'Other' });
  actors.guest = client();
  actors.owner = await loginAs(ownerUser.email, ownerUser.password);
  actors.other = await loginAs(otherUser.email, otherUser.password);
  actors.superuser = su;

  ownerRecs = [
    await su.collection(OWNED).create({ title: 'o1', owner: ownerUser.record.id }),
    await su.collection(OWNED).create({ title: 'o2', owner: ownerUser.record.id }),
  ];
  otherRec = await su.collection(OWNED).create({ title: 'x1', owner: otherUser.record.id });
  lockedRec = await su.collection(LOCKED).create({ title: 'locked' });
});

after(async () => {
  await dropCollections(su, [OWNED, LOCKED]);
});

function ownerId(actor) {
  return actor === 'owner' ? ownerUser.record.id : actor === 'other' ? otherUser.record.id : ownerUser.record.id;
}

// ---------------------------------------------------------------- `owned`: expression rules

// actor -> [status, number of items visible] (only the 3 seeded records are counted)
const LIST_EXPECT = {
  guest: [200, 0],
  owner: [200, 2],
  other: [200, 1],
  superuser: [200, 3],
};

for (const [actor, [status, count]] of Object.entries(LIST_EXPECT)) {
  test(`owned / list / ${actor} → ${status} with ${count} item(s)`, async () => {
    const pb = actors[actor];
    const seeded = [...ownerRecs, otherRec].map((r) => r.id);
    const res = await pb.collection(OWNED).getList(1, 100);
    assert.equal(res.items.length, res.totalItems);
    const ids = res.items.map((r) => r.id).filter((id) => seeded.includes(id));
    assert.equal(ids.length, count);
    if (actor === 'owner') assert.deepEqual(ids.sort(), ownerRecs.map((r) => r.id).sort());
    if (actor === 'other') assert.deepEqual(ids, [otherRec.id]);
  });
}

const VIEW_EXPECT = { guest: 404, owner: 200, other: 404, superuser: 200 };
for (const [actor, status] of Object.entries(VIEW_EXPECT)) {
  test(`owned / view owner's record / ${actor} → ${status}`, async () => {
    const p = actors[actor].collection(OWNED).getOne(ownerRecs[0].id);
    if (status === 200) {
      assert.equal((await p).title, 'o1');
    } else {
      await expectStatus(p, status);
    }
  });
}

// create: body.owner is the actor's own id (guest claims the owner's id)
const CREATE_EXPECT = { guest: 400, owner: 200, other: 200, superuser: 200 };
for (const [actor, status] of Object.entries(CREATE_EXPECT)) {
  test(`owned / create with self as owner / ${actor} → ${status}`, async () => {
    const p = actors[actor].collection(OWNED).create({ title: `new by ${actor}`, owner: ownerId(actor) });
    if (status === 200) {
      const rec = await p;
      assert.equal(rec.owner, ownerId(actor));
    } else {
      const err = await expectStatus(p, status);
      assert.deepEqual(err.response.data, {});
      assert.equal(err.response.message, 'Failed to create record.');
    }
  });
}

test('owned / create with someone else as owner / other user → 400', async () => {
  const err = await expectStatus(
    actors.other.collection(OWNED).create({ title: 'spoof', owner: ownerUser.record.id }),
    400,
  );
  assert.deepEqual(err.response.data, {});
});

const UPDATE_EXPECT = { guest: 404, owner: 200, other: 404, superuser: 200 };
for (const [actor, status] of Object.entries(UPDATE_EXPECT)) {
  test(`owned / update owner's record / ${actor} → ${status}`, async () => {
    const rec = await su.collection(OWNED).create({ title: 'upd', owner: ownerUser.record.id });
    const p = actors[actor].collection(OWNED).update(rec.id, { title: `upd by ${actor}` });
    if (status === 200) {
      assert.equal((await p).title, `upd by ${actor}`);
    } else {
      await expectStatus(p, status);
      assert.equal((await su.collection(OWNED).getOne(rec.id)).title, 'upd', 'unchanged');
    }
  });
}

const DELETE_EXPECT = { guest: 404, owner: 204, other: 404, superuser: 204 };
for (const [actor, status] of Object.entries(DELETE_EXPECT)) {
  test(`owned / delete owner's record / ${actor} → ${status}`, async () => {
    const rec = await su.collection(OWNED).create({ title: 'del', owner: ownerUser.record.id });
    const pb = actors[actor];
    if (status === 204) {
      const probe = sameAuth(pb);
      const last = trackStatus(probe);
      assert.equal(await probe.collection(OWNED).delete(rec.id), true);
      assert.equal(last(), 204);
      await expectStatus(su.collection(OWNED).getOne(rec.id), 404, 'gone');
    } else {
      await expectStatus(pb.collection(OWNED).delete(rec.id), status);
      assert.equal((await su.collection(OWNED).getOne(rec.id)).title, 'del', 'still there');
    }
  });
}

// ---------------------------------------------------------------- `locked`: null rules

for (const actor of ['guest', 'owner', 'other']) {
  test(`locked (null rules) / every action / ${actor} → 403`, async () => {
    const col = actors[actor].collection(LOCKED);
    const err = await expectStatus(col.getList(1, 10), 403, 'list');
    assert.equal(err.response.message, 'Only superusers can perform this action.');
    await expectStatus(col.getOne(lockedRec.id), 403, 'view');
    await expectStatus(col.create({ title: 'nope' }), 403, 'create');
    await expectStatus(col.update(lockedRec.id, { title: 'nope' }), 403, 'update');
    await expectStatus(col.delete(lockedRec.id), 403, 'delete');
  });
}

test('locked (null rules) / every action / superuser → allowed', async () => {
  const pb = sameAuth(su);
  const last = trackStatus(pb);
  const col = pb.collection(LOCKED);
  assert.ok((await col.getList(1, 10)).items.some((r) => r.id === lockedRec.id), 'list');
  assert.equal((await col.getOne(lockedRec.id)).title, 'locked', 'view');
  const rec = await col.create({ title: 'su' });
  assert.equal(rec.title, 'su', 'create');
  assert.equal((await col.update(rec.id, { title: 'su2' })).title, 'su2', 'update');
  assert.equal(await col.delete(rec.id), true, 'delete');
  assert.equal(last(), 204);
});

// ---------------------------------------------------------------- @request in client filters

test('@request. in a client filter is 403 for non-superusers', async () => {
  for (const actor of ['guest', 'owner']) {
    await expectStatus(
      actors[actor].collection(OWNED).getList(1, 10, { filter: 'owner = @request.auth.id' }),
      403,
      actor,
    );
  }
  await expectStatus(
    actors.owner.collection(OWNED).getList(1, 10, { sort: '@request.auth.id' }),
    403,
    'in sort',
  );
});

test('@collection. in a client filter is 403 for non-superusers', async () => {
  await expectStatus(
    actors.owner.collection(OWNED).getList(1, 10, { filter: `@collection.${OWNED}.title ?= 'o1'` }),
    403,
  );
});

test('@request. in a client filter is allowed for superusers', async () => {
  const res = await su.collection(OWNED).getList(1, 10, { filter: "@request.auth.id != ''" });
  assert.ok(res.items.length >= 3);
});

test('a client filter narrows what the list rule allows', async () => {
  const res = await actors.owner.collection(OWNED).getList(1, 10, { filter: "title = 'o2'" });
  assert.deepEqual(res.items.map((r) => r.id), [ownerRecs[1].id]);
  const none = await actors.owner.collection(OWNED).getList(1, 10, { filter: "title = 'x1'" });
  assert.equal(none.items.length, 0);
  assert.equal(none.totalItems, 0);
});
