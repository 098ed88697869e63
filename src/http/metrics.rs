//! Prometheus metrics of one server: request counts and latencies (recorded by
//! `observe::observe` for every request) and the database pool's usage (read when scraped),
//! rendered by `GET /api/metrics`, and who besides superusers may read them (the configured
//! token). No routes and no axum here.
//!
//! Every `App` has its own recorder; the `metrics` crate's global recorder is never installed.
//! It can be installed once per process, and the test suite runs many apps in one process: a
//! global recorder would mix their counts and overwrite each other's pool gauges. Values go to
//! this app's recorder through `metrics::with_local_recorder`, so the crate's macros work as
//! usual inside `Metrics`; a `metrics::counter!` anywhere else records nothing.

use std::collections::HashMap;
use std::time::Duration;

use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use subtle::ConstantTimeEq;

const REQUESTS: &str = "basalt_http_requests_total";
const DURATION: &str = "basalt_http_request_duration_seconds";
const POOL: &str = "basalt_db_pool_connections";
const POOL_MAX: &str = "basalt_db_pool_max_connections";
const FEED_POSITION: &str = "basalt_change_feed_position";
const FEED_LAG: &str = "basalt_change_feed_lag_seconds";
const JOBS: &str = "basalt_jobs";
const JOBS_WAIT: &str = "basalt_jobs_oldest_pending_seconds";

