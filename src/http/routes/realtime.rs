//! `GET /api/realtime` (the SSE stream) and `POST /api/realtime` (set a client's topics), as
//! PocketBase 0.40.6 answers them (probed; see docs/realtime.md).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::body::Body as HttpBody;
use axum::extract::{ConnectInfo, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use crate::http::error::ApiError;
use crate::http::extract::Body;
use crate::http::AppState;
use crate::model::ErrorCode;
use crate::realtime::{self, SubscribeError};

/// `GET /api/realtime`: a new client; its events until it goes idle, reaches the maximum
/// lifetime, falls too far behind, or the server shuts down.
pub async fn connect(
    State(s): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Response {
    let conn = s.hub.connect(peer_ip(peer));
    let started = Instant::now();
    let stream = futures_util::stream::unfold(
        (conn, started + realtime::IDLE_TIMEOUT),
        move |(conn, idle)| async move {
            let deadline = idle.min(started + realtime::MAX_LIFETIME);
            match tokio::time::timeout_at(deadline, conn.events.next()).await {
                Ok(Some(frame)) => Some((
                    Ok::<_, Infallible>(frame),
                    (conn, Instant::now() + realtime::IDLE_TIMEOUT),
                )),
                // Idle, too old, dropped by the hub, or shutting down: the stream ends (and
                // the client with it, when `conn` drops).
                _ => None,
            }
        },
    );
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    (headers, HttpBody::from_stream(stream)).into_response()
}

/// `POST /api/realtime {clientId, subscriptions}`: replaces the client's topics and binds the
/// caller's auth (an invalid token counts as a guest, as in PocketBase).
pub async fn subscribe(
    State(s): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (client_id, topics) = read_request(&body)?;
    let auth = match headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        Some(h) => s.svc.authenticate(h).await.ok().flatten(),
        None => None,
    };
    match s.hub.subscribe(&client_id, peer_ip(peer), auth, topics) {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(SubscribeError::UnknownClient) => {
            Err(ApiError::not_found("Missing or invalid client id."))
        }
        Err(SubscribeError::OtherAddress) => Err(ApiError::bad_request("Invalid realtime client.")),
        Err(SubscribeError::AuthMismatch) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "The current and the previous request authorization don't match.",
        )),
    }
}

use crate::http::error::GENERIC_400 as BAD;

/// The address the connection came from (`None` when served without connect info, as in tests
/// of the router alone). FIXME(#15): behind a trusted proxy, the settings' forwarded-for header.
fn peer_ip(peer: Option<Extension<ConnectInfo<SocketAddr>>>) -> Option<IpAddr> {
    peer.map(|Extension(ConnectInfo(addr))| addr.ip())
}

fn bad(data: Map<String, Value>) -> ApiError {
    ApiError { data, ..ApiError::bad_request(BAD) }
}

/// The body's `clientId` and `subscriptions`, checked as PocketBase checks them (keys matched
/// without regard to case; wrong types are a 400 with no field errors, limits one with them).
fn read_request(body: &Map<String, Value>) -> Result<(String, Vec<String>), ApiError> {
    let get = |name: &str| {
        let mut found = body.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name));
        match (found.next(), found.next()) {
            (Some((_, v)), None) => Ok(Some(v)),
            (None, _) => Ok(None),
            (Some(_), Some(_)) => Err(bad(Map::new())),
        }
    };
    let client_id = match get("clientId")? {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(bad(Map::new())),
    };
    let topics: Vec<String> = match get("subscriptions")? {
        None | Some(Value::Null) => Vec::new(),
        // A form body with one `subscriptions` value.
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Null => Ok(String::new()),
                _ => Err(bad(Map::new())),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad(Map::new())),
    };
    let mut data = Map::new();
    if client_id.is_empty() {
        data.insert(
            "clientId".into(),
            json!({"code": ErrorCode::Required.as_str(), "message": "Cannot be blank."}),
        );
    } else if client_id.chars().count() > realtime::MAX_CLIENT_ID {
        data.insert(
            "clientId".into(),
            json!({"code": ErrorCode::LengthOutOfRange.as_str(),
                "message": format!("The length must be between 1 and {}.", realtime::MAX_CLIENT_ID),
                "params": {"max": realtime::MAX_CLIENT_ID, "min": 1}}),
        );
    }
    if topics.len() > realtime::MAX_TOPICS {
        data.insert(
            "subscriptions".into(),
            json!({"code": ErrorCode::LengthTooLong.as_str(),
                "message": format!("The length must be no more than {}.", realtime::MAX_TOPICS),
                "params": {"max": realtime::MAX_TOPICS, "min": 0}}),
        );
    } else {
        let long: Map<String, Value> = topics
            .iter()
            .enumerate()
            .filter(|(_, t)| t.len() > realtime::MAX_TOPIC_BYTES)
            .map(|(i, _)| {
                (
                    i.to_string(),
                    json!({"code": ErrorCode::LengthTooLong.as_str(),
                        "message": format!("The length must be no more than {}.", realtime::MAX_TOPIC_BYTES),
                        "params": {"max": realtime::MAX_TOPIC_BYTES, "min": 0}}),
                )
            })
            .collect();
        if !long.is_empty() {
            data.insert("subscriptions".into(), Value::Object(long));
        }
    }
    if !data.is_empty() {
        return Err(bad(data));
    }
    Ok((client_id, topics))
}
