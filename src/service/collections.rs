//! Collections (superusers only): list, view, create, update (table migrated in one transaction),
//! delete, truncate, import. Definitions are validated here: names, fields, relation targets,
//! rules (compiled against the new schema) and indexes.

use std::sync::Arc;

use regex::Regex;
use serde_json::{json, Map, Value};

use crate::model::collection::{
    Collection, CollectionType, Schema, TokenConfigs, TokenKind, SUPERUSERS, TOKEN_DURATION_MAX,
    TOKEN_DURATION_MIN, TOKEN_SECRET_LEN,
};
use crate::model::field::{Field, FieldKind};
use crate::model::filter;
use crate::model::policy::{Parsed, Rule};
use crate::model::request::RequestInfo;
use crate::model::ErrorCode;
use crate::service::params::ListParams;
use crate::service::{error_entry, Result, Service, ServiceError};
use crate::store::StoreError;

const RESERVED_FIELD_NAMES: &[&str] =
    &["expand", "collectionId", "collectionName", "rowid", "_rowid", "oid", "_rowid_"];
/// Names of storage tables and SQL functions a collection may not take.
const RESERVED_COLLECTION_NAMES: &[&str] =
    &["_collections", "_params", "_migrations", "json_each", "json_tree", "pragma_table_info"];
/// Collection and field names are at most this long: PostgreSQL truncates identifiers to 63
/// bytes, so longer names could collide there (PocketBase allows 255 on SQLite only).
const MAX_NAME_LEN: usize = 63;
/// More fields than this are refused (SQLite's default column limit is 2000).
const MAX_FIELDS: usize = 1000;

/// 401 for guests, 403 for non-superusers.
pub(crate) fn require_superuser(info: &RequestInfo) -> Result<()> {
    match &info.auth {
        None => Err(ServiceError::Unauthorized(
            "The request requires valid record authorization token.".into(),
        )),
        Some(a) if a.is_superuser() => Ok(()),
        Some(_) => Err(ServiceError::Forbidden(
            "The authorized record is not allowed to perform this action.".into(),
        )),
    }
}

fn invalid_format() -> ServiceError {
    ServiceError::bad("Failed to load the submitted data due to invalid formatting.")
}

