//! Realtime: PocketBase's SSE subscriptions, fed by the change feed. One `Hub` per process holds
//! the connected clients (a random 40-character id each, the auth bound by their first
//! subscription, their topics); `run_dispatch` follows the change feed (this instance's writes
//! and, on PostgreSQL, every other instance's) and sends each client the events its rules allow,
//! through a bounded queue per client: a client that stops reading is dropped when its queue is
//! full, so it can neither grow memory nor hold up the others.
//!
//! The wire format, limits and auth rules are PocketBase 0.40.6's, probed (see
//! docs/realtime.md). Must not: know HTTP (the routes turn a client's queue into a response).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::Notify;

use crate::model::collection::Collection;
use crate::model::request::{AuthRecord, RequestInfo};
use crate::service::realtime::RealtimeView;
use crate::service::Service;
use crate::store::changes::{Action, Change};

/// Topics per client (PocketBase: 1000).
pub const MAX_TOPICS: usize = 1000;
/// Bytes per topic (PocketBase: 2500, counted in bytes).
pub const MAX_TOPIC_BYTES: usize = 2500;
/// Client id length accepted by a subscription request (PocketBase: 1 to 255).
pub const MAX_CLIENT_ID: usize = 255;
/// Events queued for one client before it counts as not reading and is dropped.
pub const CLIENT_QUEUE: usize = 512;
/// A stream with nothing delivered for this long is closed (PocketBase: 5 minutes); the SDKs
/// reconnect.
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5 * 60);
/// Every stream is closed after this long (PocketBase: 30 minutes).
pub const MAX_LIFETIME: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// A subscription: the text as the client sent it (events are named by it, byte for byte), the
/// part before `?`, and its `options` (`query`: `expand`, `fields`, `filter`, anything rules
/// read as `@request.query.*`; `headers`: `@request.headers.*`).
#[derive(Debug, Clone)]
pub struct Topic {
    pub raw: String,
    path: String,
    query: Map<String, Value>,
    headers: Map<String, Value>,
}

impl Topic {
    /// Parses a topic as PocketBase does: `?options=<percent-encoded JSON>`; options that do not
    /// parse are ignored (the topic still matches, with no options).
    pub fn parse(raw: &str) -> Topic {
        let (path, qs) = raw.split_once('?').unwrap_or((raw, ""));
        let mut query = Map::new();
        let mut headers = Map::new();
        let options = url::form_urlencoded::parse(qs.as_bytes())
            .find(|(k, _)| k == "options")
            .map(|(_, v)| v.into_owned());
        if let Some(Ok(Value::Object(o))) = options.map(|s| serde_json::from_str::<Value>(&s)) {
            if let Some(Value::Object(q)) = o.get("query") {
                query = q.iter().map(|(k, v)| (k.clone(), Value::String(text(v)))).collect();
            }
            if let Some(Value::Object(h)) = o.get("headers") {
                headers = h
                    .iter()
                    .map(|(k, v)| (crate::util::snake_case(k), Value::String(text(v))))
                    .collect();
            }
        }
        Topic { raw: raw.to_string(), path: path.to_string(), query, headers }
    }

    /// Whether a change of `record_id` in `coll` concerns this topic, and through which rule:
    /// `Some(true)` the list rule (`C/*`, or the bare `C`), `Some(false)` the view rule (`C/ID`).
    fn matches(&self, coll: &Collection, record_id: &str) -> Option<bool> {
        let (c, rest) = match self.path.split_once('/') {
            Some((c, rest)) => (c, Some(rest)),
            None => (self.path.as_str(), None),
        };
        if c != coll.name && c != coll.id {
            return None;
        }
        match rest {
            None | Some("*") => Some(true),
            Some(id) if id == record_id => Some(false),
            Some(_) => None,
        }
    }

    fn option(&self, key: &str) -> Option<&str> {
        self.query.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
    }
}

/// A JSON option value as text (PocketBase's `cast.ToString`).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// What a client's subscription request may change.
#[derive(Debug, Default)]
struct ClientState {
    /// Whether a subscription request bound an auth yet (a guest binding counts).
    bound: bool,
    auth: Option<AuthRecord>,
    topics: Vec<Arc<Topic>>,
}

