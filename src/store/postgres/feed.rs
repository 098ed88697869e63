//! PostgreSQL: other instances' changes on this instance's feed, read from the `_changes` outbox.
//!
//! Writers do not NOTIFY inside their transactions: a transaction with a pending NOTIFY takes a
//! database-wide lock at commit (to keep the notification queue in commit order), which would
//! serialise every writer. Instead each write commits its outbox rows, and afterwards the
//! instance sends one debounced `pg_notify` in a tiny transaction of its own (`spawn_signaler`);
//! every instance's tailer (`spawn_tailer`) wakes on it, or polls when notifications are lost.
//!
//! Positions come from a sequence, so they are not committed in order: a tail that read past a
//! position whose transaction was still open would skip that row forever. [`Tail`] therefore
//! stops at a gap until the gap is explained: either the row appears, or every transaction that
//! could have written it has ended (the snapshot's `xmin` passed the `xmax` seen when the gap
//! was first met; the position was drawn by a transaction that already had an xid, see
//! `postgres::with_outbox`), and then the position belongs to a rolled-back transaction.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPool;
use sqlx::Row as _;
use tokio::sync::{broadcast, watch, Notify};

use crate::store::changes::{self, Change, FeedStats};

/// The channel of the out-of-transaction wake-up signal; no payload.
pub(crate) const CHANGES_CHANNEL: &str = "basalt_changes";
/// How often the tailer reads the outbox when no signal arrives.
const POLL: Duration = Duration::from_millis(500);
/// The least time between two wake-up signals of one instance (bursts coalesce).
const SIGNAL_EVERY: Duration = Duration::from_millis(10);
/// Outbox rows read per round.
const BATCH: i64 = 1000;

/// One outbox row: `(pos, instance, collection, record, action)`.
pub(crate) use crate::store::changes::OutboxRow;

/// The tail's position: every change up to `last` was published or is known not to exist.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Tail {
    pub last: i64,
    /// The first missing position after `last` and the `xmax` of the snapshot that first
    /// showed the gap.
    gap: Option<(i64, u64)>,
}

impl Tail {
    pub(crate) fn at(last: i64) -> Tail {
        Tail { last, gap: None }
    }

    /// Takes outbox rows read after `last` (ascending) under a snapshot with `xmin`/`xmax`;
    /// returns the rows that may be published now, in position order.
    pub(crate) fn advance(&mut self, rows: Vec<OutboxRow>, xmin: u64, xmax: u64) -> Vec<OutboxRow> {
        let mut out = Vec::new();
        for row in rows {
            if row.0 <= self.last {
                continue;
            }
            if row.0 > self.last + 1 {
                let missing = self.last + 1;
                let horizon = match self.gap {
                    Some((p, h)) if p == missing => h,
                    _ => xmax,
                };
                if xmin < horizon {
                    // A transaction that may still commit the missing rows is open: wait.
                    self.gap = Some((missing, horizon));
                    break;
                }
                // Every transaction that could have written them has ended: rolled back.
            }
            self.last = row.0;
            self.gap = None;
            out.push(row);
        }
        out
    }
}

/// Reads the outbox after `last` with the snapshot bounds of the same statement.
/// Also the age in milliseconds of the newest row read (its commit-to-read delay, near enough).
async fn read(pool: &PgPool, last: i64) -> Result<(Vec<OutboxRow>, u64, u64, i64), sqlx::Error> {
    let rows = sqlx::query(
        "WITH s AS (SELECT pg_current_snapshot() AS snap) \
         SELECT pg_snapshot_xmin(s.snap)::text, pg_snapshot_xmax(s.snap)::text, \
                c.pos, c.instance, c.collection, c.record, c.action, c.data, \
                (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint - c.created \
         FROM s LEFT JOIN LATERAL \
              (SELECT * FROM _changes WHERE pos > $1 ORDER BY pos LIMIT $2) c ON true \
         ORDER BY c.pos",
    )
    .bind(last)
    .bind(BATCH)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    let (mut xmin, mut xmax, mut age) = (0u64, 0u64, 0i64);
    for r in &rows {
        xmin = r.try_get::<String, _>(0)?.parse().unwrap_or(0);
        xmax = r.try_get::<String, _>(1)?.parse().unwrap_or(0);
        if let Some(pos) = r.try_get::<Option<i64>, _>(2)? {
            let data: Option<String> = r.try_get(7)?;
            out.push((pos, r.try_get(3)?, r.try_get(4)?, r.try_get(5)?, r.try_get(6)?, data));
            age = r.try_get::<Option<i64>, _>(8)?.unwrap_or(0);
        }
    }
    Ok((out, xmin, xmax, age))
}

