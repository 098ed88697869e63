//! What a filter or rule may read about the current request: `@request.auth.*`, `.body`,
//! `.query`, `.headers`, `.method`, `.context`. Built by `service` from plain inputs; pure data.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::model::collection::Collection;

/// The authenticated record behind a request, with every field (hidden ones included).
#[derive(Debug, Clone)]
pub struct AuthRecord {
    pub collection: Arc<Collection>,
    pub record: Map<String, Value>,
}

impl AuthRecord {
    pub fn id(&self) -> &str {
        self.record.get("id").and_then(Value::as_str).unwrap_or_default()
    }

    pub fn is_superuser(&self) -> bool {
        self.collection.name == crate::model::collection::SUPERUSERS
    }
}

/// The request as seen by rules.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub auth: Option<AuthRecord>,
    /// The scopes of the API key the request carried (`jobs`…); empty for tokens and guests.
    /// A key is no auth record: to rules the request is a guest's.
    pub scopes: Vec<String>,
    pub method: String,
    /// `default`, `expand`, `realtime`, `protectedFile`, `batch`, …
    pub context: &'static str,
    pub query: Map<String, Value>,
    /// Header names are snake_cased (`X-Token` → `x_token`).
    pub headers: Map<String, Value>,
    pub body: Map<String, Value>,
    /// The client's address (the connection's peer; empty where unknown, as for the CLI).
    pub ip: String,
}

impl RequestInfo {
    pub fn is_superuser(&self) -> bool {
        self.auth.as_ref().is_some_and(AuthRecord::is_superuser)
    }

    pub fn auth_id(&self) -> &str {
        self.auth.as_ref().map(AuthRecord::id).unwrap_or_default()
    }
}
