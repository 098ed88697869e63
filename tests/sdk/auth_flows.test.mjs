// The auth flows through the SDK, with mail read from a real SMTP server (aiosmtpd, started
// here on loopback): verification, password reset, email change, impersonation, OTP and MFA.
// Everything happens in this file's own auth collection (MFA must not touch other files'
// logins); the SMTP settings are the server's, which no other file sends mail with.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { client, superuser, uniqueEmail, uniqueName, dropCollections } from './server.mjs';

const PEOPLE = uniqueName('flowpeople');
let su;
let smtp;
let maildir;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** The decoded text of every part of every mail received so far, one string per mail. */
function mails() {
  const dir = join(maildir, 'new');
  return readdirSync(dir).map((f) => decode(readFileSync(join(dir, f), 'utf8')));
}

/** Undoes quoted-printable and base64 part encodings (enough to read links and codes). */
function decode(raw) {
  const parts = raw.split(/\r?\n--/);
  return parts
    .map((part) => {
      const [head, ...rest] = part.split(/\r?\n\r?\n/);
      const body = rest.join('\n\n');
      if (/content-transfer-encoding:\s*base64/i.test(head)) {
        return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
      }
      if (/content-transfer-encoding:\s*quoted-printable/i.test(head)) {
        const joined = body.replace(/=\r?\n/g, '');
        return Buffer.from(
          joined.replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))),
          'latin1',
        ).toString('utf8');
      }
      return part;
    })
    .join('\n');
}

/** Waits for a mail to `to` matching `re` that was not there before; returns the match. */
async function waitForMail(to, re, seen = 0) {
  for (let i = 0; i < 200; i++) {
    const found = mails()
      .filter((m) => m.includes(to))
      .map((m) => m.match(re))
      .filter(Boolean);
    if (found.length > seen) return found[found.length - 1];
    await sleep(100);
  }
  throw new Error(`no mail to ${to} matching ${re}`);
}

const tokenIn = (what) => new RegExp(`/confirm-${what}/([A-Za-z0-9_\\-.]+)`);
const CODE = /code is (\d+)/;

