//! Application settings (`GET/PATCH /api/settings`, superusers): PocketBase's document, kept in
//! `_params` under `settings` so every instance on one database reads the same one (nothing is
//! cached: a change is seen by the next read on any instance).
//!
//! What Basalt acts on today: `meta` (the sender of mail, the app's name and URL) and `smtp`
//! (how mail leaves: SMTP, or `sendmail` when disabled). The other sections have PocketBase's
//! shape and defaults, are validated for type and stored, and take effect as their features
//! land (FIXME(#15): batch, rateLimits, trustedProxy, logs, backups, s3).
//!
//! Secrets (`smtp.password`, `s3.secret`, `backups.s3.secret`) are write-only: stored, never
//! returned; a PATCH that leaves one out or empty keeps the stored one.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::model::request::RequestInfo;
use crate::model::ErrorCode;
use crate::service::collections::require_superuser;
use crate::service::{error_entry, Result, Service, ServiceError};

/// The `_params` key of the settings document.
const PARAM_ID: &str = "settings";

/// The JSON paths of write-only values.
const SECRETS: [&[&str]; 3] =
    [&["smtp", "password"], &["s3", "secret"], &["backups", "s3", "secret"]];

/// `meta`: who the app is and who its mail comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    pub app_name: String,
    #[serde(rename = "appURL")]
    pub app_url: String,
    pub sender_name: String,
    pub sender_address: String,
    pub hide_controls: bool,
    pub accent_color: String,
}

/// `smtp`: the mail server. `tls: true` is implicit TLS (SMTPS, usually port 465); `false`
/// upgrades with STARTTLS when the server offers it (port 587 or 25).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Smtp {
    pub enabled: bool,
    pub port: i64,
    pub host: String,
    pub username: String,
    /// Write-only.
    #[serde(default)]
    pub password: String,
    /// `""` (the server's choice), `PLAIN` or `LOGIN`.
    pub auth_method: String,
    pub tls: bool,
    /// The name given in HELO/EHLO; empty: this machine's host name.
    pub local_name: String,
}

/// The sections Basalt reads in code.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub meta: Meta,
    pub smtp: Smtp,
}

/// PocketBase 0.40.6's defaults (probed with `GET /api/settings` on a fresh data directory).
pub fn default_document() -> Value {
    let s3 = json!({"enabled": false, "bucket": "", "region": "", "endpoint": "",
                    "accessKey": "", "forcePathStyle": false});
    json!({
        "meta": {"appName": "Acme", "appURL": "http://localhost:8090", "senderName": "Support",
                 "senderAddress": "support@example.com", "hideControls": false,
                 "accentColor": "#1055c9"},
        "smtp": {"enabled": false, "port": 587, "host": "smtp.example.com", "username": "",
                 "authMethod": "", "tls": false, "localName": ""},
        "s3": s3.clone(),
        "backups": {"cron": "", "cronMaxKeep": 3, "s3": s3},
        "batch": {"enabled": false, "maxRequests": 50, "timeout": 3, "maxBodySize": 0},
        "rateLimits": {"enabled": false, "excludedIPs": [], "rules": [
            {"label": "*:auth", "audience": "", "duration": 3, "maxRequests": 2},
            {"label": "*:create", "audience": "", "duration": 5, "maxRequests": 20},
            {"label": "/api/batch", "audience": "", "duration": 1, "maxRequests": 3},
            {"label": "/api/", "audience": "", "duration": 10, "maxRequests": 300}]},
        "trustedProxy": {"headers": [], "useLeftmostIP": false},
        "logs": {"maxDays": 5, "minLevel": 0, "logIP": true, "logAuthId": false, "maxDataSize": 0},
        "superuserIPs": [],
    })
}

/// `patch` merged into `base`: objects key by key, anything else replaced.
fn deep_merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => deep_merge(slot, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

fn pointer_mut<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, k| v.get_mut(*k))
}

/// The typed sections of a stored document; `None` when a section does not have its type.
fn typed(doc: &Value) -> Option<Settings> {
    Some(Settings {
        meta: serde_json::from_value(doc.get("meta")?.clone()).ok()?,
        smtp: serde_json::from_value(doc.get("smtp")?.clone()).ok()?,
    })
}