/// Publishes other instances' changes from the outbox, starting after the last position
/// committed when it starts (changes made before this instance started are not replayed;
/// `Store::changes_since` reads them).
pub(crate) fn spawn_tailer(
    pool: PgPool,
    instance: String,
    feed: broadcast::Sender<Change>,
    stats: Arc<FeedStats>,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut tail: Option<Tail> = None;
        loop {
            let round = async {
                let t = match &mut tail {
                    Some(t) => t,
                    None => {
                        let last: i64 =
                            sqlx::query_scalar("SELECT COALESCE(MAX(pos), 0) FROM _changes")
                                .fetch_one(&pool)
                                .await?;
                        tail.insert(Tail::at(last))
                    }
                };
                loop {
                    let (rows, xmin, xmax, age) = read(&pool, t.last).await?;
                    let full = rows.len() as i64 >= BATCH;
                    for row in t.advance(rows, xmin, xmax) {
                        let change = changes::from_outbox(&instance, row);
                        if !change.local {
                            stats.published(change.pos, Some(age));
                            // No subscriber is fine: nobody is listening yet.
                            let _ = feed.send(change);
                        }
                    }
                    if !full || t.gap.is_some() {
                        return Ok::<(), sqlx::Error>(());
                    }
                }
            };
            if let Err(e) = round.await {
                tracing::warn!(error = %e, "change feed: reading the outbox failed; retrying");
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.changed() => return,
            }
        }
    });
}

/// Sends the wake-up signal after local commits: one `pg_notify` in its own transaction per
/// burst, at most every [`SIGNAL_EVERY`].
pub(crate) fn spawn_signaler(pool: PgPool, signal: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = signal.notified() => {}
                _ = stop.changed() => return,
            }
            let sent =
                sqlx::query("SELECT pg_notify($1, '')").bind(CHANGES_CHANNEL).execute(&pool).await;
            if let Err(e) = sent {
                // Other instances still poll; the signal only shortens their wait.
                tracing::debug!(error = %e, "change feed: wake-up signal not sent");
            }
            tokio::time::sleep(SIGNAL_EVERY).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pos: i64) -> OutboxRow {
        (pos, "i".into(), "c".into(), format!("r{pos}"), "create".into(), None)
    }

    fn positions(rows: &[OutboxRow]) -> Vec<i64> {
        rows.iter().map(|r| r.0).collect()
    }

    #[test]
    fn contiguous_rows_pass_in_order() {
        let mut t = Tail::at(0);
        assert_eq!(positions(&t.advance(vec![row(1), row(2), row(3)], 10, 10)), [1, 2, 3]);
        assert_eq!(t.last, 3);
    }

    #[test]
    fn a_gap_waits_while_its_transaction_may_be_open() {
        let mut t = Tail::at(0);
        // Position 2 is missing and transactions 7.. are open: 3 must wait.
        assert_eq!(positions(&t.advance(vec![row(1), row(3)], 7, 12)), [1]);
        assert_eq!(t.last, 1);
        // Still open (xmin 9 < horizon 12): nothing new, even though 4 arrived.
        assert!(t.advance(vec![row(3), row(4)], 9, 15).is_empty());
        // The open transaction committed position 2: everything flows, in order.
        assert_eq!(positions(&t.advance(vec![row(2), row(3), row(4)], 13, 15)), [2, 3, 4]);
    }

    #[test]
    fn a_gap_whose_transactions_all_ended_is_skipped() {
        let mut t = Tail::at(5);
        assert!(t.advance(vec![row(8)], 3, 20).is_empty());
        // Every transaction below 20 ended and 6, 7 never appeared: rolled back.
        assert_eq!(positions(&t.advance(vec![row(8), row(9)], 20, 25)), [8, 9]);
        assert_eq!(t.last, 9);
    }

    #[test]
    fn the_horizon_is_the_one_seen_first() {
        let mut t = Tail::at(0);
        assert!(t.advance(vec![row(2)], 5, 10).is_empty());
        // A later snapshot's larger xmax must not push the horizon: 10 decides.
        assert!(t.advance(vec![row(2)], 8, 30).is_empty());
        assert_eq!(positions(&t.advance(vec![row(2)], 10, 40)), [2]);
    }
}