/// The frames waiting for one client's stream. An idle client's queue holds no allocation
/// (a channel would keep a block of slots per client: a kilobyte each at 10,000 clients).
#[derive(Default)]
pub struct Queue {
    /// The frames, and whether the hub let go of the client (the stream ends when drained).
    items: Mutex<(VecDeque<Bytes>, bool)>,
    /// Wakes the one stream reading this queue (`notify_one` keeps a permit, so a wake-up
    /// between its check and its wait is not lost).
    ready: Notify,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, (VecDeque<Bytes>, bool)> {
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a frame; `false` if the queue is closed or already holds `CLIENT_QUEUE` frames.
    fn push(&self, frame: Bytes) -> bool {
        let mut q = self.lock();
        if q.1 || q.0.len() >= CLIENT_QUEUE {
            return false;
        }
        q.0.push_back(frame);
        drop(q);
        self.ready.notify_one();
        true
    }

    fn close(&self) {
        self.lock().1 = true;
        self.ready.notify_one();
    }

    /// The next frame; `None` once the queue is closed and drained.
    pub async fn next(&self) -> Option<Bytes> {
        loop {
            {
                let mut q = self.lock();
                if let Some(frame) = q.0.pop_front() {
                    if q.0.is_empty() && q.0.capacity() > 16 {
                        // A burst is over: give its memory back.
                        q.0 = VecDeque::new();
                    }
                    return Some(frame);
                }
                if q.1 {
                    return None;
                }
            }
            self.ready.notified().await;
        }
    }
}

/// One connected SSE client.
pub struct Client {
    pub id: String,
    /// The address its stream came from, when known.
    ip: Option<std::net::IpAddr>,
    state: Mutex<ClientState>,
    queue: Arc<Queue>,
}

impl Client {
    fn state(&self) -> std::sync::MutexGuard<'_, ClientState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues one SSE frame; `false` when the client is gone or its queue is full.
    fn send(&self, event: &str, data: &str) -> bool {
        self.queue.push(frame(&self.id, event, data))
    }
}

/// `id:<client>\nevent:<name>\ndata:<json>\n\n`, PocketBase's framing (no spaces, `\n` only).
pub fn frame(client_id: &str, event: &str, data: &str) -> Bytes {
    Bytes::from(format!("id:{client_id}\nevent:{event}\ndata:{data}\n\n"))
}

/// Why a subscription request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SubscribeError {
    /// No connected client has this id.
    UnknownClient,
    /// The client is bound to another auth than the request's.
    AuthMismatch,
    /// The request comes from another address than the stream (PocketBase pins clients).
    OtherAddress,
}

/// The connected clients of this process.
#[derive(Default)]
pub struct Hub {
    clients: RwLock<HashMap<String, Arc<Client>>>,
}

/// Removes its client from the hub when the stream that owns it ends.
pub struct Connection {
    pub client_id: String,
    pub events: Arc<Queue>,
    hub: Arc<Hub>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.hub.remove(&self.client_id);
    }
}

