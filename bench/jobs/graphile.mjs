// The graphile-worker side of scripts/bench-jobs (which runs it; see that script's docstring).
// Every mode prints one JSON line on stdout (the worker also prints a READY line first);
// times are Unix ms from this machine's clock, so the script can combine two processes' times.
//
//   node graphile.mjs migrate URL
//   node graphile.mjs enqueue URL --connections C (--duration S | --jobs N | --rate R --duration S)
//                     [--batch B]
//       add_job('noop', '{"n":1}') (with --batch: add_jobs of B such jobs; N counts calls)
//       over a pg Pool of C connections: for S seconds as fast as
//       it goes, or exactly N jobs as fast as it goes, or R per second for S seconds (open loop:
//       job i is sent at start + i/R whatever the earlier ones are doing).
//   node graphile.mjs work URL --concurrency K --expect N
//       a worker (concurrency K) with a no-op task `noop`; once the task has run N times and
//       the jobs table is empty (a finished job is deleted), prints when, and each job's
//       latency: Date.now() when the task starts minus the job's created_at.

import pg from "pg";
import { Logger, run, runMigrations } from "graphile-worker";

const [mode, url, ...rest] = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = rest.indexOf(`--${name}`);
  return i >= 0 ? Number(rest[i + 1]) : fallback;
};
// Errors only, on stderr (the default logger writes a line per job).
const logger = new Logger(() => (level, message) => {
  if (level === "error") console.error(`graphile-worker: ${message}`);
});
// Resolves once written: stdout to a pipe is asynchronous, and process.exit() would cut it off.
const out = (obj) => new Promise((r) => process.stdout.write(JSON.stringify(obj) + "\n", r));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function enqueue() {
  const connections = opt("connections", 32);
  const duration = opt("duration", 0) * 1000;
  const jobs = opt("jobs", 0);
  const rate = opt("rate", 0);
  const pool = new pg.Pool({ connectionString: url, max: connections });
  // Open every connection first, so the timed part does not include connecting.
  const clients = await Promise.all(Array.from({ length: connections }, () => pool.connect()));
  clients.forEach((c) => c.release());
  const batch = opt("batch", 0);
  const specs = JSON.stringify(Array.from({ length: batch }, () => ({ identifier: "noop", payload: { n: 1 } })));
  const add = () =>
    batch > 0
      ? pool.query(
          "SELECT graphile_worker.add_jobs(array(SELECT json_populate_recordset(null::graphile_worker.job_spec, $1::json)))",
          [specs],
        )
      : pool.query("SELECT graphile_worker.add_job('noop', $1::json)", ['{"n":1}']);
  let ok = 0;
  let errors = 0;
  let firstError = null;
  const one = async () => {
    try {
      await add();
      ok++;
    } catch (e) {
      errors++;
      firstError ??= String(e.message ?? e);
    }
  };
  const start = Date.now();
  if (rate > 0) {
    const total = Math.round((rate * duration) / 1000);
    const pending = [];
    for (let i = 0; i < total; i++) {
      const wait = start + (i * 1000) / rate - Date.now();
      if (wait > 0) await sleep(wait);
      pending.push(one());
    }
    await Promise.all(pending);
  } else {
    let sent = 0;
    const more = () => (jobs > 0 ? sent < jobs : Date.now() - start < duration);
    const loop = async () => {
      while (more()) {
        sent++;
        await one();
      }
    };
    await Promise.all(Array.from({ length: connections }, loop));
  }
  const end = Date.now();
  await pool.end();
  await out({ start, end, ok, errors, firstError });
}

async function work() {
  const concurrency = opt("concurrency", 8);
  const expect = opt("expect", 0);
  const latencies = [];
  let ran = 0;
  let allRan;
  const ranAll = new Promise((r) => (allRan = r));
  const taskList = {
    noop: async (_payload, helpers) => {
      latencies.push(Date.now() - new Date(helpers.job.created_at).getTime());
      if (++ran === expect) allRan();
    },
  };
  const start = Date.now();
  const runner = await run({ connectionString: url, concurrency, taskList, logger, noHandleSignals: true });
  const ready = Date.now();
  await out({ ready });
  await ranAll;
  const handlersDone = Date.now();
  // A job is finished when its row is gone (completeJob runs after the task returns).
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  for (;;) {
    const { rows } = await client.query("SELECT count(*)::int AS n FROM graphile_worker._private_jobs");
    if (rows[0].n === 0) break;
    await sleep(2);
  }
  const end = Date.now();
  await client.end();
  await runner.stop();
  await out({ start, ready, handlersDone, end, ran, latencies });
}

const modes = {
  migrate: () => runMigrations({ connectionString: url, logger }).then(() => out({ ok: true })),
  enqueue,
  work,
};
if (!modes[mode] || !url) {
  console.error("usage: node graphile.mjs migrate|enqueue|work POSTGRES_URL [options]");
  process.exit(2);
}
modes[mode]().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
