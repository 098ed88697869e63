// Files through the SDK: FormData/Blob create, append, prepend, remove, clear, validation
// errors, download URLs (`pb.files.getURL`), thumbs, and protected files with
// `pb.files.getToken()`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import {
  client,
  superuser,
  uniqueName,
  createUser,
  loginAs,
  expectValidation,
  dropCollections,
} from './server.mjs';

const DOCS = uniqueName('filesdocs');
const VAULT = uniqueName('filesvault');

let su;

/** A valid w×h RGB PNG, built by hand (no image library in the suite). */
function png(w = 8, h = 8) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(w * 3, 0x80)]);
  const raw = Buffer.concat(Array.from({ length: h }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const text = (s) => new Blob([s], { type: 'text/plain' });

before(async () => {
  su = await superuser();
  await su.collections.create({
    name: DOCS,
    type: 'base',
    listRule: '',
    viewRule: '',
    createRule: '',
    updateRule: '',
    deleteRule: '',
    fields: [
      { name: 'title', type: 'text' },
      { name: 'cover', type: 'file', maxSelect: 1, mimeTypes: ['image/png'], thumbs: ['20x20'] },
      { name: 'docs', type: 'file', maxSelect: 3, maxSize: 1000 },
    ],
  });
  await su.collections.create({
    name: VAULT,
    type: 'base',
    createRule: "@request.auth.id != ''",
    viewRule: 'owner = @request.auth.id',
    fields: [
      { name: 'owner', type: 'relation', collectionId: '_pb_users_auth_', maxSelect: 1 },
      { name: 'secret', type: 'file', maxSelect: 1, protected: true },
    ],
  });
});

after(async () => {
  await dropCollections(su, [VAULT, DOCS]);
});

test('create with files, download through getURL, thumbs', async () => {
  const pb = client();
  const form = new FormData();
  form.append('title', 'with files');
  form.append('cover', new Blob([png()], { type: 'image/png' }), 'Cover Image.png');
  form.append('docs', text('one'), 'one.txt');
  form.append('docs', text('two'), 'two.txt');
  const rec = await pb.collection(DOCS).create(form);
  assert.equal(rec.title, 'with files');
  assert.match(rec.cover, /^cover_image_[a-z0-9]{10}\.png$/);
  assert.equal(rec.docs.length, 2);

  const url = pb.files.getURL(rec, rec.cover);
  let res = await fetch(url);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'image/png');
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), png());

  res = await fetch(pb.files.getURL(rec, rec.docs[1]));
  assert.equal(await res.text(), 'two');
  res = await fetch(pb.files.getURL(rec, rec.docs[0], { download: true }));
  assert.match(res.headers.get('content-disposition'), /^attachment; /);

  for (const [thumb, name] of [
    ['20x20', `20x20_${rec.cover}`],
    ['100x100', `100x100_${rec.cover}`],
    ['33x33', rec.cover],
  ]) {
    res = await fetch(pb.files.getURL(rec, rec.cover, { thumb }));
    assert.equal(res.status, 200, thumb);
    assert.equal(res.headers.get('content-disposition'), `inline; filename="${name}"`, thumb);
    await res.arrayBuffer();
  }
});

test('append, prepend, remove and clear files', async () => {
  const pb = client();
  const form = new FormData();
  form.append('docs', text('a'), 'a.txt');
  let rec = await pb.collection(DOCS).create(form);
  const [a] = rec.docs;

  const append = new FormData();
  append.append('docs+', text('b'), 'b.txt');
  rec = await pb.collection(DOCS).update(rec.id, append);
  assert.equal(rec.docs.length, 2);
  assert.equal(rec.docs[0], a);

  const prepend = new FormData();
  prepend.append('+docs', text('c'), 'c.txt');
  rec = await pb.collection(DOCS).update(rec.id, prepend);
  assert.equal(rec.docs.length, 3);
  assert.equal(rec.docs[1], a);

  rec = await pb.collection(DOCS).update(rec.id, { 'docs-': [a] });
  assert.equal(rec.docs.length, 2);
  assert.ok(!rec.docs.includes(a));
  const gone = await fetch(pb.files.getURL({ ...rec, docs: [a] }, a));
  assert.equal(gone.status, 404);

  rec = await pb.collection(DOCS).update(rec.id, { docs: [] });
  assert.deepEqual(rec.docs, []);
});

test('validation errors: type from the content, size, count', async () => {
  const pb = client();
  let form = new FormData();
  form.append('cover', new Blob(['\u0000not a png'], { type: 'image/png' }), 'fake.png');
  await expectValidation(pb.collection(DOCS).create(form), 'cover', 'validation_invalid_mime_type');

  form = new FormData();
  form.append('docs', text('x'.repeat(1001)), 'big.txt');
  await expectValidation(pb.collection(DOCS).create(form), 'docs', 'validation_file_size_limit');

  form = new FormData();
  for (let i = 0; i < 4; i++) form.append('docs', text(`${i}`), `${i}.txt`);
  await expectValidation(pb.collection(DOCS).create(form), 'docs', 'validation_too_many_files');
});

test('protected files need a file token from getToken and the view rule', async () => {
  const alice = await createUser(client());
  const bob = await createUser(client());
  const pbAlice = await loginAs(alice.email, alice.password);
  const pbBob = await loginAs(bob.email, bob.password);
  const form = new FormData();
  form.append('owner', alice.record.id);
  form.append('secret', text('top secret'), 'secret.txt');
  const rec = await pbAlice.collection(VAULT).create(form);

  const plain = await fetch(pbAlice.files.getURL(rec, rec.secret));
  assert.equal(plain.status, 404);
  await plain.arrayBuffer();

  const bobToken = await pbBob.files.getToken();
  const asBob = await fetch(pbBob.files.getURL(rec, rec.secret, { token: bobToken }));
  assert.equal(asBob.status, 404);
  assert.ok(!(await asBob.text()).includes('top secret'));

  const token = await pbAlice.files.getToken();
  const res = await fetch(pbAlice.files.getURL(rec, rec.secret, { token }));
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'top secret');
});