impl Hub {
    /// A new client; its stream starts with PocketBase's `PB_CONNECT` event.
    pub fn connect(self: &Arc<Self>, ip: Option<std::net::IpAddr>) -> Connection {
        let id = crate::util::random_alnum(40);
        let events = Arc::new(Queue::default());
        let queue = events.clone();
        let client = Arc::new(Client { id: id.clone(), ip, state: Mutex::default(), queue });
        client.send("PB_CONNECT", &format!("{{\"clientId\":\"{id}\"}}"));
        self.write().insert(id.clone(), client);
        Connection { client_id: id, events, hub: self.clone() }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Client>>> {
        self.clients.write().unwrap_or_else(|p| p.into_inner())
    }

    fn snapshot(&self) -> Vec<Arc<Client>> {
        self.clients.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    fn remove(&self, id: &str) {
        if let Some(c) = self.write().remove(id) {
            c.queue.close();
        }
    }

    /// Drops every client: their streams end once their queued events are sent (shutdown).
    pub fn close_all(&self) {
        for (_, c) in self.write().drain() {
            c.queue.close();
        }
    }

    /// Connected clients now.
    pub fn len(&self) -> usize {
        self.clients.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces a client's topics and binds `auth` to it (PocketBase: the first request binds
    /// whatever auth it carries; later a guest may become authenticated, any other change is
    /// refused and leaves the client as it was).
    pub fn subscribe(
        &self,
        client_id: &str,
        ip: Option<std::net::IpAddr>,
        auth: Option<AuthRecord>,
        topics: Vec<String>,
    ) -> Result<(), SubscribeError> {
        let client = self
            .clients
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(client_id)
            .cloned()
            .ok_or(SubscribeError::UnknownClient)?;
        if client.ip.is_some() && ip.is_some() && client.ip != ip {
            return Err(SubscribeError::OtherAddress);
        }
        let mut state = client.state();
        if let Some(bound) = &state.auth {
            let same = auth
                .as_ref()
                .is_some_and(|a| a.id() == bound.id() && a.collection.id == bound.collection.id);
            if !same {
                return Err(SubscribeError::AuthMismatch);
            }
        }
        state.bound = true;
        state.auth = auth;
        let mut seen = std::collections::HashSet::new();
        state.topics = topics
            .into_iter()
            .filter(|t| !t.is_empty() && seen.insert(t.clone()))
            .map(|t| Arc::new(Topic::parse(&t)))
            .collect();
        Ok(())
    }

    /// Sends `change` to every client with a matching topic whose rules let it see the record.
    pub async fn dispatch(&self, svc: &Service, change: &Change) {
        let schema = svc.schema();
        let Some(coll) = schema.by_id(&change.collection_id).cloned() else { return };
        self.follow_auth_change(svc, &coll, change).await;
        // The clients with a topic on this record, each with its auth as it stands now.
        type Matched = (Arc<Client>, Option<AuthRecord>, Vec<(Arc<Topic>, bool)>);
        let mut matched: Vec<Matched> = Vec::new();
        for client in self.snapshot() {
            let mut state = client.state();
            if state.auth.as_ref().is_some_and(|a| !auth_still_valid(&schema, a)) {
                // PocketBase unbinds clients when their auth collection is deleted or its
                // token secret changes; here it happens before the next event is checked.
                state.auth = None;
            }
            let topics: Vec<_> = state
                .topics
                .iter()
                .filter_map(|t| t.matches(&coll, &change.record_id).map(|l| (t.clone(), l)))
                .collect();
            if !topics.is_empty() {
                let auth = state.auth.clone();
                drop(state);
                matched.push((client, auth, topics));
            }
        }
        if matched.is_empty() {
            // Nobody listens to this record: no read.
            return;
        }
        let deleted = change.action == Action::Delete;
        // The record every subscriber's view starts from: read once per change (the state
        // now, as PocketBase sends it), or for a delete the row the feed carries.
        let base = match (deleted, &change.record) {
            (true, Some(row)) => row.clone(),
            // A delete from before the outbox kept rows: nothing to show.
            (true, None) => return,
            (false, _) => match svc.record_row(&coll, &change.record_id).await {
                Some(row) => row,
                // Deleted since: its delete event follows.
                None => return,
            },
        };
        let action = change.action.as_str();
        // The same view (auth, rule, options) is decided and rendered once per change.
        let mut seen: HashMap<(String, bool, String), Option<String>> = HashMap::new();
        let mut dropped = Vec::new();
        for (client, auth, topics) in matched {
            let who = auth
                .as_ref()
                .map(|a| format!("{}/{}", a.collection.id, a.id()))
                .unwrap_or_default();
            for (topic, list) in topics {
                let opts = topic.raw.split_once('?').map(|(_, o)| o).unwrap_or("").to_string();
                let key = (who.clone(), list, opts);
                let data = match seen.get(&key) {
                    Some(d) => d.clone(),
                    None => {
                        let info = RequestInfo {
                            auth: auth.clone(),
                            method: "GET".into(),
                            context: "realtime",
                            query: topic.query.clone(),
                            headers: topic.headers.clone(),
                            body: Map::new(),
                            scopes: Vec::new(),
                            ip: String::new(),
                        };
                        let view = RealtimeView {
                            list,
                            info: &info,
                            expand: topic.option("expand"),
                            fields: topic.option("fields"),
                            filter: topic.option("filter"),
                        };
                        let record = match svc.realtime_record(&coll, &base, deleted, view).await {
                            Ok(r) => r,
                            Err(e) => {
                                tracing::debug!(error = %e, "realtime: rendering failed");
                                None
                            }
                        };
                        let data = record.map(|r| {
                            serde_json::json!({"record": r, "action": action}).to_string()
                        });
                        seen.insert(key, data.clone());
                        data
                    }
                };
                if let Some(data) = data {
                    if !client.send(&topic.raw, &data) {
                        dropped.push(client.id.clone());
                        break;
                    }
                }
            }
        }
        for id in dropped {
            tracing::info!(client = %id, "realtime: a client's queue is full; disconnecting it");
            self.remove(&id);
        }
    }

    /// PocketBase keeps a client's bound auth current: an update of its auth record replaces
    /// it (or, if the tokenKey changed, e.g. a new password, unbinds it: the client is a guest
    /// again), a delete unbinds it.
    async fn follow_auth_change(&self, svc: &Service, coll: &Arc<Collection>, change: &Change) {
        if !coll.is_auth() || change.action == Action::Create {
            return;
        }
        let bound: Vec<Arc<Client>> = self
            .snapshot()
            .into_iter()
            .filter(|c| {
                c.state()
                    .auth
                    .as_ref()
                    .is_some_and(|a| a.collection.id == coll.id && a.id() == change.record_id)
            })
            .collect();
        if bound.is_empty() {
            return;
        }
        let fresh = match change.action {
            Action::Delete => None,
            _ => match &change.record {
                Some(row) => Some(row.clone()),
                None => svc.record_row(coll, &change.record_id).await,
            },
        };
        for client in bound {
            let mut state = client.state();
            let keep = match (&state.auth, &fresh) {
                (Some(old), Some(new)) => old.record.get("tokenKey") == new.get("tokenKey"),
                _ => false,
            };
            state.auth = match (keep, &fresh) {
                (true, Some(new)) => {
                    Some(AuthRecord { collection: coll.clone(), record: new.clone() })
                }
                _ => None,
            };
        }
    }
}

/// Whether a bound auth still stands: its collection exists with the token secret it had.
fn auth_still_valid(schema: &crate::model::collection::Schema, auth: &AuthRecord) -> bool {
    use crate::model::collection::TokenKind;
    fn secret(c: &Collection) -> Option<&str> {
        c.auth.as_ref().map(|a| a.tokens.get(TokenKind::Auth).secret.as_str())
    }
    schema.by_id(&auth.collection.id).is_some_and(|now| secret(now) == secret(&auth.collection))
}

/// Follows the change feed and dispatches every change until the feed closes. After a lag
/// (this consumer fell more than the feed's capacity behind) it catches up from the outbox.
pub async fn run_dispatch(hub: Arc<Hub>, svc: Arc<Service>) {
    let mut feed = svc.changes();
    let mut last = 0i64;
    loop {
        match feed.recv().await {
            Ok(change) => {
                last = last.max(change.pos);
                if !hub.is_empty() {
                    hub.dispatch(&svc, &change).await;
                }
            }
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "realtime: the change feed lagged; catching up");
                loop {
                    let batch = match svc.changes_since(last, 1000).await {
                        Ok(b) => b,
                        Err(e) => {
                            tracing::warn!(error = %e, "realtime: catching up failed");
                            break;
                        }
                    };
                    let Some(end) = batch.last().map(|c| c.pos) else { break };
                    for change in &batch {
                        hub.dispatch(&svc, change).await;
                    }
                    last = end;
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_that_does_not_read_is_dropped_and_its_stream_ends() {
        let hub = Arc::new(Hub::default());
        let conn = hub.connect(None);
        let client = hub.clients.read().unwrap().get(&conn.client_id).cloned().unwrap();
        // PB_CONNECT is queued first; the queue takes CLIENT_QUEUE frames in all.
        for i in 1..CLIENT_QUEUE {
            assert!(client.send("posts/*", "{}"), "frame {i}");
        }
        assert!(!client.send("posts/*", "{}"), "one too many");
        // The hub drops a client whose queue is full; its stream drains what is queued, then ends.
        hub.remove(&client.id);
        assert!(hub.is_empty());
        assert!(!client.send("posts/*", "{}"), "a dropped client takes nothing more");
        let mut n = 0;
        while conn.events.next().await.is_some() {
            n += 1;
        }
        assert_eq!(n, CLIENT_QUEUE);
    }

    #[tokio::test]
    async fn an_idle_queue_wakes_its_stream() {
        let hub = Arc::new(Hub::default());
        let conn = hub.connect(None);
        assert!(conn.events.next().await.is_some(), "PB_CONNECT");
        let client = hub.clients.read().unwrap().get(&conn.client_id).cloned().unwrap();
        let waiting = tokio::spawn({
            let events = conn.events.clone();
            async move { events.next().await }
        });
        tokio::task::yield_now().await;
        assert!(client.send("e", "{}"));
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiting).await;
        assert_eq!(got.unwrap().unwrap().unwrap(), frame(&conn.client_id, "e", "{}"));
        drop(conn);
        assert!(hub.is_empty(), "the connection's end removes the client");
    }

    #[test]
    fn topics_parse_and_match_as_pocketbase_s() {
        let mut coll = Collection::blank(crate::model::collection::CollectionType::Base, "posts");
        coll.id = "pbc_1".into();
        let t = Topic::parse("posts/*?options=%7B%22query%22%3A%7B%22filter%22%3A%22a%20%26%26%20b%22%7D%2C%22headers%22%3A%7B%22X-Token%22%3A%221%22%7D%7D");
        assert_eq!(t.matches(&coll, "r1"), Some(true));
        assert_eq!(t.option("filter"), Some("a && b"));
        assert_eq!(t.headers.get("x_token"), Some(&Value::String("1".into())));
        for (raw, want) in [
            ("pbc_1/*", Some(true)),
            ("posts", Some(true)),
            ("posts/r1", Some(false)),
            ("posts/r2", None),
            ("POSTS/*", None),
            ("posts/*/", None),
            ("other/*", None),
            ("posts/*?options={bad json", Some(true)),
        ] {
            assert_eq!(Topic::parse(raw).matches(&coll, "r1"), want, "{raw}");
        }
        assert!(Topic::parse("posts/*?options={bad json").query.is_empty());
    }
}
