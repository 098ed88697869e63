// Collections API through the SDK: create with every field type, read, update
// (add / rename / remove fields), unique indexes, delete, and access control.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  client,
  superuser,
  createUser,
  loginAs,
  uniqueName,
  expectStatus,
  expectValidation,
  field,
  dropCollections,
} from './server.mjs';

const TARGET = uniqueName('coltarget');
const ALL = uniqueName('colall');
const UNIQ = uniqueName('coluniq');
const created = [];
let su;
let target; // collection model
let all; // collection model

function allFieldsSpec(targetId) {
  return [
    { name: 't', type: 'text', min: 2, max: 10, pattern: '^[a-z]+$' },
    { name: 'n', type: 'number', min: 0, max: 100, onlyInt: true },
    { name: 'b', type: 'bool' },
    { name: 'e', type: 'email' },
    { name: 'u', type: 'url' },
    { name: 'ed', type: 'editor' },
    { name: 'd', type: 'date' },
    { name: 'created', type: 'autodate', onCreate: true, onUpdate: false },
    { name: 'updated', type: 'autodate', onCreate: true, onUpdate: true },
    { name: 's', type: 'select', values: ['a', 'b', 'c'], maxSelect: 1 },
    { name: 'sm', type: 'select', values: ['a', 'b', 'c'], maxSelect: 3 },
    { name: 'j', type: 'json' },
    { name: 'r', type: 'relation', collectionId: targetId, maxSelect: 1 },
    { name: 'rm', type: 'relation', collectionId: targetId, maxSelect: 5 },
    { name: 'f', type: 'file', maxSelect: 1 },
    { name: 'fm', type: 'file', maxSelect: 3 },
    { name: 'p', type: 'password' },
    { name: 'g', type: 'geoPoint' },
  ];
}

before(async () => {
  su = await superuser();
  target = await su.collections.create({
    name: TARGET,
    type: 'base',
    fields: [{ name: 'name', type: 'text' }],
  });
  created.push(TARGET);
  all = await su.collections.create({
    name: ALL,
    type: 'base',
    fields: allFieldsSpec(target.id),
  });
  created.unshift(ALL);
});

after(async () => {
  await dropCollections(su, created);
});

test('create returns the collection with default rules and the id field first', async () => {
  assert.equal(all.name, ALL);
  assert.equal(all.type, 'base');
  assert.equal(all.system, false);
  assert.equal(typeof all.id, 'string');
  assert.ok(all.id.length > 0);
  for (const rule of ['listRule', 'viewRule', 'createRule', 'updateRule', 'deleteRule']) {
    assert.equal(all[rule], null, `${rule} defaults to null`);
  }
  assert.deepEqual(all.indexes, []);
  const id = all.fields[0];
  assert.equal(id.name, 'id');
  assert.equal(id.type, 'text');
  assert.equal(id.primaryKey, true);
  assert.equal(id.system, true);
});

test('create keeps every declared field with its type, in order, each with an id', async () => {
  const spec = allFieldsSpec(target.id);
  const names = all.fields.map((f) => f.name);
  assert.deepEqual(names, ['id', ...spec.map((f) => f.name)]);
  for (const s of spec) {
    const f = field(all, s.name);
    assert.equal(f.type, s.type, `type of ${s.name}`);
    assert.equal(typeof f.id, 'string');
    assert.ok(f.id.length > 0, `${s.name} has an id`);
    assert.equal(f.hidden, false);
    assert.equal(f.system, false);
  }
  const ids = new Set(all.fields.map((f) => f.id));
  assert.equal(ids.size, all.fields.length, 'field ids are unique');
});

test('create echoes field options (text, number, select, relation, autodate)', async () => {
  const t = field(all, 't');
  assert.equal(t.min, 2);
  assert.equal(t.max, 10);
  assert.equal(t.pattern, '^[a-z]+$');
  assert.equal(t.required, false);

  const n = field(all, 'n');
  assert.equal(n.min, 0);
  assert.equal(n.max, 100);
  assert.equal(n.onlyInt, true);

  assert.deepEqual(field(all, 's').values, ['a', 'b', 'c']);
  assert.equal(field(all, 's').maxSelect, 1);
  assert.equal(field(all, 'sm').maxSelect, 3);

  const r = field(all, 'r');
  assert.equal(r.collectionId, target.id);
  assert.equal(r.maxSelect, 1);
  assert.equal(r.cascadeDelete, false);
  assert.equal(field(all, 'rm').maxSelect, 5);

  assert.equal(field(all, 'created').onCreate, true);
  assert.equal(field(all, 'created').onUpdate, false);
  assert.equal(field(all, 'updated').onCreate, true);
  assert.equal(field(all, 'updated').onUpdate, true);

  assert.equal(field(all, 'fm').maxSelect, 3);
});

