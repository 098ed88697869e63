#!/usr/bin/env node
// An external Basalt job worker in JavaScript (Node 18+, no dependencies).
//
//   node worker.mjs URL EMAIL PASSWORD [--queue QUEUE] [--exit-when-idle]
//
// Signs in as a superuser, claims jobs of the kinds below from QUEUE (default `examples`), runs
// them and reports each outcome; a job that throws is failed with the error (the queue retries
// it with backoff and buries it after its attempts).
//
// Kinds: `sum` ({"numbers": [...]} -> {"sum": n}) and `explode` (always fails).

const [base, email, password, ...rest] = process.argv.slice(2);
if (!password) {
  console.error('usage: node worker.mjs URL EMAIL PASSWORD [--queue QUEUE] [--exit-when-idle]');
  process.exit(2);
}
const queue = rest.includes('--queue') ? rest[rest.indexOf('--queue') + 1] : 'examples';
const exitWhenIdle = rest.includes('--exit-when-idle');

async function call(path, body, token) {
  const res = await fetch(base.replace(/\/$/, '') + path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: token } : {}) },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

const handlers = {
  sum: async (payload) => ({ sum: (payload.numbers || []).reduce((a, b) => a + b, 0) }),
  explode: async () => {
    throw new Error('exploded on purpose');
  },
};

const { token } = await call('/api/collections/_superusers/auth-with-password', { identity: email, password });
let done = 0;
for (;;) {
  const { items } = await call('/api/jobs/claim', { queue, kinds: Object.keys(handlers), max: 5, lease: 30 }, token);
  if (items.length === 0) {
    if (exitWhenIdle) {
      console.log(`worker.mjs: ${done} jobs handled; the queue is idle`);
      break;
    }
    await new Promise((r) => setTimeout(r, 1000));
    continue;
  }
  for (const job of items) {
    try {
      const result = await handlers[job.kind](job.payload);
      await call(`/api/jobs/${job.id}/complete`, { lease: job.lease, result }, token);
    } catch (e) {
      await call(`/api/jobs/${job.id}/fail`, { lease: job.lease, error: String(e.message || e) }, token);
    }
    done++;
  }
}
