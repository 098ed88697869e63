//! Collections: their definition (type, rules, fields, indexes, auth options), the JSON shape the
//! API speaks, and `Schema`, the immutable snapshot of all collections a request works with.
//!
//! Pure data and pure checks; persistence is `store`'s, use cases are `service`'s.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::model::field::{Field, FieldKind};
use crate::model::policy::Rule;

pub const SUPERUSERS: &str = "_superusers";
pub const SUPERUSERS_ID: &str = "pbc_3142635823";
pub const USERS_ID: &str = "_pb_users_auth_";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionType {
    Base,
    Auth,
}

impl CollectionType {
    pub fn as_str(self) -> &'static str {
        match self {
            CollectionType::Base => "base",
            CollectionType::Auth => "auth",
        }
    }
}

/// The five record rules (the auth-only ones are in `AuthOptions`). Each is parsed once, when
/// the definition is read; `model::policy` turns them into decisions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    pub list: Rule,
    pub view: Rule,
    pub create: Rule,
    pub update: Rule,
    pub delete: Rule,
}

/// Options only auth collections have. Unmodelled option groups (oauth2, mfa, otp, templates…)
/// are kept verbatim in `extra` so they round-trip.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthOptions {
    pub auth_rule: Rule,
    pub manage_rule: Rule,
    pub identity_fields: Vec<String>,
    pub password_auth_enabled: bool,
    /// Duration and signing secret of each kind of token the collection issues.
    pub tokens: TokenConfigs,
    pub extra: Map<String, Value>,
}

/// How long one kind of token lives and the per-collection part of its signing key (with the
/// record's `tokenKey`). The secret is write-only: rendered only for persistence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfig {
    /// Seconds a token stays valid.
    pub duration: i64,
    pub secret: String,
}

/// The kinds of token an auth collection issues, as PocketBase names their option groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Auth,
    PasswordReset,
    EmailChange,
    Verification,
    File,
}

impl TokenKind {
    pub const ALL: [TokenKind; 5] = [
        TokenKind::Auth,
        TokenKind::PasswordReset,
        TokenKind::EmailChange,
        TokenKind::Verification,
        TokenKind::File,
    ];

    /// The option group's key in the collection JSON.
    pub fn key(self) -> &'static str {
        match self {
            TokenKind::Auth => "authToken",
            TokenKind::PasswordReset => "passwordResetToken",
            TokenKind::EmailChange => "emailChangeToken",
            TokenKind::Verification => "verificationToken",
            TokenKind::File => "fileToken",
        }
    }

    /// PocketBase's default duration in seconds.
    pub fn default_duration(self) -> i64 {
        match self {
            TokenKind::Auth => 432_000,
            TokenKind::PasswordReset | TokenKind::EmailChange => 1800,
            TokenKind::Verification => 86_400,
            TokenKind::File => 180,
        }
    }
}

/// PocketBase's bounds for a token's duration (seconds; the maximum is three years) and secret.
pub const TOKEN_DURATION_MIN: i64 = 10;
pub const TOKEN_DURATION_MAX: i64 = 94_670_856;
pub const TOKEN_SECRET_LEN: std::ops::RangeInclusive<usize> = 30..=255;

/// One [`TokenConfig`] per [`TokenKind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfigs([TokenConfig; 5]);

impl TokenConfigs {
    /// PocketBase's durations and a fresh random secret for each kind.
    pub fn fresh() -> Self {
        TokenConfigs(TokenKind::ALL.map(|k| TokenConfig {
            duration: k.default_duration(),
            secret: crate::util::random_alnum(50),
        }))
    }

    pub fn get(&self, kind: TokenKind) -> &TokenConfig {
        &self.0[kind as usize]
    }

    pub fn get_mut(&mut self, kind: TokenKind) -> &mut TokenConfig {
        &mut self.0[kind as usize]
    }
}

/// A webhook of a collection: each create/update/delete named in `events` whose record matches
/// `filter` is POSTed to `url`, signed with `secret` (write-only, like token secrets).
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub secret: String,
    /// `create`, `update`, `delete`.
    pub events: Vec<String>,
    /// On the record's own fields; empty: every record.
    pub filter: Rule,
}

/// The webhook events.
pub const WEBHOOK_EVENTS: [&str; 3] = ["create", "update", "delete"];

impl Webhook {
    fn to_json(&self, with_secrets: bool) -> Value {
        let mut o = json!({"id": self.id, "url": self.url, "events": self.events,
                           "filter": self.filter.raw().unwrap_or_default()});
        if with_secrets {
            o["secret"] = json!(self.secret);
        }
        o
    }