test('getOne by name and by id returns the same collection', async () => {
  const byName = await su.collections.getOne(ALL);
  const byId = await su.collections.getOne(all.id);
  assert.equal(byName.id, all.id);
  assert.equal(byId.name, ALL);
  assert.deepEqual(
    byId.fields.map((f) => [f.id, f.name, f.type]),
    all.fields.map((f) => [f.id, f.name, f.type]),
  );
});

test('getOne of an unknown collection is 404', async () => {
  await expectStatus(su.collections.getOne(uniqueName('missing')), 404);
});

test('getList filters and pages collections', async () => {
  const res = await su.collections.getList(1, 10, { filter: `name = '${ALL}'` });
  assert.equal(res.page, 1);
  assert.equal(res.perPage, 10);
  assert.equal(res.totalItems, 1);
  assert.equal(res.totalPages, 1);
  assert.equal(res.items.length, 1);
  assert.equal(res.items[0].id, all.id);

  const small = await su.collections.getList(1, 1);
  assert.equal(small.items.length, 1);
  assert.ok(small.totalItems >= 4, 'at least users, _superusers and the two created collections');
});

test('getFullList includes system and created collections', async () => {
  const list = await su.collections.getFullList();
  const byName = new Map(list.map((c) => [c.name, c]));
  assert.ok(byName.has(ALL));
  assert.ok(byName.has(TARGET));
  assert.equal(byName.get('users')?.id, '_pb_users_auth_');
  assert.equal(byName.get('users')?.type, 'auth');
  assert.equal(byName.get('_superusers')?.type, 'auth');
  assert.equal(byName.get('_superusers')?.system, true);
});

test('update: add, rename (keeping id) and remove fields; untouched data survives', async () => {
  const name = uniqueName('colupd');
  let col = await su.collections.create({
    name,
    type: 'base',
    fields: [
      { name: 'title', type: 'text' },
      { name: 'views', type: 'number' },
      { name: 'flag', type: 'bool' },
      { name: 'gone', type: 'text' },
      { name: 'tags', type: 'select', values: ['x', 'y'], maxSelect: 2 },
    ],
  });
  created.unshift(name);
  const rec = await su.collection(name).create({
    title: 'hello',
    views: 7,
    flag: true,
    gone: 'bye',
    tags: ['x', 'y'],
  });

  const titleId = field(col, 'title').id;
  const viewsId = field(col, 'views').id;
  const newFields = col.fields
    .filter((f) => f.name !== 'gone')
    .map((f) => (f.name === 'title' ? { ...f, name: 'heading' } : f));
  newFields.push({ name: 'extra', type: 'text' });

  col = await su.collections.update(name, { fields: newFields });
  const names = col.fields.map((f) => f.name);
  assert.ok(names.includes('heading'));
  assert.ok(names.includes('extra'));
  assert.ok(!names.includes('title'));
  assert.ok(!names.includes('gone'));
  assert.equal(field(col, 'heading').id, titleId, 'renamed field keeps its id');
  assert.equal(field(col, 'views').id, viewsId, 'untouched field keeps its id');

  const got = await su.collection(name).getOne(rec.id);
  assert.equal(got.heading, 'hello', 'renamed field keeps its data');
  assert.equal(got.views, 7);
  assert.equal(got.flag, true);
  assert.deepEqual(got.tags, ['x', 'y']);
  assert.equal(got.extra, '', 'new field reads as its zero value');
  assert.ok(!('title' in got), 'old name is gone');
  assert.ok(!('gone' in got), 'removed field is gone');
});

test('update can change rules and options', async () => {
  const name = uniqueName('colrules');
  await su.collections.create({ name, type: 'base', fields: [{ name: 'title', type: 'text' }] });
  created.unshift(name);
  const col = await su.collections.update(name, { listRule: '', viewRule: "title != ''" });
  assert.equal(col.listRule, '');
  assert.equal(col.viewRule, "title != ''");
  assert.equal(col.createRule, null);
});

