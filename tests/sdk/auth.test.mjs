// Auth through the SDK: the default `users` collection, password auth,
// authStore, refresh, auth methods, email visibility, password change and
// token revocation, superuser detection.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  client,
  superuser,
  loginAs,
  createUser,
  uniqueEmail,
  uniqueName,
  expectStatus,
  expectValidation,
  dropCollections,
} from './server.mjs';

const MEMBERS = uniqueName('authmembers'); // auth collection with public list/view rules
let su;

before(async () => {
  su = await superuser();
  await su.collections.create({
    name: MEMBERS,
    type: 'auth',
    listRule: '',
    viewRule: '',
    createRule: '',
    fields: [{ name: 'nick', type: 'text' }],
  });
});

after(async () => {
  await dropCollections(su, [MEMBERS]);
});

function jwtPayload(token) {
  const part = token.split('.')[1];
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

test('the default users collection exists with id _pb_users_auth_', async () => {
  const users = await su.collections.getOne('users');
  assert.equal(users.id, '_pb_users_auth_');
  assert.equal(users.type, 'auth');
  const names = users.fields.map((f) => f.name);
  for (const n of ['id', 'email', 'emailVisibility', 'verified', 'password', 'tokenKey']) {
    assert.ok(names.includes(n), `users has field ${n}`);
  }
  assert.equal(users.passwordAuth.enabled, true);
  assert.deepEqual(users.passwordAuth.identityFields, ['email']);
});

test('a new auth collection gets system fields, indexes and default options', async () => {
  const col = await su.collections.getOne(MEMBERS);
  assert.equal(col.type, 'auth');
  const byName = Object.fromEntries(col.fields.map((f) => [f.name, f]));
  for (const n of ['id', 'password', 'tokenKey', 'email', 'emailVisibility', 'verified', 'nick']) {
    assert.ok(byName[n], `field ${n}`);
  }
  assert.equal(byName.password.type, 'password');
  assert.equal(byName.password.hidden, true);
  assert.equal(byName.tokenKey.hidden, true);
  assert.equal(byName.email.type, 'email');
  assert.equal(byName.email.required, true);
  assert.equal(byName.emailVisibility.type, 'bool');
  assert.equal(byName.verified.type, 'bool');
  assert.equal(col.authRule, '');
  assert.equal(col.manageRule, null);
  assert.deepEqual(col.passwordAuth, { enabled: true, identityFields: ['email'] });
  assert.equal(col.oauth2.enabled, false);
  assert.equal(col.mfa.enabled, false);
  assert.equal(col.otp.enabled, false);
  assert.equal(col.authToken.duration, 432000);
  assert.ok(col.indexes.some((i) => /UNIQUE INDEX/i.test(i) && i.includes('email')), 'unique email index');
});

test('a guest can create a user; password and tokenKey are never returned', async () => {
  const email = uniqueEmail('signup');
  const rec = await client().collection('users').create({
    email,
    password: 'password123',
    passwordConfirm: 'password123',
    name: 'Sign Up',
  });
  assert.match(rec.id, /^[a-z0-9]{15}$/);
  assert.equal(rec.collectionId, '_pb_users_auth_');
  assert.equal(rec.collectionName, 'users');
  assert.equal(rec.name, 'Sign Up');
  assert.equal(rec.verified, false);
  assert.equal(rec.emailVisibility, false);
  assert.ok(!('password' in rec));
  assert.ok(!('tokenKey' in rec));
  assert.ok(!('passwordConfirm' in rec));
  assert.ok(!('email' in rec), 'the guest is not the owner: email hidden');
  assert.equal(rec.avatar, '');
  assert.match(rec.created, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}Z$/);
});

test('users: email in a create response is shown when emailVisibility is true', async () => {
  const email = uniqueEmail('visible');
  const rec = await client().collection('users').create({
    email,
    password: 'password123',
    passwordConfirm: 'password123',
    emailVisibility: true,
  });
  assert.equal(rec.email, email);
  assert.equal(rec.emailVisibility, true);
});

test('passwordConfirm mismatch is validation_values_mismatch', async () => {
  await expectValidation(
    client().collection('users').create({
      email: uniqueEmail('mismatch'),
      password: 'password123',
      passwordConfirm: 'password124',
    }),
    'passwordConfirm',
    'validation_values_mismatch',
  );
});

