// Querying records through the SDK: filter grammar and operators, relation
// paths, modifiers, macros, sort, paging, fields and expand, on a seeded
// posts/tags/orgs/comments dataset (the contract's §6 capture).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { superuser, uniqueName, expectStatus, sortedValues, dropCollections } from './server.mjs';

const ORGS = uniqueName('qorgs');
const TAGS = uniqueName('qtags');
const POSTS = uniqueName('qposts');
const COMMENTS = uniqueName('qcomments');
// back-relation name: <referencing collection>_via_<relation field>
const VIA = `${COMMENTS}_via_post`;

let su;
const org = {}; // name -> record
const tag = {}; // name -> record
const post = {}; // title -> record
const comment = {}; // msg -> record

const ALL_TITLES = ['Hello World', 'JS tricks', 'Rust tips', 'go away', 'hello again'];

before(async () => {
  su = await superuser();
  const orgs = await su.collections.create({
    name: ORGS,
    type: 'base',
    fields: [{ name: 'name', type: 'text' }],
  });
  const tags = await su.collections.create({
    name: TAGS,
    type: 'base',
    fields: [
      { name: 'name', type: 'text' },
      { name: 'weight', type: 'number' },
      { name: 'org', type: 'relation', collectionId: orgs.id, maxSelect: 1 },
    ],
  });
  const posts = await su.collections.create({
    name: POSTS,
    type: 'base',
    fields: [
      { name: 'title', type: 'text' },
      { name: 'views', type: 'number' },
      { name: 'published', type: 'bool' },
      { name: 'tags', type: 'relation', collectionId: tags.id, maxSelect: 10 },
      { name: 'labels', type: 'select', values: ['a', 'b', 'c'], maxSelect: 3 },
      { name: 'pub', type: 'date' },
      { name: 'body', type: 'editor' },
    ],
  });
  await su.collections.create({
    name: COMMENTS,
    type: 'base',
    fields: [
      { name: 'msg', type: 'text' },
      { name: 'post', type: 'relation', collectionId: posts.id, maxSelect: 1 },
    ],
  });

  for (const name of ['Acme', 'Globex']) {
    org[name] = await su.collection(ORGS).create({ name });
  }
  for (const [name, weight, o] of [
    ['rust', 3, 'Acme'],
    ['js', 1, 'Acme'],
    ['go', 2, 'Globex'],
  ]) {
    tag[name] = await su.collection(TAGS).create({ name, weight, org: org[o].id });
  }
  const rows = [
    ['Hello World', 10, true, ['rust', 'js'], ['a'], '2024-01-15 10:00:00.000Z', '<p>Hello <b>World</b> and more</p>'],
    ['Rust tips', 50, true, ['rust'], ['a', 'b'], '2024-06-01 00:00:00.000Z', '<p>Rust</p>'],
    ['JS tricks', 5, false, ['js'], ['b'], '2025-02-01 00:00:00.000Z', ''],
    ['go away', 0, false, [], ['c'], '', ''],
    ['hello again', 100, true, ['go'], ['b', 'c'], '2999-01-01 00:00:00.000Z', ''],
  ];
  for (const [title, views, published, tagNames, labels, pub, body] of rows) {
    post[title] = await su.collection(POSTS).create({
      title,
      views,
      published,
      tags: tagNames.map((n) => tag[n].id),
      labels,
      pub,
      body,
    });
  }
  for (const [msg, title] of [
    ['c00', 'Hello World'],
    ['c10', 'Rust tips'],
    ['c11', 'Rust tips'],
    ['c20', 'JS tricks'],
  ]) {
    comment[msg] = await su.collection(COMMENTS).create({ msg, post: post[title].id });
  }
});

after(async () => {
  await dropCollections(su, [COMMENTS, POSTS, TAGS, ORGS]);
});

/** Titles (sorted) of all posts matching `filter`. */
async function titles(filter, opts = {}) {
  const items = await su.collection(POSTS).getFullList({ filter, ...opts });
  return sortedValues(items);
}