impl Service {
    /// `GET /api/collections`.
    pub async fn list_collections(&self, p: &ListParams, info: &RequestInfo) -> Result<Value> {
        require_superuser(info)?;
        let schema = self.schema();
        let mut items: Vec<Value> = schema.all().iter().map(|c| c.to_json(false)).collect();
        if let Some(raw) = p.filter.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
            let expr = filter::parse(raw)
                .map_err(|e| ServiceError::bad(format!("Invalid filter: {e}.")))?;
            items.retain(|c| matches_json(&expr, c));
        }
        if let Some(raw) = p.sort.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            let sort = filter::parse_sort(raw)
                .map_err(|e| ServiceError::bad(format!("Invalid sort: {e}.")))?;
            for item in sort.iter().rev() {
                let key = item.ident.segments.join(".");
                items.sort_by(|a, b| {
                    let ord = cmp_json(&a[&key], &b[&key]);
                    if item.desc {
                        ord.reverse()
                    } else {
                        ord
                    }
                });
            }
        }
        let (page, per_page) = p.paging()?;
        let total = items.len();
        // Saturating arithmetic: `page` can be anything up to i64::MAX (an empty page, not a panic).
        let start =
            usize::try_from(ListParams::offset(page, per_page)).unwrap_or(usize::MAX).min(total);
        let end = start.saturating_add(per_page as usize).min(total);
        let (ti, tp) = if p.skip_total() {
            (-1, -1)
        } else {
            let total = total as i64;
            (total, (total + per_page - 1) / per_page)
        };
        let mut page_items = items[start..end].to_vec();
        if let Some(spec) = p.fields.as_deref().and_then(crate::service::render::FieldsSpec::parse)
        {
            page_items = page_items.iter().map(|v| spec.apply(v)).collect();
        }
        Ok(
            json!({"items": page_items, "page": page, "perPage": per_page, "totalItems": ti, "totalPages": tp}),
        )
    }

    /// `GET /api/collections/{idOrName}`.
    pub fn view_collection(&self, id_or_name: &str, info: &RequestInfo) -> Result<Value> {
        require_superuser(info)?;
        let c = self.schema().get(id_or_name).cloned().ok_or_else(ServiceError::not_found)?;
        Ok(c.to_json(false))
    }

    /// `POST /api/collections`.
    pub async fn create_collection(
        &self,
        body: Map<String, Value>,
        info: &RequestInfo,
    ) -> Result<Value> {
        require_superuser(info)?;
        let kind = match body.get("type").and_then(Value::as_str).unwrap_or("base") {
            "base" => CollectionType::Base,
            "auth" => CollectionType::Auth,
            _ => return Err(invalid_format()),
        };
        let name = body.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let mut c = Collection::blank(kind, &name);
        c.apply_json(&body).map_err(|_| invalid_format())?;
        c.ensure_system_fields();
        c.id = match body.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => Collection::default_id(kind, &c.name),
        };
        let now = crate::util::now_string();
        c.created.clone_from(&now);
        c.updated = now;
        if kind == CollectionType::Auth && !body.contains_key("indexes") {
            c.indexes = default_auth_indexes(&c);
        }
        let schema = self.schema();
        self.validate_collection(&schema, None, &mut c, "Failed to create collection.")?;
        self.store
            .create_collection(&c)
            .await
            .map_err(|e| save_error(e, "Failed to create collection."))?;
        self.reload_schema().await?;
        Ok(c.to_json(false))
    }

    /// `PATCH /api/collections/{idOrName}`.
    pub async fn update_collection(
        &self,
        id_or_name: &str,
        body: Map<String, Value>,
        info: &RequestInfo,
    ) -> Result<Value> {
        require_superuser(info)?;
        let schema = self.schema();
        let old = schema.get(id_or_name).cloned().ok_or_else(ServiceError::not_found)?;
        if let Some(t) = body.get("type").and_then(Value::as_str) {
            if t != old.kind.as_str() {
                let data = Map::from_iter([(
                    "type".to_string(),
                    error_entry(
                        ErrorCode::CollectionTypeChange,
                        "Collection type cannot be changed.",
                    ),
                )]);
                return Err(ServiceError::fields("Failed to update collection.", data));
            }
        }
        let mut c = (*old).clone();
        c.apply_json(&body).map_err(|_| invalid_format())?;
        c.ensure_system_fields();
        c.updated = crate::util::now_string();
        self.validate_collection(&schema, Some(&old), &mut c, "Failed to update collection.")?;
        self.store
            .update_collection(&old, &c)
            .await
            .map_err(|e| save_error(e, "Failed to update collection."))?;
        self.reload_schema().await?;
        Ok(c.to_json(false))
    }

    /// `DELETE /api/collections/{idOrName}`.
    pub async fn delete_collection(&self, id_or_name: &str, info: &RequestInfo) -> Result<()> {
        require_superuser(info)?;
        let schema = self.schema();
        let c = schema.get(id_or_name).cloned().ok_or_else(ServiceError::not_found)?;
        if c.system || c.name == SUPERUSERS {
            return Err(ServiceError::bad("Failed to delete collection."));
        }
        if let Some((other, _)) = schema.references_to(&c.id).find(|(o, _)| o.id != c.id) {
            return Err(ServiceError::bad(format!(
                "Failed to delete collection probably due to existing reference in {}.",
                other.name
            )));
        }
        self.store.delete_collection(&c).await?;
        self.reload_schema().await?;
        self.sweep_collection_files(&c.id).await;
        Ok(())
    }

    /// `DELETE /api/collections/{idOrName}/truncate`.
    pub async fn truncate_collection(&self, id_or_name: &str, info: &RequestInfo) -> Result<()> {
        require_superuser(info)?;
        let c = self.schema().get(id_or_name).cloned().ok_or_else(ServiceError::not_found)?;
        self.store.truncate_collection(&c).await?;
        self.sweep_collection_files(&c.id).await;
        Ok(())
    }

    /// `PUT /api/collections/import`: creates or updates each listed collection (by id, then
    /// name); with `deleteMissing`, deletes non-system collections not listed.
    pub async fn import_collections(
        &self,
        body: Map<String, Value>,
        info: &RequestInfo,
    ) -> Result<()> {
        require_superuser(info)?;
        let list = body.get("collections").and_then(Value::as_array).cloned().unwrap_or_default();
        if list.is_empty() {
            let data = Map::from_iter([(
                "collections".to_string(),
                error_entry(ErrorCode::Required, "Cannot be blank."),
            )]);
            return Err(ServiceError::fields(
                "An error occurred while validating the submitted data.",
                data,
            ));
        }
        let fail = |e: ServiceError| {
            let data = Map::from_iter([(
                "collections".to_string(),
                error_entry(
                    ErrorCode::CollectionsImportFailure,
                    &format!("Failed to import the collections configuration. Raw error: {e}"),
                ),
            )]);
            ServiceError::fields("An error occurred while validating the submitted data.", data)
        };
        let mut kept = Vec::new();
        for item in &list {
            let Some(obj) = item.as_object() else { return Err(invalid_format()) };
            let key = obj
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .or_else(|| obj.get("name").and_then(Value::as_str))
                .unwrap_or_default()
                .to_string();
            let exists = self.schema().get(&key).cloned();
            let saved = match exists {
                Some(_) => self.update_collection(&key, obj.clone(), info).await.map_err(fail)?,
                None => self.create_collection(obj.clone(), info).await.map_err(fail)?,
            };
            kept.push(saved["id"].as_str().unwrap_or_default().to_string());
        }
        if body.get("deleteMissing").and_then(Value::as_bool).unwrap_or(false) {
            let schema = self.schema();
            for c in schema.all() {
                if !c.system && !kept.contains(&c.id) {
                    self.delete_collection(&c.id, info).await.map_err(fail)?;
                }
            }
        }
        Ok(())
    }

    /// `GET /api/collections/meta/scaffolds`.
    pub fn collection_scaffolds(&self, info: &RequestInfo) -> Result<Value> {
        require_superuser(info)?;
        let mut base = Collection::blank(CollectionType::Base, "");
        base.created = String::new();
        let auth = Collection::blank(CollectionType::Auth, "");
        Ok(json!({"base": base.to_json(false), "auth": auth.to_json(false)}))
    }

    /// Validates and normalises a definition (field ids, names, relations, rules, indexes).
    fn validate_collection(
        &self,
        schema: &Schema,
        old: Option<&Arc<Collection>>,
        c: &mut Collection,
        message: &str,
    ) -> Result<()> {
        let mut data = Map::new();
        let name_re =
            Regex::new(r"^[A-Za-z0-9_]+$").map_err(|e| ServiceError::Internal(e.to_string()))?;
        if c.name.is_empty() {
            data.insert("name".into(), error_entry(ErrorCode::Required, "Cannot be blank."));
        } else if !name_re.is_match(&c.name) || c.name.len() > MAX_NAME_LEN {
            data.insert(
                "name".into(),
                error_entry(ErrorCode::MatchInvalid, "Must be in a valid format."),
            );
        } else if RESERVED_COLLECTION_NAMES.contains(&c.name.to_lowercase().as_str())
            || c.name.to_lowercase().starts_with("sqlite_")
        {
            data.insert(
                "name".into(),
                error_entry(ErrorCode::ReservedName, "The name is reserved."),
            );
        } else if let Some(other) = schema.get(&c.name) {
            if old.is_none_or(|o| o.id != other.id) {
                data.insert(
                    "name".into(),
                    error_entry(
                        ErrorCode::CollectionNameExists,
                        "Collection name must be unique (case insensitive).",
                    ),
                );
            }
        }
        if let Some(o) = old {
            if o.system && o.name != c.name {
                data.insert(
                    "name".into(),
                    error_entry(
                        ErrorCode::CollectionSystemNameChange,
                        "System collection name cannot be changed.",
                    ),
                );
            }
        } else if schema.by_id(&c.id).is_some() {
            data.insert(
                "id".into(),
                error_entry(ErrorCode::CollectionIdExists, "Collection id must be unique."),
            );
        }
        if let Some(a) = &c.auth {
            validate_tokens(&a.tokens, &mut data);
            validate_mfa(a, &mut data);
        }
        if c.fields.len() > MAX_FIELDS {
            data.insert(
                "fields".into(),
                error_entry(
                    ErrorCode::TooManyFields,
                    &format!("At most {MAX_FIELDS} fields are allowed."),
                ),
            );
            return Err(ServiceError::fields(message, data));
        }
        let mut field_errors = Map::new();
        let mut used_ids: Vec<String> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for (i, f) in c.fields.iter_mut().enumerate() {
            let mut err = Map::new();
            let mut type_changed = false;
            if f.id.is_empty() {
                let base = Field::default_id(f.kind.type_name(), &f.name);
                let mut id = base.clone();
                let mut n = 2;
                while used_ids.contains(&id) {
                    id = format!("{base}{n}");
                    n += 1;
                }
                f.id = id;
            }
            if used_ids.contains(&f.id) {
                err.insert(
                    "id".into(),
                    error_entry(ErrorCode::DuplicatedFieldId, "Duplicated field id."),
                );
            }
            used_ids.push(f.id.clone());
            if f.name.is_empty() {
                err.insert("name".into(), error_entry(ErrorCode::Required, "Cannot be blank."));
            } else if !name_re.is_match(&f.name) || f.name.len() > MAX_NAME_LEN {
                err.insert(
                    "name".into(),
                    error_entry(ErrorCode::MatchInvalid, "Must be in a valid format."),
                );
            } else if RESERVED_FIELD_NAMES.iter().any(|r| r.eq_ignore_ascii_case(&f.name))
                && !f.system
            {
                err.insert(
                    "name".into(),
                    error_entry(ErrorCode::NotInInvalid, "The name is reserved."),
                );
            } else if names.iter().any(|n| n.eq_ignore_ascii_case(&f.name)) {
                err.insert(
                    "name".into(),
                    error_entry(
                        ErrorCode::DuplicatedFieldName,
                        "Duplicated or invalid field name.",
                    ),
                );
            }
            names.push(f.name.clone());
            if let Some(of) = old.and_then(|o| o.fields.iter().find(|of| of.id == f.id)) {
                if of.kind.type_name() != f.kind.type_name() {
                    type_changed = true;
                }
            }
            match &f.kind {
                FieldKind::Relation { collection_id, .. } => {
                    let own = collection_id == &c.id;
                    if collection_id.is_empty() {
                        err.insert(
                            "collectionId".into(),
                            error_entry(ErrorCode::Required, "Cannot be blank."),
                        );
                    } else if !own && schema.by_id(collection_id).is_none() {
                        err.insert(
                            "collectionId".into(),
                            error_entry(
                                ErrorCode::FieldRelationMissingCollection,
                                "The relation collection doesn't exist.",
                            ),
                        );
                    }
                }
                FieldKind::Autodate { on_create: false, on_update: false } => {
                    err.insert(
                        "onCreate".into(),
                        error_entry(ErrorCode::Required, "Cannot be blank."),
                    );
                }
                FieldKind::Select { values, .. } if values.is_empty() => {
                    err.insert(
                        "values".into(),
                        error_entry(ErrorCode::Required, "Cannot be blank."),
                    );
                }
                _ => {}
            }
            if type_changed {
                // PocketBase reports this one on the field itself, not on an option.
                field_errors.insert(
                    i.to_string(),
                    error_entry(ErrorCode::FieldTypeChange, "Field type cannot be changed."),
                );
            } else if !err.is_empty() {
                field_errors.insert(i.to_string(), Value::Object(err));
            }
        }
        if !field_errors.is_empty() {
            data.insert("fields".into(), Value::Object(field_errors));
        }
        if !data.is_empty() {
            return Err(ServiceError::fields(message, data));
        }
        // Rules compile against the schema as it will be after this change.
        let mut all: Vec<Collection> = schema
            .all()
            .iter()
            .filter(|x| old.is_none_or(|o| o.id != x.id))
            .map(|x| (**x).clone())
            .collect();
        all.push(c.clone());
        let next = Schema::new(all);
        let Some(me) = next.by_id(&c.id).cloned() else {
            return Err(ServiceError::Internal("collection vanished from its own schema".into()));
        };
        let mut rules: Vec<(&str, &Rule)> = vec![
            ("listRule", &c.rules.list),
            ("viewRule", &c.rules.view),
            ("createRule", &c.rules.create),
            ("updateRule", &c.rules.update),
            ("deleteRule", &c.rules.delete),
        ];
        if let Some(a) = &c.auth {
            rules.push(("authRule", &a.auth_rule));
            rules.push(("manageRule", &a.manage_rule));
        }
        for (key, rule) in rules {
            // Rules are parsed when the definition is read; here they must also compile
            // against the schema they will run in.
            let res = match rule.parsed() {
                Parsed::Null | Parsed::Open => continue,
                Parsed::Invalid(e) => Err(e.to_string()),
                Parsed::Expr(expr) => {
                    self.store.check_rule(&next, &me, expr).map_err(|e| e.to_string())
                }
            };
            if let Err(e) = res {
                data.insert(
                    key.into(),
                    json!({"code": ErrorCode::InvalidRule, "message": format!("Invalid rule. Raw error: {e}.")}),
                );
            }
        }
        crate::service::webhooks::validate(
            &self.store,
            &me,
            &self.outbound.webhooks_allow,
            &mut data,
        );
        if let Err((i, e)) = self.store.check_indexes(schema, &me) {
            data.insert(
                "indexes".into(),
                json!({ i.to_string(): {"code": ErrorCode::InvalidIndexExpression, "message": format!("Invalid index expression: {e}.")}}),
            );
        }
        if !data.is_empty() {
            return Err(ServiceError::fields(message, data));
        }
        Ok(())
    }
}

