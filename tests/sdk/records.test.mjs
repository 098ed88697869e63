// Records API through the SDK: CRUD, zero values, input coercion, validation
// errors, update modifiers, custom ids, and relation delete semantics.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  superuser,
  uniqueName,
  recordId,
  expectStatus,
  expectValidation,
  trackStatus,
  dropCollections,
} from './server.mjs';

const TARGET = uniqueName('rectarget');
const ALL = uniqueName('recall');
const VAL = uniqueName('recval');
const MOD = uniqueName('recmod');
const PARENT = uniqueName('recparent');
const CHILD_OPT = uniqueName('recchildopt');
const CHILD_REQ = uniqueName('recchildreq');
const CHILD_CASCADE = uniqueName('recchildcas');

let su;
let t1; // target records
let t2;

const DATE_RE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}Z$/;

before(async () => {
  su = await superuser();
  const target = await su.collections.create({
    name: TARGET,
    type: 'base',
    fields: [{ name: 'name', type: 'text' }],
  });
  await su.collections.create({
    name: ALL,
    type: 'base',
    fields: [
      { name: 't', type: 'text' },
      { name: 'n', type: 'number' },
      { name: 'b', type: 'bool' },
      { name: 'e', type: 'email' },
      { name: 'u', type: 'url' },
      { name: 'ed', type: 'editor' },
      { name: 'd', type: 'date' },
      { name: 'ac', type: 'autodate', onCreate: true, onUpdate: false },
      { name: 'au', type: 'autodate', onCreate: true, onUpdate: true },
      { name: 's', type: 'select', values: ['a', 'b', 'c'], maxSelect: 1 },
      { name: 'sm', type: 'select', values: ['a', 'b', 'c'], maxSelect: 3 },
      { name: 'j', type: 'json' },
      { name: 'r', type: 'relation', collectionId: target.id, maxSelect: 1 },
      { name: 'rm', type: 'relation', collectionId: target.id, maxSelect: 5 },
      { name: 'f', type: 'file', maxSelect: 1 },
      { name: 'fm', type: 'file', maxSelect: 3 },
      { name: 'p', type: 'password' },
      { name: 'g', type: 'geoPoint' },
    ],
  });
  await su.collections.create({
    name: VAL,
    type: 'base',
    fields: [
      { name: 'title', type: 'text', required: true, min: 3, max: 10 },
      { name: 'num', type: 'number', min: 1, max: 10, onlyInt: true },
      { name: 'sel', type: 'select', values: ['x', 'y'], maxSelect: 1 },
      { name: 'mail', type: 'email' },
      { name: 'rel', type: 'relation', collectionId: target.id, maxSelect: 1 },
    ],
  });
  await su.collections.create({
    name: MOD,
    type: 'base',
    fields: [
      { name: 'num', type: 'number' },
      { name: 'tags', type: 'select', values: ['a', 'b', 'c', 'd'], maxSelect: 4 },
      { name: 'rels', type: 'relation', collectionId: target.id, maxSelect: 5 },
    ],
  });
  const parent = await su.collections.create({
    name: PARENT,
    type: 'base',
    fields: [{ name: 'name', type: 'text' }],
  });
  await su.collections.create({
    name: CHILD_OPT,
    type: 'base',
    fields: [
      { name: 'name', type: 'text' },
      { name: 'one', type: 'relation', collectionId: parent.id, maxSelect: 1 },
      { name: 'many', type: 'relation', collectionId: parent.id, maxSelect: 5 },
    ],
  });
  await su.collections.create({
    name: CHILD_REQ,
    type: 'base',
    fields: [
      { name: 'name', type: 'text' },
      { name: 'one', type: 'relation', collectionId: parent.id, maxSelect: 1, required: true },
    ],
  });
  await su.collections.create({
    name: CHILD_CASCADE,
    type: 'base',
    fields: [
      { name: 'name', type: 'text' },
      { name: 'one', type: 'relation', collectionId: parent.id, maxSelect: 1, cascadeDelete: true },
    ],
  });
  t1 = await su.collection(TARGET).create({ name: 't1' });
  t2 = await su.collection(TARGET).create({ name: 't2' });
});