function sorted(list) {
  return [...list].sort();
}

async function expectTitles(filter, expected) {
  assert.deepEqual(await titles(filter), sorted(expected), `filter: ${filter}`);
}

// ---------------------------------------------------------------- §6 captured results

test('captured: ~ and !~ (LIKE, case-insensitive, explicit %)', async () => {
  await expectTitles("title ~ 'hello'", ['Hello World', 'hello again']);
  await expectTitles("title ~ 'Hello%'", ['Hello World', 'hello again']);
  await expectTitles("title !~ 'hello'", ['Rust tips', 'JS tricks', 'go away']);
});

test('captured: tags.name any vs all', async () => {
  await expectTitles("tags.name ?= 'js'", ['Hello World', 'JS tricks']);
  await expectTitles("tags.name = 'js'", ['JS tricks']);
});

test('captured: nested relation path tags.org.name', async () => {
  await expectTitles("tags.org.name ?= 'Acme'", ['Hello World', 'Rust tips', 'JS tricks']);
  await expectTitles("tags.org.name ?= 'Globex'", ['hello again']);
});

test('captured: :each and :length on a multi select', async () => {
  await expectTitles("labels:each = 'a'", ['Hello World']);
  await expectTitles('labels:length > 1', ['Rust tips', 'hello again']);
});

test('captured: back-relation <comments>_via_post', async () => {
  await expectTitles(`${VIA}.msg ?= 'c11'`, ['Rust tips']);
});

test('captured: strftime function', async () => {
  await expectTitles("strftime('%Y', pub) = '2024'", ['Hello World', 'Rust tips']);
});

test('captured: parenthesized || inside &&', async () => {
  await expectTitles("(views > 50 || title ~ 'JS') && published = false", ['JS tricks']);
});

test('captured: invalid filters are 400', async () => {
  for (const filter of ['true', 'nope = 1', 'title =', "title ^ 'x'", "title = 'a' &&"]) {
    const err = await expectStatus(su.collection(POSTS).getList(1, 10, { filter }), 400, `filter ${filter}`);
    assert.deepEqual(err.response.data, {}, `filter ${filter}: data is {}`);
  }
});

// ---------------------------------------------------------------- operators

test('operators = and != on text', async () => {
  await expectTitles("title = 'go away'", ['go away']);
  await expectTitles("title != 'go away'", ['Hello World', 'Rust tips', 'JS tricks', 'hello again']);
  await expectTitles('title = "go away"', ['go away']);
});

test('operators > >= < <= on numbers', async () => {
  await expectTitles('views > 10', ['Rust tips', 'hello again']);
  await expectTitles('views >= 10', ['Hello World', 'Rust tips', 'hello again']);
  await expectTitles('views < 10', ['JS tricks', 'go away']);
  await expectTitles('views <= 10', ['Hello World', 'JS tricks', 'go away']);
  await expectTitles('views > -1.5', ALL_TITLES);
});

test('operators on bools and the null / empty-string equivalence', async () => {
  await expectTitles('published = true', ['Hello World', 'Rust tips', 'hello again']);
  await expectTitles('published != true', ['JS tricks', 'go away']);
  await expectTitles('pub = null', ['go away']);
  await expectTitles("pub = ''", ['go away']);
  await expectTitles("pub != ''", ['Hello World', 'Rust tips', 'JS tricks', 'hello again']);
});

test('~ escapes _ and % when the operand has no %', async () => {
  await expectTitles("title ~ 'o_w'", []);
  await expectTitles("title ~ 'o w'", ['Hello World']);
});

test('?= and ?!= on a multi relation path', async () => {
  await expectTitles("tags.name ?!= 'rust'", ['Hello World', 'JS tricks', 'go away', 'hello again']);
  await expectTitles("tags.name != 'rust'", ['JS tricks', 'go away', 'hello again']);
});