/// Latency buckets in seconds: from a cached read (~1 ms) to the pool's acquire timeout (5 s)
/// and beyond.
const BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The route label of requests no route matched (unknown paths, preflights answered before
/// routing): one value instead of the raw path keeps the label set bounded.
pub const UNMATCHED: &str = "unmatched";

/// The `Content-Type` of Prometheus' text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A request counter and latency histogram of one (route, method, status).
type Handles = (metrics::Counter, metrics::Histogram);
/// Registered handles by route template, then (method, status).
type HandleCache = HashMap<String, HashMap<(&'static str, u16), Handles>>;

/// One server's metrics.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    token: Option<String>,
    /// Handles already registered, by route, then (method, status): the recorder's registry
    /// lookup (label vector, hashing) costs an allocation or three per request; a read lock and
    /// two map lookups do not. Bounded: routes are templates, methods and statuses few.
    handles: std::sync::RwLock<HandleCache>,
}

impl Metrics {
    /// `token`: a bearer token that may read the metrics besides superusers.
    pub fn new(token: Option<String>) -> Metrics {
        // Histograms with fixed buckets (aggregatable across instances) rather than the
        // exporter's default summaries. `set_buckets_for_metric` only fails on an empty list.
        let builder = PrometheusBuilder::new();
        let builder = match builder.set_buckets_for_metric(Matcher::Full(DURATION.into()), BUCKETS)
        {
            Ok(b) => b,
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::describe_counter!(REQUESTS, "HTTP requests by route template, method, status");
            metrics::describe_histogram!(
                DURATION,
                metrics::Unit::Seconds,
                "HTTP request latency by route template and method"
            );
            metrics::describe_gauge!(POOL, "Database connections by state (in_use, idle)");
            metrics::describe_gauge!(POOL_MAX, "Database connections the pool may open");
            metrics::describe_gauge!(
                FEED_POSITION,
                "Outbox position of the last change published on this instance's change feed"
            );
            metrics::describe_gauge!(JOBS, "Jobs in the queue by queue and state");
            metrics::describe_gauge!(
                JOBS_WAIT,
                "How long the oldest due pending job of a queue has waited to start"
            );
            metrics::describe_gauge!(
                FEED_LAG,
                "Commit-to-publication delay of the last change from another instance"
            );
        });
        Metrics {
            recorder,
            handle,
            token: token.filter(|t| !t.is_empty()),
            handles: std::sync::RwLock::new(HashMap::new()),
        }
    }

    /// Counts one finished request. `route` is the matched route template (or `UNMATCHED`),
    /// never the raw path; unusual methods are folded into `OTHER`, so neither label can grow
    /// without bound.
    pub fn record_request(&self, route: &str, method: &str, status: u16, took: Duration) {
        let method: &'static str = match method {
            "GET" => "GET",
            "HEAD" => "HEAD",
            "POST" => "POST",
            "PUT" => "PUT",
            "PATCH" => "PATCH",
            "DELETE" => "DELETE",
            "OPTIONS" => "OPTIONS",
            _ => "OTHER",
        };
        let seconds = took.as_secs_f64();
        let cached = self
            .handles
            .read()
            .ok()
            .and_then(|m| m.get(route).and_then(|by| by.get(&(method, status))).cloned());
        let (counter, histogram) = match cached {
            Some(h) => h,
            None => {
                let h = metrics::with_local_recorder(&self.recorder, || {
                    let (r, m) = (route.to_string(), method);
                    (
                        metrics::counter!(REQUESTS, "route" => r.clone(), "method" => m,
                                          "status" => status.to_string()),
                        metrics::histogram!(DURATION, "route" => r, "method" => m),
                    )
                });
                if let Ok(mut map) = self.handles.write() {
                    map.entry(route.to_string()).or_default().insert((method, status), h.clone());
                }
                h
            }
        };
        counter.increment(1);
        histogram.record(seconds);
    }

    /// Sets the pool gauges (called when scraped, so they are current).
    pub fn set_pool(&self, max: u32, idle: u32, in_use: u32) {
        metrics::with_local_recorder(&self.recorder, || {
            metrics::gauge!(POOL, "state" => "in_use").set(f64::from(in_use));
            metrics::gauge!(POOL, "state" => "idle").set(f64::from(idle));
            metrics::gauge!(POOL_MAX).set(f64::from(max));
        });
    }

    /// Sets the change-feed gauges (called when scraped).
    pub fn set_feed(&self, position: i64, lag_ms: i64) {
        metrics::with_local_recorder(&self.recorder, || {
            metrics::gauge!(FEED_POSITION).set(position as f64);
            metrics::gauge!(FEED_LAG).set(lag_ms as f64 / 1000.0);
        });
    }

    /// Sets the queue gauges from `(queue, state, count)` (called when scraped): every state of
    /// each queue seen, 0 when it has none, so a drained state does not keep its old count.
    pub fn set_jobs(&self, counts: &[(String, String, i64)]) {
        const STATES: [&str; 5] = ["pending", "running", "succeeded", "failed", "dead"];
        metrics::with_local_recorder(&self.recorder, || {
            let mut queues: Vec<&str> = counts.iter().map(|(q, _, _)| q.as_str()).collect();
            queues.dedup();
            for q in queues {
                for state in STATES {
                    let n = counts
                        .iter()
                        .find(|(cq, cs, _)| cq == q && cs == state)
                        .map_or(0, |(_, _, n)| *n);
                    metrics::gauge!(JOBS, "queue" => q.to_string(), "state" => state).set(n as f64);
                }
            }
        });
    }

    /// Sets the wait of each queue's oldest due pending job (queue latency), in seconds.
    pub fn set_job_waits(&self, waits: &[(String, i64)]) {
        metrics::with_local_recorder(&self.recorder, || {
            for (q, ms) in waits {
                metrics::gauge!(JOBS_WAIT, "queue" => q.clone()).set(*ms as f64 / 1000.0);
            }
        });
    }

    /// Everything recorded so far, in Prometheus' text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Folds recorded latencies into their buckets. Without a scrape they would pile up: the
    /// app runs this on a timer (the exporter's own HTTP listener, unused here, would).
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// Whether an `Authorization` header carries the configured token (`Bearer <token>`).
    /// The comparison takes the same time wherever the first difference is (the token's
    /// length is not hidden; use a long random one).
    pub fn token_allows(&self, authorization: Option<&str>) -> bool {
        let (Some(expected), Some(header)) = (&self.token, authorization) else {
            return false;
        };
        let header = header.trim();
        let Some((scheme, given)) = header.split_once(' ') else { return false };
        scheme.eq_ignore_ascii_case("bearer")
            && bool::from(given.trim().as_bytes().ct_eq(expected.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_needs_the_bearer_scheme_and_every_byte() {
        let m = Metrics::new(Some("abc123".into()));
        assert!(m.token_allows(Some("Bearer abc123")));
        assert!(m.token_allows(Some("bearer  abc123 ")));
        for wrong in ["abc123", "Bearer abc12", "Bearer abc1234", "Basic abc123", "Bearer "] {
            assert!(!m.token_allows(Some(wrong)), "{wrong:?}");
        }
        assert!(!m.token_allows(None));
        let none = Metrics::new(Some(String::new()));
        assert!(!none.token_allows(Some("Bearer ")), "an empty token is no token");
    }

    /// Two apps in one process keep separate counts (no global recorder).
    #[test]
    fn each_instance_counts_its_own_requests() {
        let (a, b) = (Metrics::new(None), Metrics::new(None));
        a.record_request("/api/x/{id}", "GET", 200, Duration::from_millis(3));
        a.record_request("/api/x/{id}", "BREW", 418, Duration::from_millis(3));
        a.set_pool(8, 1, 2);
        let text = a.render();
        assert!(
            text.contains(
                r#"basalt_http_requests_total{route="/api/x/{id}",method="GET",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"method="OTHER",status="418"} 1"#), "{text}");
        assert!(text.contains("basalt_http_request_duration_seconds_bucket{"), "{text}");
        assert!(text.contains(r#"basalt_db_pool_connections{state="in_use"} 2"#), "{text}");
        assert!(text.contains("basalt_db_pool_max_connections 8"), "{text}");
        assert!(!b.render().contains("basalt_http_requests_total{"), "b saw a's request");
    }
}