test('missing password and duplicate email are rejected', async () => {
  await expectValidation(
    client().collection('users').create({ email: uniqueEmail('nopass') }),
    'password',
    'validation_required',
  );
  const { email } = await createUser(client());
  await expectValidation(
    client().collection('users').create({ email, password: 'password123', passwordConfirm: 'password123' }),
    'email',
    'validation_not_unique',
  );
});

test('authWithPassword fills the authStore with a valid token and the record', async () => {
  const { record, email, password } = await createUser(client());
  const pb = client();
  assert.equal(pb.authStore.isValid, false);
  const res = await pb.collection('users').authWithPassword(email, password);
  assert.equal(typeof res.token, 'string');
  assert.equal(res.record.id, record.id);
  assert.equal(res.record.email, email, 'owner sees own email');
  assert.equal(pb.authStore.isValid, true);
  assert.equal(pb.authStore.token, res.token);
  assert.equal(pb.authStore.record.id, record.id);
  assert.equal(pb.authStore.isSuperuser, false);

  const claims = jwtPayload(res.token);
  assert.equal(claims.type, 'auth');
  assert.equal(claims.id, record.id);
  assert.equal(claims.collectionId, '_pb_users_auth_');
  assert.equal(claims.refreshable, true);
  const ttl = claims.exp - Date.now() / 1000;
  assert.ok(Math.abs(ttl - 432000) < 120, `users token lives 5 days (authToken.duration), got ${ttl}s`);
});

test('authWithPassword with a wrong password or unknown email is 400', async () => {
  const { email } = await createUser(client());
  const err = await expectStatus(client().collection('users').authWithPassword(email, 'wrong-password'), 400);
  assert.deepEqual(err.response.data, {});
  await expectStatus(client().collection('users').authWithPassword(uniqueEmail('ghost'), 'password123'), 400);
});

test('authWithPassword with empty identity and password is a validation error', async () => {
  const err = await expectStatus(client().collection('users').authWithPassword('', ''), 400);
  assert.equal(err.response.data.identity?.code, 'validation_required');
  assert.equal(err.response.data.password?.code, 'validation_required');
});

test('authWithPassword on a base collection is 404', async () => {
  await expectStatus(client().collection(uniqueName('nosuch')).authWithPassword('a@b.co', 'password123'), 404);
});

test('authRefresh returns a fresh token and the record', async () => {
  const { record, email, password } = await createUser(client());
  const pb = await loginAs(email, password);
  const res = await pb.collection('users').authRefresh();
  assert.equal(res.record.id, record.id);
  assert.equal(typeof res.token, 'string');
  assert.equal(pb.authStore.token, res.token);
  assert.equal(pb.authStore.isValid, true);
});

test('authRefresh without a token is 401', async () => {
  await expectStatus(client().collection('users').authRefresh(), 401);
});

test('authRefresh of a token from another auth collection is 403', async () => {
  const pb = await superuser();
  await expectStatus(pb.collection('users').authRefresh(), 403);
});

test('listAuthMethods shape', async () => {
  const m = await client().collection('users').listAuthMethods();
  assert.equal(m.password.enabled, true);
  assert.deepEqual(m.password.identityFields, ['email']);
  assert.equal(m.oauth2.enabled, false);
  assert.deepEqual(m.oauth2.providers, []);
  assert.equal(m.mfa.enabled, false);
  assert.equal(m.otp.enabled, false);
});

test('an invalid token is treated as a guest on public endpoints', async () => {
  const pb = client();
  pb.authStore.save('not.a.valid.token', null);
  const m = await pb.collection('users').listAuthMethods();
  assert.equal(m.password.enabled, true);
  const list = await pb.collection(MEMBERS).getList(1, 10);
  assert.ok(Array.isArray(list.items));
});

test('email is hidden from others unless emailVisibility is true', async () => {
  const members = client().collection(MEMBERS);
  const hiddenEmail = uniqueEmail('hidden');
  const shownEmail = uniqueEmail('shown');
  const hidden = await members.create({ email: hiddenEmail, password: 'password123', passwordConfirm: 'password123' });
  const shown = await members.create({
    email: shownEmail,
    password: 'password123',
    passwordConfirm: 'password123',
    emailVisibility: true,
  });

  // a guest
  const g = client();
  assert.ok(!('email' in (await g.collection(MEMBERS).getOne(hidden.id))), 'guest cannot see hidden email');
  assert.equal((await g.collection(MEMBERS).getOne(shown.id)).email, shownEmail, 'visible email shown to guest');

  // another authenticated member
  const other = await loginAs(shownEmail, 'password123', MEMBERS);
  assert.ok(!('email' in (await other.collection(MEMBERS).getOne(hidden.id))), 'other user cannot see hidden email');

  // the owner
  const owner = await loginAs(hiddenEmail, 'password123', MEMBERS);
  assert.equal((await owner.collection(MEMBERS).getOne(hidden.id)).email, hiddenEmail, 'owner sees own email');

  // a superuser
  assert.equal((await su.collection(MEMBERS).getOne(hidden.id)).email, hiddenEmail, 'superuser sees every email');
});