test('?> ?>= ?< ?<= on a multi relation path', async () => {
  await expectTitles('tags.weight ?> 2', ['Hello World', 'Rust tips']);
  await expectTitles('tags.weight ?>= 2', ['Hello World', 'Rust tips', 'hello again']);
  await expectTitles('tags.weight ?< 2', ['Hello World', 'JS tricks']);
  await expectTitles('tags.weight ?<= 2', ['Hello World', 'JS tricks', 'hello again']);
  await expectTitles('tags.weight > 1', ['Rust tips', 'hello again']);
});

test('?~ and ?!~ on a multi relation path', async () => {
  await expectTitles("tags.name ?~ 'us'", ['Hello World', 'Rust tips']);
  await expectTitles("tags.name ?!~ 'rust'", ['Hello World', 'JS tricks', 'hello again']);
});

test('a multi-value field without path compares raw JSON; use .id, :each or ~', async () => {
  const js = tag.js.id;
  await expectTitles(`tags ?= '${js}'`, []);
  await expectTitles("labels = 'a'", []);
  await expectTitles(`tags.id ?= '${js}'`, ['Hello World', 'JS tricks']);
  await expectTitles(`tags:each ?= '${js}'`, ['Hello World', 'JS tricks']);
  await expectTitles(`tags ~ '${js}'`, ['Hello World', 'JS tricks']);
});

// ---------------------------------------------------------------- precedence & syntax

test('&& binds tighter than ||', async () => {
  await expectTitles("title='go away' || views>5 && published=true", [
    'go away',
    'Hello World',
    'Rust tips',
    'hello again',
  ]);
  await expectTitles("(title='go away' || views>5) && published=true", ['Hello World', 'Rust tips', 'hello again']);
  await expectTitles('views>10&&published=true', ['Rust tips', 'hello again']);
});

test('line comments are allowed in filters', async () => {
  await expectTitles('views > 10 // only popular\n && published = true', ['Rust tips', 'hello again']);
});

test('1 = 1 and field = field are valid filters', async () => {
  await expectTitles('1 = 1', ALL_TITLES);
  await expectTitles('title = title', ALL_TITLES);
});

// ---------------------------------------------------------------- modifiers

test(':lower modifier', async () => {
  await expectTitles("title:lower = 'hello world'", ['Hello World']);
  await expectTitles("title:lower = 'js tricks'", ['JS tricks']);
});

test(':length modifier on multi relation and select', async () => {
  await expectTitles('tags:length = 2', ['Hello World']);
  await expectTitles('tags:length = 0', ['go away']);
  await expectTitles('labels:length = 1', ['Hello World', 'JS tricks', 'go away']);
});

test(':each modifier with any semantics', async () => {
  await expectTitles("labels:each ?= 'c'", ['go away', 'hello again']);
  await expectTitles("labels:each != 'a'", ['JS tricks', 'go away', 'hello again']);
});

// ---------------------------------------------------------------- relations

test('back-relation paths default to all-must-match', async () => {
  await expectTitles(`${VIA}.msg = 'c00'`, ['Hello World']);
  await expectTitles(`${VIA}.msg ?~ 'c1'`, ['Rust tips']);
});

test(':length on a back-relation is 400', async () => {
  await expectStatus(su.collection(POSTS).getList(1, 10, { filter: `${VIA}:length > 1` }), 400);
});

test('@collection joins (superuser)', async () => {
  // posts having a tag that is the (only) tag named 'go'
  await expectTitles(`@collection.${TAGS}.id ?= tags.id && @collection.${TAGS}.name ?= 'go'`, ['hello again']);
  await expectTitles(
    `@collection.${COMMENTS}.post ?= id && @collection.${COMMENTS}.msg ?= 'c20'`,
    ['JS tricks'],
  );
});

// ---------------------------------------------------------------- macros

test('datetime macros: pub < @now includes empty dates', async () => {
  await expectTitles('pub < @now', ['Hello World', 'Rust tips', 'JS tricks', 'go away']);
  await expectTitles('pub > @now', ['hello again']);
  await expectTitles("pub > @yesterday && pub != ''", ['hello again']);
  await expectTitles('pub > @tomorrow', ['hello again']);
  await expectTitles('@year > 2000', ALL_TITLES);
});

