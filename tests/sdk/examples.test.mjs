// Runs the runnable examples under examples/ against the server, so they stay correct.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rand, superuser } from './server.mjs';
import { setup } from '../../examples/blog/setup.mjs';

test('examples/blog sets up collections and reads published posts with expand', async () => {
  const pb = await superuser();
  const suffix = `_${rand()}`;
  const page = await setup(pb, suffix);
  assert.equal(page.totalItems, 1);
  const post = page.items[0];
  assert.equal(post.title, 'Hello Basalt');
  assert.equal(post.expand.author.name, 'Ada');
  assert.equal(post.expand[`comments${suffix}_via_post`][0].text, 'Nice post');
});