test('filtering on email only matches visible emails for non-superusers', async () => {
  const members = client().collection(MEMBERS);
  const email = uniqueEmail('filt');
  await members.create({ email, password: 'password123', passwordConfirm: 'password123' });
  const g = await client().collection(MEMBERS).getList(1, 10, { filter: `email = '${email}'` });
  assert.equal(g.items.length, 0);
  const s = await su.collection(MEMBERS).getList(1, 10, { filter: `email = '${email}'` });
  assert.equal(s.items.length, 1);
});

test('changing the password requires oldPassword and revokes old tokens', async () => {
  const { record, email, password } = await createUser(client());
  const pb = await loginAs(email, password);
  const oldToken = pb.authStore.token;
  const oldRecord = pb.authStore.record;

  await expectValidation(
    pb.collection('users').update(record.id, { password: 'newpassword456', passwordConfirm: 'newpassword456' }),
    'oldPassword',
    'validation_required',
  );
  await expectValidation(
    pb.collection('users').update(record.id, {
      oldPassword: 'not-the-old-one',
      password: 'newpassword456',
      passwordConfirm: 'newpassword456',
    }),
    'oldPassword',
    'validation_invalid_old_password',
  );

  await pb.collection('users').update(record.id, {
    oldPassword: password,
    password: 'newpassword456',
    passwordConfirm: 'newpassword456',
  });

  const stale = client();
  stale.authStore.save(oldToken, oldRecord);
  assert.equal(stale.authStore.isValid, true, 'the old token has not expired, only been revoked');
  await expectStatus(stale.collection('users').authRefresh(), 401, 'refresh with the old token');

  await expectStatus(client().collection('users').authWithPassword(email, password), 400, 'old password');
  const fresh = await loginAs(email, 'newpassword456');
  assert.equal(fresh.authStore.record.id, record.id);
});

test('a superuser can change a user password without oldPassword', async () => {
  const { record, email } = await createUser(client());
  await su.collection('users').update(record.id, { password: 'bysuperuser1', passwordConfirm: 'bysuperuser1' });
  const pb = await loginAs(email, 'bysuperuser1');
  assert.equal(pb.authStore.record.id, record.id);
});

test('a non-superuser cannot set verified on create', async () => {
  await expectValidation(
    client().collection('users').create({
      email: uniqueEmail('verif'),
      password: 'password123',
      passwordConfirm: 'password123',
      verified: true,
    }),
    'verified',
    'validation_values_mismatch',
  );
});

test('superuser auth: isSuperuser is true and the record is a _superusers record', async () => {
  const pb = await superuser();
  assert.equal(pb.authStore.isValid, true);
  assert.equal(pb.authStore.isSuperuser, true);
  assert.equal(pb.authStore.record.collectionName, '_superusers');
  const claims = jwtPayload(pb.authStore.token);
  assert.equal(claims.type, 'auth');
  assert.equal(claims.collectionId, pb.authStore.record.collectionId);
  const ttl = claims.exp - Date.now() / 1000;
  assert.ok(Math.abs(ttl - 86400) < 120, `superuser token lives 1 day, got ${ttl}s`);
  const refreshed = await pb.collection('_superusers').authRefresh();
  assert.equal(refreshed.record.id, pb.authStore.record.id);
  assert.equal(pb.authStore.isSuperuser, true);
});

test('users default rules: a user sees only itself', async () => {
  const a = await createUser(client());
  const b = await createUser(client());
  const pb = await loginAs(a.email, a.password);
  const list = await pb.collection('users').getFullList();
  assert.deepEqual(list.map((r) => r.id), [a.record.id]);
  await expectStatus(pb.collection('users').getOne(b.record.id), 404);
  const guest = await client().collection('users').getList(1, 10);
  assert.equal(guest.items.length, 0);
});

test('authStore.clear logs out', async () => {
  const { email, password } = await createUser(client());
  const pb = await loginAs(email, password);
  pb.authStore.clear();
  assert.equal(pb.authStore.isValid, false);
  await expectStatus(pb.collection('users').authRefresh(), 401);
});