// ---------------------------------------------------------------- pb.filter params

test('pb.filter inlines string, number and bool params', async () => {
  const f = su.filter('title = {:t} && views > {:v} && published = {:p}', { t: 'Hello World', v: 5, p: true });
  await expectTitles(f, ['Hello World']);
});

test('pb.filter reproduces the captured results', async () => {
  await expectTitles(su.filter('title ~ {:q}', { q: 'hello' }), ['Hello World', 'hello again']);
  await expectTitles(su.filter('tags.name ?= {:n}', { n: 'js' }), ['Hello World', 'JS tricks']);
  await expectTitles(su.filter('tags.org.name ?= {:o}', { o: 'Acme' }), ['Hello World', 'Rust tips', 'JS tricks']);
  await expectTitles(su.filter(`${VIA}.msg ?= {:m}`, { m: 'c11' }), ['Rust tips']);
  await expectTitles(su.filter('(views > {:v} || title ~ {:t}) && published = {:p}', { v: 50, t: 'JS', p: false }), [
    'JS tricks',
  ]);
});

test('pb.filter inlines Date params', async () => {
  const f = su.filter('pub > {:d}', { d: new Date('2024-03-01T00:00:00Z') });
  await expectTitles(f, ['Rust tips', 'JS tricks', 'hello again']);
});

test('pb.filter escapes quotes and backslashes in strings', async () => {
  const f = su.filter('title != {:t} && title != {:u}', { t: `it's "quoted"`, u: 'back\\slash' });
  await expectTitles(f, ALL_TITLES);
  await expectTitles(su.filter('title = {:t}', { t: "go away" }), ['go away']);
  await expectTitles(su.filter('pub = {:n}', { n: null }), ['go away']);
});

// ---------------------------------------------------------------- sort

async function sortedTitles(sort) {
  const res = await su.collection(POSTS).getList(1, 50, { sort });
  return res.items.map((x) => x.title);
}

test('sort by -views and +views', async () => {
  assert.deepEqual(await sortedTitles('-views'), ['hello again', 'Rust tips', 'Hello World', 'JS tricks', 'go away']);
  assert.deepEqual(await sortedTitles('+views'), ['go away', 'JS tricks', 'Hello World', 'Rust tips', 'hello again']);
});

test('sort by multiple keys', async () => {
  assert.deepEqual(await sortedTitles('-published,views'), [
    'Hello World',
    'Rust tips',
    'hello again',
    'go away',
    'JS tricks',
  ]);
});

test('text sort is case-sensitive (binary)', async () => {
  assert.deepEqual(await sortedTitles('title'), ['Hello World', 'JS tricks', 'Rust tips', 'go away', 'hello again']);
});

test('sort by @rowid is insertion order', async () => {
  assert.deepEqual(await sortedTitles('@rowid'), ['Hello World', 'Rust tips', 'JS tricks', 'go away', 'hello again']);
  assert.deepEqual(await sortedTitles('-@rowid'), ['hello again', 'go away', 'JS tricks', 'Rust tips', 'Hello World']);
});

test('sort by @random returns every record', async () => {
  const list = await sortedTitles('@random');
  assert.deepEqual(sorted(list), ALL_TITLES);
});

test('sort by an unknown field is 400', async () => {
  await expectStatus(su.collection(POSTS).getList(1, 10, { sort: 'nope' }), 400);
  await expectStatus(su.collection(POSTS).getList(1, 10, { sort: '-views,nope' }), 400);
});

// ---------------------------------------------------------------- paging