after(async () => {
  await dropCollections(su, [CHILD_CASCADE, CHILD_REQ, CHILD_OPT, PARENT, MOD, VAL, ALL, TARGET]);
});

// ---------------------------------------------------------------- CRUD

test('create returns the stored record with system keys', async () => {
  const rec = await su.collection(ALL).create({
    t: 'hello',
    n: 3.5,
    b: true,
    e: 'a@b.co',
    u: 'https://x.io/a',
    ed: '<p>hi</p>',
    d: '2024-01-02 03:04:05',
    s: 'b',
    sm: ['a', 'c'],
    j: { k: [1, 2] },
    r: t1.id,
    rm: [t1.id, t2.id],
    p: 'secret123',
    g: { lon: 10.5, lat: -20.25 },
  });
  assert.match(rec.id, /^[a-z0-9]{15}$/);
  assert.equal(rec.collectionName, ALL);
  assert.equal(typeof rec.collectionId, 'string');
  assert.equal(rec.t, 'hello');
  assert.equal(rec.n, 3.5);
  assert.equal(rec.b, true);
  assert.equal(rec.e, 'a@b.co');
  assert.equal(rec.u, 'https://x.io/a');
  assert.equal(rec.ed, '<p>hi</p>');
  assert.equal(rec.d, '2024-01-02 03:04:05.000Z');
  assert.equal(rec.s, 'b');
  assert.deepEqual(rec.sm, ['a', 'c']);
  assert.deepEqual(rec.j, { k: [1, 2] });
  assert.equal(rec.r, t1.id);
  assert.deepEqual(rec.rm, [t1.id, t2.id]);
  assert.equal(rec.p, '', 'password values are never returned');
  assert.deepEqual(rec.g, { lon: 10.5, lat: -20.25 });
  assert.match(rec.ac, DATE_RE);
  assert.match(rec.au, DATE_RE);
  assert.equal(rec.f, '');
  assert.deepEqual(rec.fm, []);
});

test('getOne, getList and update round-trip a record', async () => {
  const col = su.collection(ALL);
  const rec = await col.create({ t: 'round', n: 1, sm: ['b'] });

  const got = await col.getOne(rec.id);
  assert.deepEqual(got, rec);

  const list = await col.getList(1, 50, { filter: `id = '${rec.id}'` });
  assert.equal(list.totalItems, 1);
  assert.deepEqual(list.items[0], rec);

  await new Promise((r) => setTimeout(r, 10)); // let the clock move for onUpdate autodate
  const upd = await col.update(rec.id, { t: 'changed', b: true });
  assert.equal(upd.id, rec.id);
  assert.equal(upd.t, 'changed');
  assert.equal(upd.b, true);
  assert.equal(upd.n, 1, 'update is partial');
  assert.deepEqual(upd.sm, ['b'], 'update is partial');
  assert.equal(upd.ac, rec.ac, 'onCreate-only autodate is kept');
  assert.notEqual(upd.au, rec.au, 'onUpdate autodate changes');
  assert.ok(upd.au > rec.au);

  const again = await col.getOne(rec.id);
  assert.equal(again.t, 'changed');
});

test('client values for autodate fields are ignored', async () => {
  const rec = await su.collection(ALL).create({ ac: '2000-01-01 00:00:00.000Z', au: '2000-01-01 00:00:00.000Z' });
  assert.notEqual(rec.ac, '2000-01-01 00:00:00.000Z');
  assert.notEqual(rec.au, '2000-01-01 00:00:00.000Z');
  assert.ok(rec.ac > '2020');
});