    /// Reads API JSON; `old` supplies the secret when the JSON leaves it out (write-only).
    fn from_json(v: &Value, old: &[Webhook]) -> Result<Webhook, String> {
        let o = v.as_object().ok_or("webhooks must be objects")?;
        let s = |k: &str| -> Result<Option<String>, String> {
            match o.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("webhook {k} must be a string")),
            }
        };
        let id =
            s("id")?.filter(|i| !i.is_empty()).unwrap_or_else(|| crate::util::random_alnum(15));
        let prior = old.iter().find(|w| w.id == id);
        let secret = match s("secret")?.filter(|x| !x.is_empty()) {
            Some(x) => x,
            None => prior.map(|w| w.secret.clone()).unwrap_or_default(),
        };
        let events = match o.get("events") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|e| e.as_str().map(str::to_string).ok_or("webhook events must be strings"))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("webhook events must be an array".into()),
        };
        let filter = s("filter")?.filter(|f| !f.trim().is_empty());
        Ok(Webhook {
            id,
            url: s("url")?.unwrap_or_default(),
            secret,
            events,
            filter: Rule::new(filter),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Collection {
    pub id: String,
    pub name: String,
    pub kind: CollectionType,
    pub system: bool,
    pub rules: Rules,
    pub fields: Vec<Field>,
    pub indexes: Vec<String>,
    pub created: String,
    pub updated: String,
    pub auth: Option<AuthOptions>,
    /// Basalt's webhooks (not in PocketBase; the key is left out of the JSON when empty).
    pub webhooks: Vec<Webhook>,
}

impl Collection {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn is_auth(&self) -> bool {
        self.kind == CollectionType::Auth
    }

    /// PocketBase's default collection id: `pbc_` + crc32(type + name).
    pub fn default_id(kind: CollectionType, name: &str) -> String {
        format!("pbc_{}", crc32fast::hash(format!("{}{name}", kind.as_str()).as_bytes()))
    }

    /// Renders the collection as the API returns it. `with_secrets` adds the token secret, for
    /// persistence only.
    pub fn to_json(&self, with_secrets: bool) -> Value {
        let mut o = Map::new();
        o.insert("id".into(), json!(self.id));
        o.insert("name".into(), json!(self.name));
        o.insert("type".into(), json!(self.kind.as_str()));
        o.insert("system".into(), json!(self.system));
        o.insert("listRule".into(), json!(self.rules.list.raw()));
        o.insert("viewRule".into(), json!(self.rules.view.raw()));
        o.insert("createRule".into(), json!(self.rules.create.raw()));
        o.insert("updateRule".into(), json!(self.rules.update.raw()));
        o.insert("deleteRule".into(), json!(self.rules.delete.raw()));
        o.insert("fields".into(), Value::Array(self.fields.iter().map(Field::to_json).collect()));
        o.insert("indexes".into(), json!(self.indexes));
        o.insert("created".into(), json!(self.created));
        o.insert("updated".into(), json!(self.updated));
        if !self.webhooks.is_empty() {
            let hooks = self.webhooks.iter().map(|w| w.to_json(with_secrets)).collect();
            o.insert("webhooks".into(), Value::Array(hooks));
        }
        if let Some(a) = &self.auth {
            for (k, v) in &a.extra {
                o.insert(k.clone(), v.clone());
            }
            o.insert("authRule".into(), json!(a.auth_rule.raw()));
            o.insert("manageRule".into(), json!(a.manage_rule.raw()));
            o.insert(
                "passwordAuth".into(),
                json!({"enabled": a.password_auth_enabled, "identityFields": a.identity_fields}),
            );
            for kind in TokenKind::ALL {
                let t = a.tokens.get(kind);
                let mut token = json!({"duration": t.duration});
                if with_secrets {
                    token["secret"] = json!(t.secret);
                }
                o.insert(kind.key().into(), token);
            }
        }
        Value::Object(o)
    }
}

/// The default mail templates of an auth collection, `(subject, body)`: Basalt's own wording,
/// with PocketBase's placeholders and confirmation links (`{APP_URL}/_/#/auth/…/{TOKEN}`), so
/// templates written for PocketBase work unchanged.
pub mod templates {
    pub const VERIFICATION: (&str, &str) = (
        "Confirm your email for {APP_NAME}",
        "<p>Hi,</p>\n<p>Welcome to {APP_NAME}! Please confirm that this is your email address.</p>\n<p>\n  <a class=\"btn\" href=\"{APP_URL}/_/#/auth/confirm-verification/{TOKEN}\" target=\"_blank\" rel=\"noopener\">Confirm my email</a>\n</p>\n<p><i>Did not sign up? You can safely ignore this message.</i></p>\n<p>\n  The {APP_NAME} team\n</p>",
    );
    pub const RESET_PASSWORD: (&str, &str) = (
        "Your {APP_NAME} password reset",
        "<p>Hi,</p>\n<p>Someone asked to reset the password of your {APP_NAME} account. Choose a new one here:</p>\n<p>\n  <a class=\"btn\" href=\"{APP_URL}/_/#/auth/confirm-password-reset/{TOKEN}\" target=\"_blank\" rel=\"noopener\">Choose a new password</a>\n</p>\n<p><i>Not you? Ignore this message and your password stays as it is.</i></p>\n<p>\n  The {APP_NAME} team\n</p>",
    );
    pub const CONFIRM_EMAIL_CHANGE: (&str, &str) = (
        "Confirm your new email for {APP_NAME}",
        "<p>Hi,</p>\n<p>Please confirm that your {APP_NAME} account should use this email address from now on.</p>\n<p>\n  <a class=\"btn\" href=\"{APP_URL}/_/#/auth/confirm-email-change/{TOKEN}\" target=\"_blank\" rel=\"noopener\">Use this address</a>\n</p>\n<p><i>Not you? Ignore this message and nothing changes.</i></p>\n<p>\n  The {APP_NAME} team\n</p>",
    );
    pub const OTP: (&str, &str) = (
        "Your {APP_NAME} sign-in code",
        "<p>Hi,</p>\n<p>Your one-time sign-in code is <strong>{OTP}</strong>.</p>\n<p><i>Did not try to sign in? You can ignore this message.</i></p>\n<p>\n  The {APP_NAME} team\n</p>",
    );
    pub const AUTH_ALERT: (&str, &str) = (
        "New sign-in to your {APP_NAME} account",
        "<p>Hi,</p>\n<p>Your {APP_NAME} account was just used to sign in from a device we have not seen before:</p>\n<p><em>{ALERT_INFO}</em></p>\n<p><strong>If this was not you, change your password now: that signs out every other device.</strong></p>\n<p>If it was you, there is nothing to do.</p>\n<p>\n  The {APP_NAME} team\n</p>",
    );
}

/// Default values of the auth option groups beyond passwords and tokens.
pub fn default_auth_extra() -> Map<String, Value> {
    let tpl = |(subject, body): (&str, &str)| json!({"subject": subject, "body": body});
    let v = json!({
        "oauth2": {"enabled": false, "providers": [],
                   "mappedFields": {"id": "", "name": "", "username": "", "avatarURL": ""}},
        "mfa": {"enabled": false, "duration": 600, "rule": ""},
        "otp": {"enabled": false, "duration": 180, "length": 8,
                "emailTemplate": tpl(templates::OTP)},
        "authAlert": {"enabled": true, "emailTemplate": tpl(templates::AUTH_ALERT)},
        "verificationTemplate": tpl(templates::VERIFICATION),
        "resetPasswordTemplate": tpl(templates::RESET_PASSWORD),
        "confirmEmailChangeTemplate": tpl(templates::CONFIRM_EMAIL_CHANGE),
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The fields every collection starts with: the `id` primary key.
pub fn id_field() -> Field {
    Field {
        id: Field::default_id("text", "id"),
        name: "id".into(),
        system: true,
        hidden: false,
        presentable: false,
        required: true,
        help: String::new(),
        kind: FieldKind::Text {
            min: 15,
            max: 15,
            pattern: "^[a-z0-9]+$".into(),
            autogenerate_pattern: "[a-z0-9]{15}".into(),
            primary_key: true,
        },
    }
}

/// The system fields of an auth collection, in PocketBase's order (after `id`).
pub fn auth_system_fields() -> Vec<Field> {
    let sys = |name: &str, hidden: bool, required: bool, kind: FieldKind| Field {
        id: Field::default_id(kind.type_name(), name),
        name: name.into(),
        system: true,
        hidden,
        presentable: false,
        required,
        help: String::new(),
        kind,
    };
    vec![
        sys(
            "password",
            true,
            true,
            FieldKind::Password { min: 8, max: 0, pattern: String::new(), cost: 0 },
        ),
        sys(
            "tokenKey",
            true,
            true,
            FieldKind::Text {
                min: 30,
                max: 60,
                pattern: String::new(),
                autogenerate_pattern: "[a-zA-Z0-9]{50}".into(),
                primary_key: false,
            },
        ),
        sys(
            "email",
            false,
            true,
            FieldKind::Email { only_domains: vec![], except_domains: vec![] },
        ),
        sys("emailVisibility", false, false, FieldKind::Bool),
        sys("verified", false, false, FieldKind::Bool),
    ]
}

/// An immutable snapshot of every collection, indexed by id and (lower-cased) name.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    collections: Vec<Arc<Collection>>,
    by_id: HashMap<String, usize>,
    by_name: HashMap<String, usize>,
}

impl Schema {
    pub fn new(collections: Vec<Collection>) -> Schema {
        let mut s = Schema::default();
        for c in collections {
            let idx = s.collections.len();
            s.by_id.insert(c.id.clone(), idx);
            s.by_name.insert(c.name.to_lowercase(), idx);
            s.collections.push(Arc::new(c));
        }
        s
    }

    /// Looks a collection up by id or (case-insensitive) name.
    pub fn get(&self, id_or_name: &str) -> Option<&Arc<Collection>> {
        self.by_id
            .get(id_or_name)
            .or_else(|| self.by_name.get(&id_or_name.to_lowercase()))
            .map(|&i| &self.collections[i])
    }

    pub fn by_id(&self, id: &str) -> Option<&Arc<Collection>> {
        self.by_id.get(id).map(|&i| &self.collections[i])
    }

    pub fn all(&self) -> &[Arc<Collection>] {
        &self.collections
    }

    /// Every (collection, field) whose relation field points at `target_id`.
    pub fn references_to<'a>(
        &'a self,
        target_id: &'a str,
    ) -> impl Iterator<Item = (&'a Arc<Collection>, &'a Field)> + 'a {
        self.collections.iter().flat_map(move |c| {
            c.fields
                .iter()
                .filter(move |f| f.relation_target() == Some(target_id))
                .map(move |f| (c, f))
        })
    }
}

fn rule_value(v: &Value) -> Result<Rule, String> {
    match v {
        Value::Null => Ok(Rule::new(None)),
        Value::String(s) => Ok(Rule::new(Some(s.clone()))),
        _ => Err("rules must be strings or null".into()),
    }
}

impl Collection {
    /// A new, empty collection of the given type with PocketBase's defaults.
    pub fn blank(kind: CollectionType, name: &str) -> Collection {
        let mut fields = vec![id_field()];
        let auth = (kind == CollectionType::Auth).then(|| {
            fields.extend(auth_system_fields());
            AuthOptions {
                auth_rule: Rule::open(),
                manage_rule: Rule::default(),
                identity_fields: vec!["email".into()],
                password_auth_enabled: true,
                tokens: TokenConfigs::fresh(),
                extra: default_auth_extra(),
            }
        });
        Collection {
            id: String::new(),
            name: name.to_string(),
            kind,
            system: false,
            rules: Rules::default(),
            fields,
            indexes: Vec::new(),
            created: String::new(),
            updated: String::new(),
            auth,
            webhooks: Vec::new(),
        }
    }

    /// Applies the keys present in API JSON onto this definition (a partial update; `fields`
    /// replaces the whole list). Errors are format errors ("invalid formatting" in PocketBase).
    pub fn apply_json(&mut self, o: &Map<String, Value>) -> Result<(), String> {
        if let Some(v) = o.get("name") {
            self.name = v.as_str().ok_or("name must be a string")?.to_string();
        }
        let rules = &mut self.rules;
        for (key, slot) in [
            ("listRule", &mut rules.list),
            ("viewRule", &mut rules.view),
            ("createRule", &mut rules.create),
            ("updateRule", &mut rules.update),
            ("deleteRule", &mut rules.delete),
        ] {
            if let Some(v) = o.get(key) {
                *slot = rule_value(v)?;
            }
        }
        if let Some(v) = o.get("fields") {
            let items = v.as_array().ok_or("fields must be an array")?;
            let mut fields = Vec::with_capacity(items.len());
            for item in items {
                fields.push(Field::from_json(item).map_err(|e| e.to_string())?);
            }
            self.fields = fields;
        }
        if let Some(v) = o.get("indexes") {
            let items = v.as_array().ok_or("indexes must be an array")?;
            self.indexes = items
                .iter()
                .map(|i| i.as_str().map(str::to_string).ok_or("indexes must be strings"))
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = o.get("webhooks") {
            let items = match v {
                Value::Null => Vec::new(),
                Value::Array(a) => a.clone(),
                _ => return Err("webhooks must be an array".into()),
            };
            let old = std::mem::take(&mut self.webhooks);
            self.webhooks =
                items.iter().map(|i| Webhook::from_json(i, &old)).collect::<Result<_, _>>()?;
        }
        if let Some(a) = self.auth.as_mut() {
            if let Some(v) = o.get("authRule") {
                a.auth_rule = rule_value(v)?;
            }
            if let Some(v) = o.get("manageRule") {
                a.manage_rule = rule_value(v)?;
            }
            if let Some(pa) = o.get("passwordAuth").and_then(Value::as_object) {
                if let Some(e) = pa.get("enabled").and_then(Value::as_bool) {
                    a.password_auth_enabled = e;
                }
                if let Some(ids) = pa.get("identityFields").and_then(Value::as_array) {
                    a.identity_fields =
                        ids.iter().filter_map(Value::as_str).map(str::to_string).collect();
                }
            }
            for kind in TokenKind::ALL {
                let Some(t) = o.get(kind.key()) else { continue };
                let t = t.as_object().ok_or("token options must be objects")?;
                let slot = a.tokens.get_mut(kind);
                match t.get("duration") {
                    None | Some(Value::Null) => {}
                    Some(d) => {
                        slot.duration = d
                            .as_i64()
                            .or_else(|| d.as_f64().map(|f| f as i64))
                            .ok_or("token durations must be numbers")?;
                    }
                }
                match t.get("secret") {
                    None | Some(Value::Null) => {}
                    Some(v) => {
                        slot.secret = v.as_str().ok_or("token secrets must be strings")?.into();
                    }
                }
            }
            // A group given in part keeps its other settings (`{"mfa": {"rule": …}}` leaves
            // `enabled` and `duration` as they were), as PocketBase reads into the stored options.
            for key in default_auth_extra().keys() {
                if let Some(v) = o.get(key) {
                    match (a.extra.get_mut(key), v) {
                        (Some(Value::Object(old)), Value::Object(new)) => {
                            for (k, v) in new {
                                old.insert(k.clone(), v.clone());
                            }
                        }
                        _ => {
                            a.extra.insert(key.clone(), v.clone());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Puts the `id` field first and adds missing auth system fields (keeping existing ones).
    pub fn ensure_system_fields(&mut self) {
        if let Some(pos) = self.fields.iter().position(|f| f.name == "id") {
            let f = self.fields.remove(pos);
            self.fields.insert(0, f);
        } else {
            self.fields.insert(0, id_field());
        }
        if self.is_auth() {
            for (i, sf) in auth_system_fields().into_iter().enumerate() {
                if self.field(&sf.name).is_none() {
                    self.fields.insert((i + 1).min(self.fields.len()), sf);
                }
            }
        }
    }

    /// Reads a definition as persisted by `to_json(true)`.
    pub fn from_stored_json(v: &Value) -> Result<Collection, String> {
        let o = v.as_object().ok_or("collection must be an object")?;
        let kind = match o.get("type").and_then(Value::as_str) {
            Some("auth") => CollectionType::Auth,
            Some("base") => CollectionType::Base,
            other => return Err(format!("unknown collection type {other:?}")),
        };
        let mut c = Collection::blank(kind, "");
        c.apply_json(o)?;
        let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        c.id = s("id");
        c.created = s("created");
        c.updated = s("updated");
        c.system = o.get("system").and_then(Value::as_bool).unwrap_or(false);
        if let Some(a) = c.auth.as_mut() {
            // Definitions stored before every kind had its own secret: derive the missing ones
            // from the auth token's, so they are the same after every load and on every
            // instance (a random one would change each time).
            let auth_secret = a.tokens.get(TokenKind::Auth).secret.clone();
            for kind in TokenKind::ALL {
                let stored = o.get(kind.key()).and_then(|t| t.get("secret"));
                if stored.and_then(Value::as_str).is_none() && kind != TokenKind::Auth {
                    a.tokens.get_mut(kind).secret = format!("{auth_secret}:{}", kind.key());
                }
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_collection_ids_match_pocketbase() {
        assert_eq!(Collection::default_id(CollectionType::Base, "allf"), "pbc_2844260936");
        assert_eq!(Collection::default_id(CollectionType::Auth, SUPERUSERS), SUPERUSERS_ID);
    }

    #[test]
    fn stored_json_roundtrips_with_secret() {
        let mut c = Collection::blank(CollectionType::Auth, "members");
        c.id = "abc".into();
        c.rules.list = Rule::new(Some("id = @request.auth.id".into()));
        let back = Collection::from_stored_json(&c.to_json(true)).unwrap();
        assert_eq!(back, c);
        assert!(c.to_json(false)["authToken"].get("secret").is_none());
    }
}