test('getList paging envelope', async () => {
  const p1 = await su.collection(POSTS).getList(1, 2, { sort: 'views' });
  assert.equal(p1.page, 1);
  assert.equal(p1.perPage, 2);
  assert.equal(p1.totalItems, 5);
  assert.equal(p1.totalPages, 3);
  assert.deepEqual(p1.items.map((x) => x.title), ['go away', 'JS tricks']);

  const p3 = await su.collection(POSTS).getList(3, 2, { sort: 'views' });
  assert.equal(p3.page, 3);
  assert.deepEqual(p3.items.map((x) => x.title), ['hello again']);

  const p4 = await su.collection(POSTS).getList(4, 2, { sort: 'views' });
  assert.equal(p4.page, 4);
  assert.deepEqual(p4.items, []);
  assert.equal(p4.totalItems, 5);
});

test('getList with a filter counts only matches', async () => {
  const res = await su.collection(POSTS).getList(1, 1, { filter: 'published = true' });
  assert.equal(res.totalItems, 3);
  assert.equal(res.totalPages, 3);
  assert.equal(res.items.length, 1);
});

test('skipTotal gives -1 totals', async () => {
  const res = await su.collection(POSTS).getList(1, 2, { skipTotal: true, sort: 'views' });
  assert.equal(res.totalItems, -1);
  assert.equal(res.totalPages, -1);
  assert.equal(res.items.length, 2);
  assert.equal(res.perPage, 2);
});

test('perPage above 1000 is clamped to 1000', async () => {
  const res = await su.collection(POSTS).getList(1, 5000);
  assert.equal(res.perPage, 1000);
  assert.equal(res.items.length, 5);
});

test('default paging is page 1, perPage 30', async () => {
  const res = await su.collection(POSTS).getList();
  assert.equal(res.page, 1);
  assert.equal(res.perPage, 30);
  assert.equal(res.totalItems, 5);
  assert.equal(res.totalPages, 1);
});

test('page <= 0 means page 1 and perPage <= 0 means 30', async () => {
  const res = await su.collection(POSTS).getList(0, 0);
  assert.equal(res.page, 1);
  assert.equal(res.perPage, 30);
  assert.equal(res.items.length, 5);
});

test('getFullList with batch size 2 collects all 5 records', async () => {
  const all = await su.collection(POSTS).getFullList({ batch: 2, sort: 'views' });
  assert.deepEqual(all.map((x) => x.title), ['go away', 'JS tricks', 'Hello World', 'Rust tips', 'hello again']);
  const unsorted = await su.collection(POSTS).getFullList({ batch: 2 });
  assert.deepEqual(sortedValues(unsorted), ALL_TITLES);
});

test('getFirstListItem returns the first match, 404 when nothing matches', async () => {
  const rec = await su.collection(POSTS).getFirstListItem('views > 10', { sort: 'views' });
  assert.equal(rec.title, 'Rust tips');
  await expectStatus(su.collection(POSTS).getFirstListItem("title = 'no such post'"), 404);
});

// ---------------------------------------------------------------- fields

test('fields picks top-level keys', async () => {
  const rec = await su.collection(POSTS).getOne(post['Hello World'].id, { fields: 'id,title' });
  assert.deepEqual(Object.keys(rec).sort(), ['id', 'title']);
  assert.equal(rec.title, 'Hello World');
});

test('fields applies to list items and ignores unknown names', async () => {
  const res = await su.collection(POSTS).getList(1, 10, { fields: 'title,nope', sort: 'views' });
  assert.deepEqual(res.items[0], { title: 'go away' });
  assert.equal(res.totalItems, 5, 'envelope keys are kept');
});

test('fields with expand.x.y picks keys inside expanded records', async () => {
  const rec = await su.collection(POSTS).getOne(post['Hello World'].id, {
    expand: 'tags',
    fields: 'id,title,expand.tags.name',
  });
  assert.deepEqual(rec, {
    id: post['Hello World'].id,
    title: 'Hello World',
    expand: { tags: [{ name: 'rust' }, { name: 'js' }] },
  });
});

test('fields reaching into nested expands', async () => {
  const rec = await su.collection(POSTS).getOne(post['Rust tips'].id, {
    expand: 'tags.org',
    fields: 'title,expand.tags.name,expand.tags.expand.org.name',
  });
  assert.deepEqual(rec, {
    title: 'Rust tips',
    expand: { tags: [{ name: 'rust', expand: { org: { name: 'Acme' } } }] },
  });
});