test('delete answers 204, then getOne is 404', async () => {
  const pb = await superuser();
  const status = trackStatus(pb);
  const rec = await pb.collection(ALL).create({ t: 'doomed' });
  assert.equal(await pb.collection(ALL).delete(rec.id), true);
  assert.equal(status(), 204);
  await expectStatus(pb.collection(ALL).getOne(rec.id), 404);
  await expectStatus(pb.collection(ALL).delete(rec.id), 404, 'second delete');
  await expectStatus(pb.collection(ALL).update(rec.id, { t: 'x' }), 404, 'update of deleted');
});

test('unknown record id and unknown collection are 404', async () => {
  await expectStatus(su.collection(ALL).getOne('zzzzzzzzzzzzzzz'), 404);
  await expectStatus(su.collection(uniqueName('nocol')).getList(), 404);
});

// ---------------------------------------------------------------- zero values

test('create({}) stores the zero value of every field type', async () => {
  const rec = await su.collection(ALL).create({});
  assert.match(rec.id, /^[a-z0-9]{15}$/);
  assert.equal(rec.t, '');
  assert.equal(rec.n, 0);
  assert.equal(rec.b, false);
  assert.equal(rec.e, '');
  assert.equal(rec.u, '');
  assert.equal(rec.ed, '');
  assert.equal(rec.d, '');
  assert.equal(rec.s, '');
  assert.deepEqual(rec.sm, []);
  assert.equal(rec.j, null);
  assert.equal(rec.r, '');
  assert.deepEqual(rec.rm, []);
  assert.equal(rec.f, '');
  assert.deepEqual(rec.fm, []);
  assert.equal(rec.p, '');
  assert.deepEqual(rec.g, { lon: 0, lat: 0 });
  assert.match(rec.ac, DATE_RE);
  assert.match(rec.au, DATE_RE);
  assert.deepEqual(await su.collection(ALL).getOne(rec.id), rec);
});

test('unknown body keys are ignored', async () => {
  const rec = await su.collection(ALL).create({ t: 'x', nope: 'ignored' });
  assert.equal(rec.t, 'x');
  assert.ok(!('nope' in rec));
});

// ---------------------------------------------------------------- coercion

async function coerce(body) {
  return su.collection(ALL).create(body);
}

test('number coercion: numeric strings, garbage, null and booleans', async () => {
  assert.equal((await coerce({ n: '42' })).n, 42);
  assert.equal((await coerce({ n: 'abc' })).n, 0);
  assert.equal((await coerce({ n: '' })).n, 0);
  assert.equal((await coerce({ n: null })).n, 0);
  assert.equal((await coerce({ n: true })).n, 1);
});

test('bool coercion: "true", "1", 1 are true; "on", "yes" are false', async () => {
  assert.equal((await coerce({ b: 'true' })).b, true);
  assert.equal((await coerce({ b: '1' })).b, true);
  assert.equal((await coerce({ b: 1 })).b, true);
  assert.equal((await coerce({ b: 'on' })).b, false);
  assert.equal((await coerce({ b: 'yes' })).b, false);
});

test('date coercion: accepted formats normalize to UTC, garbage becomes ""', async () => {
  assert.equal((await coerce({ d: '2024-01-02' })).d, '2024-01-02 00:00:00.000Z');
  assert.equal((await coerce({ d: '2024-01-02T03:04:05Z' })).d, '2024-01-02 03:04:05.000Z');
  assert.equal((await coerce({ d: '2024-01-02T03:04:05+02:00' })).d, '2024-01-02 01:04:05.000Z');
  assert.equal((await coerce({ d: '2024-01-02 03:04:05.123Z' })).d, '2024-01-02 03:04:05.123Z');
  assert.equal((await coerce({ d: 'garbage' })).d, '');
  assert.equal((await coerce({ d: '2024/01/02' })).d, '');
  assert.equal((await coerce({ d: 1704164645 })).d, '');
});

test('select coercion: array into single keeps the last, string into multi wraps', async () => {
  assert.equal((await coerce({ s: ['a', 'b'] })).s, 'b');
  assert.deepEqual((await coerce({ sm: 'a' })).sm, ['a']);
  await expectValidation(coerce({ sm: 'a,b' }), 'sm', 'validation_invalid_value');
});

