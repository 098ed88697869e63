//! The change feed's vocabulary and its outbox statements, shared by both engines.
//!
//! Every record write also writes one `_changes` row per record it created, updated or deleted
//! (cascaded deletes and relation clean-ups included) in the same transaction, and reports the
//! same list as `Vec<Change>`. After the commit the store publishes those changes on an
//! in-process broadcast (`Store::subscribe`); on PostgreSQL a tailer (`postgres/feed.rs`) also
//! reads other instances' rows from the outbox and publishes them on the same broadcast. The
//! outbox position lets a consumer that lagged or restarted catch up (`Store::changes_since`).
//! Nothing here knows HTTP or rules.

use serde_json::Value;

use crate::store::dialect::Dialect;
use crate::store::query::Param;
use crate::store::Row;

/// Broadcast capacity: a subscriber further behind than this many changes gets
/// `RecvError::Lagged(n)` and catches up from the outbox.
pub const FEED_CAPACITY: usize = 4096;

/// What a write did to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "create" => Some(Action::Create),
            "update" => Some(Action::Update),
            "delete" => Some(Action::Delete),
            _ => None,
        }
    }
}

/// One record changed by a committed write.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The outbox position: increasing, never reused; a consumer resumes after it.
    pub pos: i64,
    pub collection_id: String,
    pub record_id: String,
    pub action: Action,
    /// The record as written (create, update through the API) or as it was when deleted, when
    /// the writer had it at hand; `None` for relation clean-ups and changes read back from the
    /// outbox (another instance's): consumers read the record themselves then (a deleted one
    /// is gone: the outbox carries its row, `data`).
    pub record: Option<Row>,
    /// Written by this process (`false`: another instance on the same database).
    pub local: bool,
}

/// How current this instance's change feed is, for metrics.
#[derive(Debug, Default)]
pub struct FeedStats {
    /// The position of the last change published on this instance's feed.
    pub position: std::sync::atomic::AtomicI64,
    /// Milliseconds from the commit of the last change published to its publication (other
    /// instances' changes on PostgreSQL; local changes are published right after their commit).
    pub lag_ms: std::sync::atomic::AtomicI64,
}

impl FeedStats {
    /// Records a publication; `lag_ms` for changes read back from the outbox.
    pub(crate) fn published(&self, pos: i64, lag_ms: Option<i64>) {
        use std::sync::atomic::Ordering::Relaxed;
        self.position.fetch_max(pos, Relaxed);
        if let Some(lag) = lag_ms {
            self.lag_ms.store(lag.max(0), Relaxed);
        }
    }
}

/// A change about to be written to the outbox (its position is not known yet).
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub collection_id: String,
    pub record_id: String,
    pub action: Action,
    pub record: Option<Row>,
}

impl Pending {
    pub(crate) fn new(collection_id: &str, record_id: &str, action: Action) -> Pending {
        Pending {
            collection_id: collection_id.to_string(),
            record_id: record_id.to_string(),
            action,
            record: None,
        }
    }

    pub(crate) fn with_record(mut self, row: &Row) -> Pending {
        self.record = Some(row.clone());
        self
    }

    /// The parameters of [`insert_sql`] after `first` (instance, collection, record, action,
    /// created, data: the row of a delete).
    pub(crate) fn params(&self, instance: &str) -> Vec<Param> {
        let data = match (&self.action, &self.record) {
            (Action::Delete, Some(row)) => Param::Text(Value::Object(row.clone()).to_string()),
            _ => Param::Null,
        };
        vec![
            Param::Text(instance.to_string()),
            Param::Text(self.collection_id.clone()),
            Param::Text(self.record_id.clone()),
            Param::Text(self.action.as_str().to_string()),
            Param::Int(chrono::Utc::now().timestamp_millis()),
            data,
        ]
    }

    pub(crate) fn into_change(self, pos: i64) -> Change {
        Change {
            pos,
            collection_id: self.collection_id,
            record_id: self.record_id,
            action: self.action,
            record: self.record,
            local: true,
        }
    }
}

/// `INSERT INTO _changes …` with its six parameters starting at `first`. The position is the
/// new row's `pos` (SQLite: its rowid; PostgreSQL adds `RETURNING pos`).
pub(crate) fn insert_sql(d: &dyn Dialect, first: usize) -> String {
    let p: Vec<String> = (first..first + 6).map(|i| d.placeholder(i)).collect();
    format!(
        "INSERT INTO _changes (instance, collection, record, action, created, data) VALUES ({})",
        p.join(", ")
    )
}

/// The outbox rows after `pos`, oldest first, at most `limit`.
pub(crate) fn since_sql(d: &dyn Dialect) -> String {
    format!(
        "SELECT pos, instance, collection, record, action, data FROM _changes \
         WHERE pos > {} ORDER BY pos LIMIT {}",
        d.placeholder(1),
        d.placeholder(2)
    )
}

/// How long outbox rows are kept (`Store::prune_changes`): consumers resuming from an older
/// position get `StoreError::ChangesPruned` and must resynchronise.
pub const RETENTION: chrono::Duration = chrono::Duration::hours(24);

/// The statements of one pruning round, in order: (raise the floor to the newest position
/// older than the cut-off, delete up to the floor but never the newest row). Raising the floor first means a crash in
/// between leaves rows a consumer may still read, never a silent hole. Both bind the cut-off
/// time (Unix milliseconds) as their one parameter.
pub(crate) fn prune_sql(d: &dyn Dialect) -> [String; 2] {
    let cut = d.placeholder(1);
    [
        format!(
            "UPDATE _changes_pruned SET through = \
             (SELECT MAX(pos) FROM _changes WHERE created < {cut}) \
             WHERE id = 1 AND (SELECT MAX(pos) FROM _changes WHERE created < {cut}) > through"
        ),
        // The newest row stays: SQLite's next position is max(rowid) + 1.
        "DELETE FROM _changes WHERE pos <= (SELECT through FROM _changes_pruned WHERE id = 1) \
         AND pos < (SELECT MAX(pos) FROM _changes)"
            .to_string(),
    ]
}

/// The highest pruned position.
pub(crate) const PRUNED_SQL: &str = "SELECT through FROM _changes_pruned WHERE id = 1";

/// An outbox row: `(pos, instance, collection, record, action, data)`.
pub(crate) type OutboxRow = (i64, String, String, String, String, Option<String>);

/// A change read back from the outbox (a delete with the row it removed).
pub(crate) fn from_outbox(
    own_instance: &str,
    (pos, instance, collection, record, action, data): OutboxRow,
) -> Change {
    let row = data.and_then(|d| match serde_json::from_str::<Value>(&d) {
        Ok(Value::Object(row)) => Some(row),
        _ => None,
    });
    Change {
        pos,
        collection_id: collection,
        record_id: record,
        // Rows are only written by `insert_sql` with `Action::as_str`.
        action: Action::parse(&action).unwrap_or(Action::Update),
        record: row,
        local: instance == own_instance,
    }
}

/// A record id as stored in the outbox.
pub(crate) fn id_of(row: &Row) -> &str {
    row.get("id").and_then(Value::as_str).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_through_text() {
        for a in [Action::Create, Action::Update, Action::Delete] {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        assert_eq!(Action::parse("drop"), None);
    }
}