fn default_auth_indexes(c: &Collection) -> Vec<String> {
    vec![
        format!("CREATE UNIQUE INDEX idx_tokenKey_{} ON {} (tokenKey)", c.id, c.name),
        format!("CREATE UNIQUE INDEX idx_email_{} ON {} (email) WHERE email != ''", c.id, c.name),
    ]
}

fn save_error(e: StoreError, message: &str) -> ServiceError {
    match e {
        StoreError::Index(msg) => ServiceError::fields(
            message,
            Map::from_iter([(
                "indexes".to_string(),
                error_entry(ErrorCode::InvalidIndexExpression, &msg),
            )]),
        ),
        StoreError::Unique(_) => ServiceError::fields(
            message,
            Map::from_iter([(
                "indexes".to_string(),
                error_entry(
                    ErrorCode::InvalidIndexExpression,
                    "Existing records violate the unique index.",
                ),
            )]),
        ),
        other => other.into(),
    }
}

fn cmp_json(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(0.0)
            .partial_cmp(&y.as_f64().unwrap_or(0.0))
            .unwrap_or(std::cmp::Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => a.as_str().unwrap_or_default().cmp(b.as_str().unwrap_or_default()),
    }
}

/// Evaluates a filter over a collection's JSON (top-level keys only), for the collections list.
fn matches_json(e: &filter::ast::Expr, obj: &Value) -> bool {
    use filter::ast::{CmpOp, Expr, Operand};
    let val = |o: &Operand| -> Value {
        match o {
            Operand::Null => Value::String(String::new()),
            Operand::Bool(b) => Value::Bool(*b),
            Operand::Number(n) => json!(n),
            Operand::Text(s) => Value::String(s.clone()),
            Operand::Ident(id) => match obj.get(id.segments.join(".")) {
                Some(Value::Null) | None => Value::String(String::new()),
                Some(v) => v.clone(),
            },
            Operand::Func { .. } => Value::Null,
        }
    };
    match e {
        Expr::And(a, b) => matches_json(a, obj) && matches_json(b, obj),
        Expr::Or(a, b) => matches_json(a, obj) || matches_json(b, obj),
        Expr::Cmp { left, op, right } => {
            let (l, r) = (val(left), val(right));
            let text = |v: &Value| match v {
                Value::String(s) => s.to_lowercase(),
                other => other.to_string(),
            };
            match op.kind {
                CmpOp::Eq => l == r || text(&l) == text(&r),
                CmpOp::Neq => !(l == r || text(&l) == text(&r)),
                CmpOp::Like => text(&l).contains(text(&r).trim_matches('%')),
                CmpOp::NotLike => !text(&l).contains(text(&r).trim_matches('%')),
                CmpOp::Gt => cmp_json(&l, &r).is_gt(),
                CmpOp::Gte => cmp_json(&l, &r).is_ge(),
                CmpOp::Lt => cmp_json(&l, &r).is_lt(),
                CmpOp::Lte => cmp_json(&l, &r).is_le(),
            }
        }
    }
}

