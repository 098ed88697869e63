import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, superuser } from './server.mjs';

test('health check as guest returns code 200', async () => {
  const pb = client();
  const res = await pb.health.check();
  assert.equal(res.code, 200);
  assert.equal(typeof res.message, 'string');
  assert.equal(res.message, 'API is healthy.');
  assert.deepEqual(res.data, {});
});

test('health check as superuser returns code 200 with extra data', async () => {
  const pb = await superuser();
  const res = await pb.health.check();
  assert.equal(res.code, 200);
  assert.equal(typeof res.data, 'object');
  assert.ok(res.data !== null);
});