test('fields :excerpt modifier', async () => {
  const rec = await su.collection(POSTS).getOne(post['Hello World'].id, { fields: '*,title:excerpt(5,true)' });
  assert.equal(rec.title, 'Hello...');
  assert.equal(rec.views, 10, '* keeps the other keys');
  assert.equal(rec.id, post['Hello World'].id);

  const body = await su.collection(POSTS).getOne(post['Hello World'].id, { fields: 'body:excerpt(100)' });
  assert.deepEqual(body, { body: 'Hello World and more' }, 'HTML is stripped');
  const short = await su.collection(POSTS).getOne(post['Hello World'].id, { fields: 'body:excerpt(5)' });
  assert.deepEqual(short, { body: 'Hello' });
});

// ---------------------------------------------------------------- expand

test('without expand there is no expand key', async () => {
  const p = await su.collection(POSTS).getOne(post['Hello World'].id);
  assert.ok(!('expand' in p));
});

test('expand a single relation', async () => {
  const c = await su.collection(COMMENTS).getOne(comment.c20.id, { expand: 'post' });
  assert.equal(c.post, post['JS tricks'].id);
  assert.equal(c.expand.post.id, post['JS tricks'].id);
  assert.equal(c.expand.post.title, 'JS tricks');
  assert.equal(c.expand.post.collectionName, POSTS);
});

test('expand a multi relation keeps stored order', async () => {
  const p = await su.collection(POSTS).getOne(post['Hello World'].id, { expand: 'tags' });
  assert.ok(Array.isArray(p.expand.tags));
  assert.deepEqual(p.expand.tags.map((t) => t.name), ['rust', 'js']);
  assert.equal(p.expand.tags[0].collectionName, TAGS);
});

test('expand nested tags.org', async () => {
  const p = await su.collection(POSTS).getOne(post['hello again'].id, { expand: 'tags.org' });
  assert.equal(p.expand.tags.length, 1);
  assert.equal(p.expand.tags[0].name, 'go');
  assert.equal(p.expand.tags[0].expand.org.name, 'Globex');
});

test('expand a back-relation <comments>_via_post (always an array)', async () => {
  const p = await su.collection(POSTS).getOne(post['Rust tips'].id, { expand: VIA });
  assert.ok(Array.isArray(p.expand[VIA]));
  assert.deepEqual(sortedValues(p.expand[VIA], 'msg'), ['c10', 'c11']);
  const one = await su.collection(POSTS).getOne(post['Hello World'].id, { expand: VIA });
  assert.ok(Array.isArray(one.expand[VIA]));
  assert.deepEqual(one.expand[VIA].map((c) => c.msg), ['c00']);
});

test('expand several paths in a list', async () => {
  const res = await su.collection(POSTS).getList(1, 10, { expand: `tags,${VIA}`, sort: 'views' });
  const byTitle = Object.fromEntries(res.items.map((x) => [x.title, x]));
  assert.deepEqual(byTitle['Hello World'].expand.tags.map((t) => t.name), ['rust', 'js']);
  assert.equal(byTitle['JS tricks'].expand[VIA][0].msg, 'c20');
  assert.deepEqual(byTitle['go away'].expand, {}, 'empty relations leave an empty expand object');
  assert.deepEqual(Object.keys(byTitle['hello again'].expand), ['tags'], 'no back-relation key without comments');
});

test('unknown expand paths are ignored', async () => {
  const p = await su.collection(POSTS).getOne(post['Hello World'].id, { expand: 'nope' });
  assert.equal(p.title, 'Hello World');
  assert.ok(!('expand' in p), `no expand key: ${JSON.stringify(p.expand)}`);
  const mixed = await su.collection(POSTS).getOne(post['Hello World'].id, { expand: 'nope,tags' });
  assert.deepEqual(mixed.expand.tags.map((t) => t.name), ['rust', 'js']);
  assert.ok(!('nope' in mixed.expand));
});