test('json coercion: JSON-looking strings are parsed, others kept as strings', async () => {
  assert.deepEqual((await coerce({ j: '[1,2]' })).j, [1, 2]);
  assert.equal((await coerce({ j: 'true' })).j, true);
  assert.equal((await coerce({ j: 'hello' })).j, 'hello');
  assert.deepEqual((await coerce({ j: { a: null } })).j, { a: null });
});

test('geoPoint coercion: a non-object becomes the zero point', async () => {
  assert.deepEqual((await coerce({ g: 'x' })).g, { lon: 0, lat: 0 });
});

// ---------------------------------------------------------------- validation

const VALID = () => ({ title: 'valid' });

test('validation: required field missing', async () => {
  const err = await expectValidation(su.collection(VAL).create({}), 'title', 'validation_required');
  assert.equal(err.response.message, 'Failed to create record.');
  assert.equal(err.response.status, 400);
});

test('validation: text min and max length', async () => {
  const min = await expectValidation(
    su.collection(VAL).create({ title: 'ab' }),
    'title',
    'validation_min_text_constraint',
  );
  assert.equal(min.response.data.title.params?.min, 3);
  await expectValidation(
    su.collection(VAL).create({ title: 'abcdefghijk' }),
    'title',
    'validation_max_text_constraint',
  );
});

test('validation: number min, max and onlyInt', async () => {
  await expectValidation(su.collection(VAL).create({ ...VALID(), num: -5 }), 'num', 'validation_min_number_constraint');
  await expectValidation(su.collection(VAL).create({ ...VALID(), num: 11 }), 'num', 'validation_max_number_constraint');
  await expectValidation(su.collection(VAL).create({ ...VALID(), num: 1.5 }), 'num', 'validation_only_int_constraint');
  const ok = await su.collection(VAL).create({ ...VALID(), num: 10 });
  assert.equal(ok.num, 10);
});

test('validation: select value not in the list', async () => {
  await expectValidation(su.collection(VAL).create({ ...VALID(), sel: 'z' }), 'sel', 'validation_invalid_value');
});

test('validation: invalid email', async () => {
  await expectValidation(su.collection(VAL).create({ ...VALID(), mail: 'not-an-email' }), 'mail', 'validation_is_email');
});

test('validation: relation to a missing record', async () => {
  await expectValidation(
    su.collection(VAL).create({ ...VALID(), rel: 'aaaaaaaaaaaaaaa' }),
    'rel',
    'validation_missing_rel_records',
  );
});

test('validation: several invalid fields are all reported', async () => {
  const err = await expectStatus(su.collection(VAL).create({ title: 'ab', sel: 'z' }), 400);
  assert.equal(err.response.data.title?.code, 'validation_min_text_constraint');
  assert.equal(err.response.data.sel?.code, 'validation_invalid_value');
});

test('validation on update gives "Failed to update record."', async () => {
  const rec = await su.collection(VAL).create(VALID());
  const err = await expectValidation(su.collection(VAL).update(rec.id, { title: 'ab' }), 'title', 'validation_min_text_constraint');
  assert.equal(err.response.message, 'Failed to update record.');
  assert.equal((await su.collection(VAL).getOne(rec.id)).title, 'valid', 'failed update changed nothing');
});

// ---------------------------------------------------------------- modifiers

test('update modifiers: num+ and num-', async () => {
  const col = su.collection(MOD);
  const rec = await col.create({ num: 5 });
  assert.equal((await col.update(rec.id, { 'num+': 10 })).num, 15);
  assert.equal((await col.update(rec.id, { 'num-': 3 })).num, 12);
  assert.equal((await col.getOne(rec.id)).num, 12);
});