/// PocketBase's checks of the sections Basalt acts on; `{section: {field: error}}`.
fn validate(s: &Settings) -> Map<String, Value> {
    let mut data = Map::new();
    let mut meta = Map::new();
    let blank = || error_entry(ErrorCode::Required, "Cannot be blank.");
    let m = &s.meta;
    for (k, v) in [("appName", &m.app_name), ("senderName", &m.sender_name)] {
        if v.trim().is_empty() {
            meta.insert(k.into(), blank());
        } else if v.chars().count() > 255 {
            meta.insert(
                k.into(),
                error_entry(ErrorCode::LengthOutOfRange, "The length must be between 1 and 255."),
            );
        }
    }
    if m.app_url.trim().is_empty() {
        meta.insert("appURL".into(), blank());
    } else if !url::Url::parse(&m.app_url).is_ok_and(|u| u.has_host()) {
        meta.insert("appURL".into(), error_entry(ErrorCode::IsUrl, "Must be a valid URL."));
    }
    if m.sender_address.trim().is_empty() {
        meta.insert("senderAddress".into(), blank());
    } else if !crate::model::value::is_email(&m.sender_address) {
        meta.insert(
            "senderAddress".into(),
            error_entry(ErrorCode::IsEmail, "Must be a valid email address."),
        );
    }
    if !meta.is_empty() {
        data.insert("meta".into(), Value::Object(meta));
    }
    let mut smtp = Map::new();
    let t = &s.smtp;
    if t.enabled {
        if t.host.trim().is_empty() {
            smtp.insert("host".into(), blank());
        }
        if t.port == 0 {
            smtp.insert("port".into(), blank());
        }
    }
    if !(0..=65535).contains(&t.port) {
        smtp.insert(
            "port".into(),
            error_entry(ErrorCode::InvalidValue, "Must be a port number (1-65535)."),
        );
    }
    if !["", "PLAIN", "LOGIN"].contains(&t.auth_method.as_str()) {
        smtp.insert(
            "authMethod".into(),
            error_entry(ErrorCode::InInvalid, "Must be a valid value."),
        );
    }
    if !smtp.is_empty() {
        data.insert("smtp".into(), Value::Object(smtp));
    }
    data
}

fn load_error() -> ServiceError {
    ServiceError::fields("An error occurred while loading the submitted data.", Map::new())
}

/// The document as the API shows it: secrets removed.
fn public(mut doc: Value) -> Value {
    for path in SECRETS {
        if let Some((last, parent)) = path.split_last() {
            if let Some(Value::Object(o)) = pointer_mut(&mut doc, parent) {
                o.remove(*last);
            }
        }
    }
    doc
}

impl Service {
    /// The stored document over PocketBase's defaults (sections added later get defaults).
    async fn settings_document(&self) -> Result<Value> {
        let mut doc = default_document();
        if let Some(text) = self.store.param(PARAM_ID).await? {
            let stored: Value = serde_json::from_str(&text)
                .map_err(|e| ServiceError::Internal(format!("stored settings: {e}")))?;
            deep_merge(&mut doc, &stored);
        }
        Ok(doc)
    }

    /// The settings Basalt acts on, as stored now (secrets included: for sending mail).
    pub async fn settings(&self) -> Result<Settings> {
        let doc = self.settings_document().await?;
        typed(&doc).ok_or_else(|| ServiceError::Internal("stored settings do not parse".into()))
    }

    /// `GET /api/settings`.
    pub async fn get_settings(&self, info: &RequestInfo) -> Result<Value> {
        require_superuser(info)?;
        Ok(public(self.settings_document().await?))
    }

    /// `PATCH /api/settings`: `patch` deep-merged into the stored document, checked, stored.
    pub async fn update_settings(&self, info: &RequestInfo, patch: Value) -> Result<Value> {
        require_superuser(info)?;
        let Value::Object(patch_obj) = &patch else { return Err(load_error()) };
        let old = self.settings_document().await?;
        // A section must stay an object of its default's shape (`"meta": "x"` is a load error).
        let defaults = default_document();
        for (k, v) in patch_obj {
            if defaults.get(k).is_some_and(Value::is_object) && !v.is_object() {
                return Err(load_error());
            }
        }
        let mut doc = old.clone();
        deep_merge(&mut doc, &patch);
        // Write-only values left out or empty keep the stored ones.
        for path in SECRETS {
            let given = path.iter().try_fold(&patch, |v, k| v.get(*k));
            if given.is_none_or(|v| v.as_str().is_some_and(str::is_empty)) {
                let kept = path.iter().try_fold(&old, |v, k| v.get(*k)).cloned();
                if let (Some(kept), Some((last, parent))) = (kept, path.split_last()) {
                    if let Some(Value::Object(o)) = pointer_mut(&mut doc, parent) {
                        o.insert((*last).to_string(), kept);
                    }
                }
            }
        }
        let Some(settings) = typed(&doc) else { return Err(load_error()) };
        let errors = validate(&settings);
        if !errors.is_empty() {
            return Err(ServiceError::fields(
                "An error occurred while saving the new settings.",
                errors,
            ));
        }
        let text = serde_json::to_string(&doc)
            .map_err(|e| ServiceError::Internal(format!("settings: {e}")))?;
        self.store.put_param(PARAM_ID, text).await?;
        Ok(public(doc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_pass_validation() {
        let s = typed(&default_document()).expect("typed");
        assert!(validate(&s).is_empty());
        assert_eq!(s.smtp.port, 587);
    }

    #[test]
    fn secrets_are_never_public() {
        let mut doc = default_document();
        doc["smtp"]["password"] = json!("hunter2");
        doc["backups"]["s3"]["secret"] = json!("s3cret");
        let out = public(doc).to_string();
        assert!(!out.contains("hunter2") && !out.contains("s3cret"), "{out}");
    }

    #[test]
    fn merge_is_deep() {
        let mut doc = default_document();
        deep_merge(&mut doc, &json!({"smtp": {"host": "mx"}}));
        assert_eq!(doc["smtp"]["host"], "mx");
        assert_eq!(doc["smtp"]["port"], 587);
    }
}