test('unique index: duplicate value gives 400 validation_not_unique', async () => {
  const col = await su.collections.create({
    name: UNIQ,
    type: 'base',
    fields: [{ name: 'code', type: 'text' }],
    indexes: [`CREATE UNIQUE INDEX idx_${UNIQ}_code ON ${UNIQ} (code)`],
  });
  created.unshift(UNIQ);
  assert.deepEqual(col.indexes, [`CREATE UNIQUE INDEX idx_${UNIQ}_code ON ${UNIQ} (code)`]);

  await su.collection(UNIQ).create({ code: 'abc' });
  const err = await expectValidation(su.collection(UNIQ).create({ code: 'abc' }), 'code', 'validation_not_unique');
  assert.equal(err.response.status, 400);
  // a different value is fine
  const ok = await su.collection(UNIQ).create({ code: 'abd' });
  assert.equal(ok.code, 'abd');
});

test('duplicate collection name gives 400 validation_collection_name_exists', async () => {
  await expectValidation(
    su.collections.create({ name: ALL, type: 'base', fields: [] }),
    'name',
    'validation_collection_name_exists',
  );
});

test('invalid rule gives 400 validation_invalid_rule', async () => {
  await expectValidation(
    su.collections.create({
      name: uniqueName('colbadrule'),
      type: 'base',
      fields: [{ name: 'title', type: 'text' }],
      listRule: 'nope = 1',
    }),
    'listRule',
    'validation_invalid_rule',
  );
});

test('delete a collection: resolves, then getOne is 404', async () => {
  const name = uniqueName('coldel');
  await su.collections.create({ name, type: 'base', fields: [{ name: 'title', type: 'text' }] });
  await su.collection(name).create({ title: 'x' });
  assert.equal(await su.collections.delete(name), true);
  await expectStatus(su.collections.getOne(name), 404);
  await expectStatus(su.collection(name).getList(), 404, 'records of a deleted collection');
});

test('deleting a collection referenced by a relation is 400', async () => {
  await expectStatus(su.collections.delete(TARGET), 400);
  await su.collections.getOne(TARGET); // still there
});

test('guests get 401 on the collections API', async () => {
  const guest = client();
  await expectStatus(guest.collections.getList(), 401, 'list');
  await expectStatus(guest.collections.getOne(ALL), 401, 'view');
  await expectStatus(guest.collections.create({ name: uniqueName('colguest'), type: 'base' }), 401, 'create');
  await expectStatus(guest.collections.delete(ALL), 401, 'delete');
});

test('regular users get 403 on the collections API', async () => {
  const { email, password } = await createUser(client());
  const user = await loginAs(email, password);
  await expectStatus(user.collections.getList(), 403, 'list');
  await expectStatus(user.collections.getOne(ALL), 403, 'view');
  await expectStatus(user.collections.create({ name: uniqueName('coluser'), type: 'base' }), 403, 'create');
  await expectStatus(user.collections.update(ALL, { listRule: '' }), 403, 'update');
  await expectStatus(user.collections.delete(ALL), 403, 'delete');
});

test('fields declared with only name and type get the default options', async () => {
  const name = uniqueName('coldefaults');
  const col = await su.collections.create({
    name,
    type: 'base',
    fields: [
      { name: 't', type: 'text' },
      { name: 'n', type: 'number' },
      { name: 'd', type: 'date' },
      { name: 'j', type: 'json' },
      { name: 's', type: 'select', values: ['a'] },
      { name: 'g', type: 'geoPoint' },
    ],
  });
  created.unshift(name);
  const t = field(col, 't');
  assert.equal(t.min, 0);
  assert.equal(t.max, 0);
  assert.equal(t.pattern, '');
  assert.equal(t.required, false);
  assert.equal(t.presentable, false);
  const n = field(col, 'n');
  assert.equal(n.min, null);
  assert.equal(n.max, null);
  assert.equal(n.onlyInt, false);
  assert.equal(field(col, 'd').min, '');
  assert.equal(field(col, 'd').max, '');
  assert.equal(field(col, 'j').maxSize, 0);
  assert.equal(field(col, 's').maxSelect, 0);
  assert.equal(field(col, 'g').required, false);
});
