//! The cron ticker: fires the due ticks of the stored schedules (`service::crons`). Every
//! instance runs one; the store's compare-and-set on a schedule's last tick makes each tick
//! enqueue once whichever instances see it. Sleeps until the nearest next tick, at most
//! `RELOAD` (schedules saved on another instance), and wakes when one is saved here.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::service::crons::{due_tick, next_tick, parse_expression};
use crate::service::Service;

/// The longest sleep: how soon a schedule saved on another instance is seen.
const RELOAD: Duration = Duration::from_secs(10);

/// Runs until `stop` turns true.
pub async fn run(svc: Arc<Service>, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        let now = chrono::Utc::now().timestamp_millis();
        let mut sleep_ms = i64::try_from(RELOAD.as_millis()).unwrap_or(10_000);
        match svc.crons().await {
            Ok(crons) => {
                for c in crons {
                    let Ok(expr) = parse_expression(&c.expression) else { continue };
                    // A new schedule's first tick is the first one after it was saved.
                    let after = if c.last_tick > 0 { c.last_tick } else { c.updated };
                    if let Some(tick) = due_tick(&expr, after, now) {
                        match svc.fire_cron(&c, tick).await {
                            Ok(true) => tracing::info!(cron = %c.id, tick, "cron: fired"),
                            Ok(false) => {}
                            Err(e) => {
                                tracing::warn!(cron = %c.id, error = %e, "cron: firing failed")
                            }
                        }
                    }
                    if let Some(next) = next_tick(&expr, now.max(after)) {
                        sleep_ms = sleep_ms.min(next - now);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cron: reading the schedules failed"),
        }
        // Wake just after the tick (clocks of instances differ a little; the tick is the same).
        let wait = Duration::from_millis(u64::try_from(sleep_ms.max(0)).unwrap_or(0) + 5);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = svc.crons_changed().notified() => {}
            _ = stop.changed() => {}
        }
    }
}
