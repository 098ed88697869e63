//! SQLite's one writer: a thread that owns the write connection and commits the writes waiting
//! for it in groups (group commit).
//!
//! SQLite has one writer at a time, so writes queue anyway; committing each one alone costs a
//! transaction (and a WAL commit record, and a thread hand-off) per write. Here the thread takes
//! every write waiting (up to `MAX_GROUP`), runs each inside its own SAVEPOINT of one
//! `BEGIN IMMEDIATE` transaction and commits once. A write that fails is rolled back to its
//! savepoint and answered at once; the others are answered after the COMMIT, so nobody hears
//! "done" before their rows are durable and visible to readers. Effects are exactly those of
//! running the writes one after another in arrival order.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::store::StoreError;

/// The most writes committed together.
const MAX_GROUP: usize = 64;

/// What a finished job does once the group's COMMIT is known.
type Completion = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

/// One queued write.
trait Job: Send {
    /// Runs the write on `tx`: `Some` to be completed after the commit, `None` when it failed
    /// (it has answered already; its savepoint must be rolled back).
    fn run(self: Box<Self>, tx: &Transaction<'_>) -> Option<Completion>;
    /// Answers the write with `e` without running it (no transaction could be started).
    fn fail(self: Box<Self>, e: StoreError);
}

struct Write<F, T> {
    f: F,
    done: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
}

impl<F, T> Job for Write<F, T>
where
    F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>, tx: &Transaction<'_>) -> Option<Completion> {
        let Write { f, done } = *self;
        match f(tx) {
            Ok(v) => Some(Box::new(move |commit: Result<(), &StoreError>| {
                let _ = done.send(commit.map(|()| v).map_err(|e| StoreError::Db(e.to_string())));
            })),
            Err(e) => {
                let _ = done.send(Err(e));
                None
            }
        }
    }

    fn fail(self: Box<Self>, e: StoreError) {
        let _ = self.done.send(Err(e));
    }
}

enum Msg {
    Job(Box<dyn Job>),
    /// Checkpoint the WAL and stop; answered when done.
    Close(mpsc::Sender<()>),
}

/// The handle to the writer thread. Dropping it stops the thread once the queue is empty.
pub(crate) struct Writer {
    queue: mpsc::Sender<Msg>,
}

impl Writer {
    pub(crate) fn spawn(conn: Connection) -> Result<Writer, StoreError> {
        let (queue, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("basalt-sqlite-writer".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| StoreError::Db(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { queue })
    }

    /// Runs `f` in the writer's transaction (with the writes grouped with it) and answers after
    /// the commit.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (done, answer) = tokio::sync::oneshot::channel();
        self.queue
            .send(Msg::Job(Box::new(Write { f, done })))
            .map_err(|_| StoreError::Db("the writer has stopped".into()))?;
        // A dropped sender means the write panicked (the group went on without it).
        answer.await.map_err(|_| StoreError::Db("the write failed inside the writer".into()))?
    }

    /// Checkpoints the WAL into the database file and stops the thread.
    pub(crate) async fn close(&self) {
        let (ack, acked) = mpsc::channel();
        if self.queue.send(Msg::Close(ack)).is_ok() {
            let _ = tokio::task::spawn_blocking(move || acked.recv()).await;
        }
    }
}

fn run(mut conn: Connection, rx: mpsc::Receiver<Msg>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = Vec::new();
        let mut close = None;
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Msg::Job(job) => jobs.push(job),
                Msg::Close(ack) => {
                    close = Some(ack);
                    break;
                }
            }
            next = if jobs.len() < MAX_GROUP { rx.try_recv().ok() } else { None };
        }
        if !jobs.is_empty() {
            commit_group(&mut conn, jobs);
        }
        if let Some(ack) = close {
            let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
            let _ = ack.send(());
            return;
        }
    }
}

/// One transaction for `jobs`, each in its own savepoint; completions after the commit.
fn commit_group(conn: &mut Connection, jobs: Vec<Box<dyn Job>>) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            // Nothing ran: every write of the group fails with the cause.
            let e = StoreError::from(e);
            tracing::error!(error = %e, "the SQLite writer could not start a transaction");
            for job in jobs {
                job.fail(same_error(&e));
            }
            return;
        }
    };
    let mut completions = Vec::with_capacity(jobs.len());
    for job in jobs {
        if let Err(e) = tx.execute_batch("SAVEPOINT basalt_write") {
            job.fail(StoreError::from(e));
            continue;
        }
        let ran = std::panic::catch_unwind(AssertUnwindSafe(|| job.run(&tx)));
        match ran {
            Ok(Some(done)) => {
                let _ = tx.execute_batch("RELEASE basalt_write");
                completions.push(done);
            }
            // Failed (answered already) or panicked (its answer channel dropped): undo it.
            Ok(None) | Err(_) => {
                let _ = tx.execute_batch("ROLLBACK TO basalt_write; RELEASE basalt_write");
            }
        }
    }
    let committed = tx.commit().map_err(StoreError::from);
    for done in completions {
        done(committed.as_ref().map(|_| ()));
    }
}

/// A copy of `e` for each write of a failed group (errors are not `Clone`).
fn same_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        other => StoreError::Db(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many writes at once: the failing and the panicking ones leave nothing behind, every other
    /// one is committed, and each caller hears its own outcome.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn grouped_writes_fail_alone() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (n INTEGER PRIMARY KEY)")
            .expect("schema");
        let writer = std::sync::Arc::new(Writer::spawn(conn).expect("writer"));
        let mut tasks = Vec::new();
        for n in 0..200i64 {
            let w = writer.clone();
            tasks.push(tokio::spawn(async move {
                w.write(move |tx| {
                    tx.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
                    if n % 5 == 0 {
                        return Err(StoreError::RuleFailed);
                    }
                    if n == 77 {
                        panic!("deliberate panic inside a grouped write");
                    }
                    // A duplicate key fails at the statement: the write's own error.
                    if n % 7 == 0 {
                        tx.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
                    }
                    Ok(n)
                })
                .await
            }));
        }
        let mut ok = Vec::new();
        for (n, t) in (0..200i64).zip(tasks) {
            match t.await.expect("task") {
                Ok(v) => ok.push(v),
                Err(StoreError::RuleFailed) => assert_eq!(n % 5, 0),
                Err(e) => assert!(n == 77 || n % 7 == 0, "{n}: {e}"),
            }
        }
        let want: Vec<i64> = (0..200).filter(|n| n % 5 != 0 && n % 7 != 0 && *n != 77).collect();
        assert_eq!(ok, want);
        writer.close().await;
        let check = Connection::open(&path).expect("reopen");
        let mut stmt = check.prepare("SELECT n FROM t ORDER BY n").expect("select");
        let stored: Vec<i64> =
            stmt.query_map([], |r| r.get(0)).expect("rows").map(|r| r.expect("row")).collect();
        assert_eq!(stored, want, "exactly the successful writes are stored");
    }
}