/// PocketBase's checks of the token option groups: a duration of 10 s to three years, a secret
/// of 30 to 255 characters. Errors go under `<group>.<key>`, as PocketBase nests them.
/// `mfa`, checked while it is enabled (as PocketBase): another method besides the password (a
/// second factor must exist), a session duration of 10 s to a day, a rule that parses.
fn validate_mfa(a: &crate::model::collection::AuthOptions, data: &mut Map<String, Value>) {
    let Some(mfa) = a.extra.get("mfa") else { return };
    if !mfa.get("enabled").and_then(Value::as_bool).unwrap_or(false) {
        return;
    }
    let on = |key: &str| {
        a.extra.get(key).and_then(|g| g.get("enabled")).and_then(Value::as_bool).unwrap_or(false)
    };
    let methods = [a.password_auth_enabled, on("otp"), on("oauth2")].iter().filter(|m| **m).count();
    let mut err = Map::new();
    if methods < 2 {
        err.insert(
            "enabled".into(),
            json!({"code": "validation_mfa_not_enough_auths",
                   "message": "MFA requires at least 2 auth methods to be enabled."}),
        );
    }
    let duration = mfa.get("duration").and_then(Value::as_i64).unwrap_or(0);
    if duration == 0 {
        err.insert("duration".into(), error_entry(ErrorCode::Required, "Cannot be blank."));
    } else if !(10..=86_400).contains(&duration) {
        let (code, message, threshold) = if duration < 10 {
            (ErrorCode::MinGreaterEqualThanRequired, "Must be no less than 10.", 10)
        } else {
            (ErrorCode::MaxLessEqualThanRequired, "Must be no greater than 86400.", 86_400)
        };
        err.insert(
            "duration".into(),
            json!({"code": code.as_str(), "message": message, "params": {"threshold": threshold}}),
        );
    }
    let rule = mfa.get("rule").and_then(Value::as_str).unwrap_or_default();
    if !rule.trim().is_empty() {
        if let Err(e) = crate::model::filter::parse(rule) {
            err.insert(
                "rule".into(),
                json!({"code": ErrorCode::InvalidRule, "message": format!("Invalid rule. Raw error: {e}.")}),
            );
        }
    }
    if !err.is_empty() {
        data.insert("mfa".into(), Value::Object(err));
    }
}

