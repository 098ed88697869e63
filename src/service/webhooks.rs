//! Webhooks: a collection's `webhooks` (validated here when the definition is saved), and the
//! runner's handler of the `webhook` jobs the store enqueues in each write's transaction
//! (`store::webhooks`). Delivery is at least once: the receiver may see an event twice and
//! tells by its `id`.
//!
//! A delivery is `POST url` with the JSON body `{id, action, collection, record}`, the header
//! `X-Basalt-Signature` (hex HMAC-SHA256 of the exact body bytes under the webhook's secret)
//! and `X-Basalt-Event` (the event id). 2xx is done; anything else, a redirect or no answer in
//! 10 s is a failed attempt, retried with backoff.
//!
//! No SSRF: a webhook may not reach private, loopback, link-local, shared or multicast
//! addresses (checked on the literal host when saved, and on every address a name resolves
//! to when delivering, so DNS cannot point a public name inward), unless `webhooks_allow`
//! lists the network. Redirects are not followed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

use crate::model::collection::{Collection, Schema, Webhook, WEBHOOK_EVENTS};
use crate::model::policy::Parsed;
use crate::model::ErrorCode;
use crate::service::{error_entry, Service};
use crate::store::Store;

/// Webhooks per collection.
pub const MAX_WEBHOOKS: usize = 20;
/// Bounds of a webhook secret's length.
pub const SECRET_LEN: std::ops::RangeInclusive<usize> = 16..=255;
/// How long a receiver has to answer.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a webhook may reach `ip`: public unicast, or inside an allowed network.
pub fn address_allowed(ip: IpAddr, allow: &[ipnet::IpNet]) -> bool {
    if allow.iter().any(|n| n.contains(&ip)) {
        return true;
    }
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // shared (CGNAT)
                || (o[0] == 198 && (18..20).contains(&o[1])) // benchmarking
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return address_allowed(IpAddr::V4(v4), allow);
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80) // link-local
        }
    }
}

/// A resolver that drops addresses webhooks may not reach (and fails when none is left).
struct GuardedResolver {
    allow: Arc<Vec<ipnet::IpNet>>,
}

impl reqwest13::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest13::dns::Name) -> reqwest13::dns::Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| address_allowed(a.ip(), &allow))
                .collect();
            if addrs.is_empty() {
                let e: Box<dyn std::error::Error + Send + Sync> = format!(
                    "{host} resolves to no address a webhook may reach (private, loopback or \
                     link-local; see webhooks_allow)"
                )
                .into();
                return Err(e);
            }
            let addrs: reqwest13::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client of deliveries.
