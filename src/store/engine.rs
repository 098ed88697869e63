//! `Tx`: the few statements a store algorithm needs, on one open transaction of either engine,
//! so an algorithm that reads and writes in steps (a delete with its cascades, say) is written
//! once. The SQL it sends is built through `Dialect`; each engine only runs it.
//!
//! SQLite's transaction lives on the writer's blocking thread and cannot be shared with async
//! code, so its futures are ready at once: the statement runs when the future is made, and
//! `sqlite/mod.rs` drives the algorithm with `ready` on that thread. PostgreSQL's are
//! sqlx futures (boxed and `Send`, see the NOTE in `postgres/mod.rs`). Algorithms are loops, not
//! recursions, so their futures stay `Send` where the engine's are.

use std::future::Future;

use crate::model::collection::Collection;
use crate::store::dialect::Dialect;
use crate::store::query::Param;
use crate::store::StoreError;

/// One open transaction of an engine.
pub(crate) trait Tx {
    type Fut<'a, T: 'a>: Future<Output = Result<T, StoreError>> + 'a
    where
        Self: 'a;

    fn dialect(&self) -> &'static dyn Dialect;
    /// The first column of every row, as text.
    fn strings<'a>(&'a mut self, sql: &'a str, params: &'a [Param]) -> Self::Fut<'a, Vec<String>>;
    /// The first column of the first row, as an integer.
    fn int<'a>(&'a mut self, sql: &'a str, params: &'a [Param]) -> Self::Fut<'a, i64>;
    /// Runs a statement; the number of rows it changed.
    fn exec<'a>(&'a mut self, sql: &'a str, params: &'a [Param]) -> Self::Fut<'a, u64>;
    /// Runs a record INSERT/UPDATE of `coll`; a unique violation names `coll`'s fields.
    fn write<'a>(
        &'a mut self,
        coll: &'a Collection,
        sql: &'a str,
        params: &'a [Param],
    ) -> Self::Fut<'a, u64>;
    /// Runs a DDL statement, unprepared (nothing to cache: the schema is about to change).
    fn ddl<'a>(&'a mut self, sql: &'a str) -> Self::Fut<'a, ()>;
    /// Tells the other instances on the database, once this transaction commits, that the
    /// definition of `collection_id` changed (a no-op where there are none).
    fn schema_changed<'a>(&'a mut self, collection_id: &'a str) -> Self::Fut<'a, ()>;
}

/// Polls a future that is ready at once (SQLite's `Tx` futures) to its end on this thread.
pub(crate) fn ready<F: Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        // Every await point inside is a ready future, so the first poll completes; the loop
        // only guards against a future that yields without waiting on anything.
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
}