before(async () => {
  maildir = mkdtempSync(join(tmpdir(), 'basalt-sdk-mail-'));
  for (const d of ['tmp', 'new', 'cur']) mkdirSync(join(maildir, d));
  const port = await freePort();
  smtp = spawn(
    process.env.BASALT_TEST_PYTHON || 'python3',
    ['-m', 'aiosmtpd', '-n', '-l', `127.0.0.1:${port}`, '-c', 'aiosmtpd.handlers.Mailbox', maildir],
    { stdio: 'ignore' },
  );
  // Ready when it accepts connections.
  for (let i = 0; ; i++) {
    const up = await new Promise((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.end();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (i > 150) throw new Error('aiosmtpd did not start (pip install -r tests/smtp/requirements.txt)');
    await sleep(100);
  }
  su = await superuser();
  await su.settings.update({
    meta: { appName: 'SdkApp', appURL: 'http://sdk.test', senderName: 'Sdk', senderAddress: 'sdk@app.test' },
    smtp: { enabled: true, host: '127.0.0.1', port },
  });
  await su.collections.create({
    name: PEOPLE,
    type: 'auth',
    createRule: '',
    listRule: 'id = @request.auth.id',
    viewRule: 'id = @request.auth.id',
    otp: { enabled: true, length: 6 },
  });
});

after(async () => {
  await dropCollections(su, [PEOPLE]);
  await su.settings.update({ smtp: { enabled: false } }).catch(() => {});
  smtp?.kill();
  rmSync(maildir, { recursive: true, force: true });
});

async function person() {
  const email = uniqueEmail('flow');
  const pb = client();
  const record = await pb.collection(PEOPLE).create({ email, password: 'password123', passwordConfirm: 'password123' });
  return { email, record };
}

test('verification by mail through the SDK', async () => {
  const { email, record } = await person();
  const pb = client();
  assert.equal(await pb.collection(PEOPLE).requestVerification(email), true);
  const [, token] = await waitForMail(email, tokenIn('verification'));
  assert.equal(await pb.collection(PEOPLE).confirmVerification(token), true);
  const me = client();
  await me.collection(PEOPLE).authWithPassword(email, 'password123');
  assert.equal((await me.collection(PEOPLE).getOne(record.id)).verified, true);
});

test('password reset by mail through the SDK, once', async () => {
  const { email } = await person();
  const old = client();
  await old.collection(PEOPLE).authWithPassword(email, 'password123');
  const pb = client();
  await pb.collection(PEOPLE).requestPasswordReset(email);
  const [, token] = await waitForMail(email, tokenIn('password-reset'));
  await pb.collection(PEOPLE).confirmPasswordReset(token, 'brandnew123', 'brandnew123');
  await assert.rejects(pb.collection(PEOPLE).confirmPasswordReset(token, 'again12345', 'again12345'), (e) => e.status === 400);
  await assert.rejects(old.collection(PEOPLE).authRefresh(), (e) => e.status === 401);
  const fresh = client();
  await fresh.collection(PEOPLE).authWithPassword(email, 'brandnew123');
  assert.ok(fresh.authStore.isValid);
});

test('email change confirmed from the new address; the SDK clears its auth', async () => {
  const { email, record } = await person();
  const me = client();
  await me.collection(PEOPLE).authWithPassword(email, 'password123');
  const next = uniqueEmail('moved');
  await me.collection(PEOPLE).requestEmailChange(next);
  const [, token] = await waitForMail(next, tokenIn('email-change'));
  await me.collection(PEOPLE).confirmEmailChange(token, 'password123');
  assert.equal(me.authStore.isValid, false, 'the SDK logs out on its own record');
  const again = client();
  const auth = await again.collection(PEOPLE).authWithPassword(next, 'password123');
  assert.equal(auth.record.id, record.id);
  assert.equal(auth.record.verified, true);
});

test('impersonation gives a client acting as the record', async () => {
  const { record } = await person();
  const as = await su.collection(PEOPLE).impersonate(record.id, 60);
  assert.equal(as.authStore.record.id, record.id);
  assert.equal((await as.collection(PEOPLE).getOne(record.id)).id, record.id);
  const plain = client();
  await assert.rejects(plain.collection(PEOPLE).impersonate(record.id, 60), (e) => e.status === 401);
});

test('one-time codes, then MFA asking for a second method', async () => {
  const { email, record } = await person();
  const pb = client();
  const { otpId } = await pb.collection(PEOPLE).requestOTP(email);
  const [, code] = await waitForMail(email, CODE);
  await pb.collection(PEOPLE).authWithOTP(otpId, code);
  assert.equal(pb.authStore.record.id, record.id);

  // MFA on (OTP is the second method); the password alone answers 401 with an mfaId.
  await su.collections.update(PEOPLE, { mfa: { enabled: true, duration: 600 } });
  const { email: email2 } = await person();
  const mfa = client();
  const err = await mfa.collection(PEOPLE).authWithPassword(email2, 'password123').then(
    () => null,
    (e) => e,
  );
  assert.equal(err?.status, 401);
  const mfaId = err.response.mfaId;
  assert.ok(mfaId, JSON.stringify(err.response));
  assert.equal(mfa.authStore.isValid, false);
  const seen = mails().filter((m) => m.includes(email2) && CODE.test(m)).length;
  const second = await mfa.collection(PEOPLE).requestOTP(email2);
  const [, code2] = await waitForMail(email2, CODE, seen);
  await mfa.collection(PEOPLE).authWithOTP(second.otpId, code2, { mfaId });
  assert.ok(mfa.authStore.isValid);
  assert.equal(mfa.authStore.record.email, email2);
});