test('update modifiers: tags+ appends, +tags prepends, tags- removes', async () => {
  const col = su.collection(MOD);
  const rec = await col.create({ tags: ['a'] });
  assert.deepEqual((await col.update(rec.id, { 'tags+': 'b' })).tags, ['a', 'b']);
  assert.deepEqual((await col.update(rec.id, { '+tags': 'c' })).tags, ['c', 'a', 'b']);
  assert.deepEqual((await col.update(rec.id, { 'tags-': 'a' })).tags, ['c', 'b']);
  assert.deepEqual((await col.update(rec.id, { 'tags+': ['d'] })).tags, ['c', 'b', 'd']);
  assert.deepEqual((await col.update(rec.id, { 'tags-': ['c', 'd'] })).tags, ['b']);
  assert.deepEqual((await col.getOne(rec.id)).tags, ['b']);
});

test('update modifiers work on multi relations too', async () => {
  const col = su.collection(MOD);
  const rec = await col.create({ rels: [t1.id] });
  assert.deepEqual((await col.update(rec.id, { 'rels+': t2.id })).rels, [t1.id, t2.id]);
  assert.deepEqual((await col.update(rec.id, { 'rels-': t1.id })).rels, [t2.id]);
});

test('setting a multi field to [] clears it', async () => {
  const col = su.collection(MOD);
  const rec = await col.create({ tags: ['a', 'b'] });
  assert.deepEqual((await col.update(rec.id, { tags: [] })).tags, []);
});

// ---------------------------------------------------------------- custom ids

test('custom 15-char id is kept; duplicate id is validation_not_unique', async () => {
  const id = recordId();
  const rec = await su.collection(ALL).create({ id, t: 'custom' });
  assert.equal(rec.id, id);
  assert.equal((await su.collection(ALL).getOne(id)).t, 'custom');
  await expectValidation(su.collection(ALL).create({ id, t: 'dup' }), 'id', 'validation_not_unique');
});

test('custom id with the wrong length or characters is rejected', async () => {
  await expectValidation(su.collection(ALL).create({ id: 'short' }), 'id', 'validation_min_text_constraint');
  await expectValidation(su.collection(ALL).create({ id: 'ABCDEFGHIJKLMNO' }), 'id', 'validation_invalid_format');
});

// ---------------------------------------------------------------- relation delete semantics

test('deleting a record removes its id from non-required relations', async () => {
  const p1 = await su.collection(PARENT).create({ name: 'p1' });
  const p2 = await su.collection(PARENT).create({ name: 'p2' });
  const c = await su.collection(CHILD_OPT).create({ name: 'c', one: p1.id, many: [p1.id, p2.id] });
  await su.collection(PARENT).delete(p1.id);
  const got = await su.collection(CHILD_OPT).getOne(c.id);
  assert.equal(got.one, '');
  assert.deepEqual(got.many, [p2.id]);
  assert.equal(got.name, 'c');
});

test('deleting a record referenced by a required relation is 400', async () => {
  const p = await su.collection(PARENT).create({ name: 'req' });
  const c = await su.collection(CHILD_REQ).create({ name: 'c', one: p.id });
  await expectStatus(su.collection(PARENT).delete(p.id), 400);
  assert.equal((await su.collection(PARENT).getOne(p.id)).name, 'req', 'parent still exists');
  assert.equal((await su.collection(CHILD_REQ).getOne(c.id)).one, p.id, 'child untouched');
});

test('cascadeDelete relations delete the referencing records', async () => {
  const p = await su.collection(PARENT).create({ name: 'cas' });
  const c1 = await su.collection(CHILD_CASCADE).create({ name: 'c1', one: p.id });
  const c2 = await su.collection(CHILD_CASCADE).create({ name: 'c2', one: p.id });
  const other = await su.collection(CHILD_CASCADE).create({ name: 'c3' });
  await su.collection(PARENT).delete(p.id);
  await expectStatus(su.collection(CHILD_CASCADE).getOne(c1.id), 404);
  await expectStatus(su.collection(CHILD_CASCADE).getOne(c2.id), 404);
  assert.equal((await su.collection(CHILD_CASCADE).getOne(other.id)).name, 'c3');
});