pub(crate) fn client(allow: &[ipnet::IpNet]) -> Result<reqwest13::Client, String> {
    reqwest13::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { allow: Arc::new(allow.to_vec()) }))
        .redirect(reqwest13::redirect::Policy::none())
        .timeout(DELIVERY_TIMEOUT)
        .user_agent(concat!("Basalt-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("building the webhook client: {e}"))
}

/// Why `url` cannot be a webhook target (`None`: it can, as far as can be told before
/// resolving its name).
pub fn url_problem(url: &str, allow: &[ipnet::IpNet]) -> Option<String> {
    let Ok(u) = url::Url::parse(url) else { return Some("Must be a valid URL.".into()) };
    if !matches!(u.scheme(), "http" | "https") {
        return Some("Must be an http or https URL.".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Some("Must not carry credentials (sign with the secret instead).".into());
    }
    match u.host() {
        None => Some("Must have a host.".into()),
        Some(url::Host::Ipv4(ip)) if !address_allowed(IpAddr::V4(ip), allow) => {
            Some("Private, loopback and link-local addresses are not allowed.".into())
        }
        Some(url::Host::Ipv6(ip)) if !address_allowed(IpAddr::V6(ip), allow) => {
            Some("Private, loopback and link-local addresses are not allowed.".into())
        }
        Some(url::Host::Domain(d))
            if (d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost"))
                && !allow.iter().any(|n| n.contains(&IpAddr::from([127, 0, 0, 1]))) =>
        {
            Some("Private, loopback and link-local addresses are not allowed.".into())
        }
        Some(_) => None,
    }
}

/// Checks `c.webhooks` into `data["webhooks"][i][field]`.
pub(crate) fn validate(
    store: &Store,
    c: &Arc<Collection>,
    allow: &[ipnet::IpNet],
    data: &mut Map<String, Value>,
) {
    let mut errors = Map::new();
    if c.webhooks.len() > MAX_WEBHOOKS {
        data.insert(
            "webhooks".into(),
            error_entry(ErrorCode::TooManyValues, &format!("At most {MAX_WEBHOOKS} webhooks.")),
        );
        return;
    }
    // A filter is on the record's own fields: compiled against the collection alone.
    let alone = Schema::new(vec![(**c).clone()]);
    for (i, w) in c.webhooks.iter().enumerate() {
        let mut e = Map::new();
        if w.url.trim().is_empty() {
            e.insert("url".into(), error_entry(ErrorCode::Required, "Cannot be blank."));
        } else if let Some(problem) = url_problem(&w.url, allow) {
            e.insert("url".into(), error_entry(ErrorCode::InvalidUrl, &problem));
        }
        let len = w.secret.chars().count();
        if !SECRET_LEN.contains(&len) {
            let (min, max) = (SECRET_LEN.start(), SECRET_LEN.end());
            e.insert(
                "secret".into(),
                json!({"code": ErrorCode::LengthOutOfRange.as_str(),
                       "message": format!("The length must be between {min} and {max}."),
                       "params": {"min": min, "max": max}}),
            );
        }
        let mut seen = Vec::new();
        if w.events.is_empty() {
            e.insert("events".into(), error_entry(ErrorCode::Required, "Cannot be blank."));
        }
        for ev in &w.events {
            if !WEBHOOK_EVENTS.contains(&ev.as_str()) || seen.contains(&ev) {
                e.insert(
                    "events".into(),
                    error_entry(
                        ErrorCode::InInvalid,
                        "Must be distinct values of create, update, delete.",
                    ),
                );
            }
            seen.push(ev);
        }
        match w.filter.parsed() {
            Parsed::Invalid(err) => {
                e.insert(
                    "filter".into(),
                    error_entry(ErrorCode::InvalidRule, &format!("Invalid filter: {err}.")),
                );
            }
            Parsed::Expr(expr) => {
                if let Err(err) = store.check_rule(&alone, c, expr) {
                    e.insert(
                        "filter".into(),
                        error_entry(
                            ErrorCode::InvalidRule,
                            &format!("Invalid filter (on the record's own fields): {err}."),
                        ),
                    );
                }
            }
            Parsed::Null | Parsed::Open => {}
        }
        if c.webhooks[..i].iter().any(|o| o.id == w.id) {
            e.insert("id".into(), error_entry(ErrorCode::NotUnique, "Must be unique."));
        }
        if !e.is_empty() {
            errors.insert(i.to_string(), Value::Object(e));
        }
    }
    if !errors.is_empty() {
        data.insert("webhooks".into(), Value::Object(errors));
    }
}

/// The signature header's value: hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length: this never fails.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn find<'a>(schema: &'a Schema, payload: &Value) -> Option<(&'a Arc<Collection>, &'a Webhook)> {
    let coll = schema.by_id(payload.get("collectionId")?.as_str()?)?;
    let id = payload.get("webhook")?.as_str()?;
    let hook = coll.webhooks.iter().find(|w| w.id == id)?;
    Some((coll, hook))
}

impl Service {
    /// Delivers a `webhook` job (the runner's handler): to the webhook's current URL, signed
    /// with its current secret; a webhook removed since is skipped (and says so).
    pub async fn run_webhook(&self, payload: &Value) -> Result<Option<Value>, String> {
        let mut schema = self.schema();
        if find(&schema, payload).is_none() {
            // This instance's snapshot may predate the webhook (another instance saved it an
            // instant ago): read the definitions before concluding it is gone.
            self.reload_schema().await.map_err(|e| format!("reading the collections: {e}"))?;
            schema = self.schema();
        }
        let Some((_, hook)) = find(&schema, payload) else {
            return Ok(Some(json!({"skipped": "the webhook no longer exists"})));
        };
        if let Some(problem) = url_problem(&hook.url, &self.outbound.webhooks_allow) {
            return Err(format!("the webhook URL is refused: {problem}"));
        }
        let body = serde_json::to_vec(payload.get("body").unwrap_or(&Value::Null))
            .map_err(|e| format!("encoding the body: {e}"))?;
        let event = payload.pointer("/body/id").and_then(Value::as_str).unwrap_or_default();
        let client = self.webhook_client()?;
        let res = client
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("x-basalt-signature", signature(&hook.secret, &body))
            .header("x-basalt-event", event)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("POST {}: {}", hook.url, error_chain(&e)))?;
        let status = res.status();
        if status.is_success() {
            Ok(Some(json!({"status": status.as_u16()})))
        } else {
            Err(format!("POST {} answered {status}", hook.url))
        }
    }
}

/// An error with its causes (reqwest's own message is only the outermost).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inward_addresses_are_refused_unless_allowed() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!address_allowed(ip.parse().unwrap(), &[]), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(address_allowed(ip.parse().unwrap(), &[]), "{ip}");
        }
        let allow = vec!["127.0.0.0/8".parse().unwrap()];
        assert!(address_allowed("127.0.0.1".parse().unwrap(), &allow));
        assert!(url_problem("http://127.0.0.1:9/x", &[]).is_some());
        assert!(url_problem("http://localhost/x", &[]).is_some());
        assert!(url_problem("http://[::1]/x", &[]).is_some());
        assert!(url_problem("ftp://example.com/x", &[]).is_some());
        assert!(url_problem("http://u:p@example.com/x", &[]).is_some());
        assert!(url_problem("https://example.com/hook", &[]).is_none());
        assert!(url_problem("http://127.0.0.1:9/x", &allow).is_none());
    }

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