fn validate_tokens(tokens: &TokenConfigs, data: &mut Map<String, Value>) {
    for kind in TokenKind::ALL {
        let t = tokens.get(kind);
        let mut err = Map::new();
        if t.duration == 0 {
            err.insert("duration".into(), error_entry(ErrorCode::Required, "Cannot be blank."));
        } else if t.duration < TOKEN_DURATION_MIN {
            err.insert(
                "duration".into(),
                json!({
                    "code": ErrorCode::MinGreaterEqualThanRequired.as_str(),
                    "message": format!("Must be no less than {TOKEN_DURATION_MIN}."),
                    "params": {"threshold": TOKEN_DURATION_MIN},
                }),
            );
        } else if t.duration > TOKEN_DURATION_MAX {
            err.insert(
                "duration".into(),
                json!({
                    "code": ErrorCode::MaxLessEqualThanRequired.as_str(),
                    "message": format!("Must be no greater than {TOKEN_DURATION_MAX}."),
                    "params": {"threshold": TOKEN_DURATION_MAX},
                }),
            );
        }
        let len = t.secret.chars().count();
        if !TOKEN_SECRET_LEN.contains(&len) {
            let (min, max) = (TOKEN_SECRET_LEN.start(), TOKEN_SECRET_LEN.end());
            err.insert(
                "secret".into(),
                json!({
                    "code": ErrorCode::LengthOutOfRange.as_str(),
                    "message": format!("The length must be between {min} and {max}."),
                    "params": {"min": min, "max": max},
                }),
            );
        }
        if !err.is_empty() {
            data.insert(kind.key().into(), Value::Object(err));
        }
    }
}
