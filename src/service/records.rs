//! Records: list / view / create / update / delete with API rules, validation, update modifiers,
//! auth-record specifics (passwords, tokenKey rotation, `verified`), `expand` and `fields`;
//! uploaded files through `service::files` (stored before the commit, dropped ones deleted after).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::files::UploadedFile;
use crate::model::collection::{Collection, Schema};
use crate::model::field::FieldKind;
use crate::model::filter::ast::{Expr, Ident};
use crate::model::filter::{self, SortItem};
use crate::model::policy::{Action, Decision, Policy};
use crate::model::request::RequestInfo;
use crate::model::value::{self, Modifier};
use crate::model::ErrorCode;
use crate::service::expand::ExpandTree;
use crate::service::files::Uploads;
use crate::service::params::{ListParams, ViewParams};
use crate::service::passwords::{hash_password, verify_password};
use crate::service::render::{self, FieldsSpec};
use crate::service::{error_entry, field_error_json, Result, Service, ServiceError};
use crate::store::{ListQuery, Row, RuleCheck, StoreError};

/// What the collection's rule for `action` allows the requester (`model::policy` decides).
fn access(coll: &Collection, action: Action, info: &RequestInfo) -> Decision {
    Policy::new(info).decide(coll, action)
}

fn refuse_nul(name: &str, raw: &str) -> Result<()> {
    if raw.contains('\0') {
        // PostgreSQL cannot bind NUL in text; refuse it on every engine alike.
        return Err(ServiceError::bad(format!("Invalid {name}: NUL characters are not allowed.")));
    }
    Ok(())
}

/// Refuses `@request.*` and `@collection.*` identifiers in a parsed client filter or sort to
/// anyone but superusers. The parsed form is checked, not the text: `title = "a@request.b"`
/// only compares with a string.
fn guard_client_expr<'e>(
    name: &str,
    mut idents: impl Iterator<Item = &'e Ident>,
    info: &RequestInfo,
) -> Result<()> {
    let policy = Policy::new(info);
    if idents.all(|i| policy.may_reference(i)) {
        return Ok(());
    }
    Err(ServiceError::Forbidden(format!(
        "Only superusers can use @request. and @collection. in \"{name}\"."
    )))
}

/// The client's `filter`, parsed and checked against what the requester may reference.
fn client_filter(raw: &str, info: &RequestInfo) -> Result<Expr> {
    refuse_nul("filter", raw)?;
    let expr =
        filter::parse(raw).map_err(|e| ServiceError::bad(format!("Invalid filter: {e}.")))?;
    guard_client_expr("filter", expr.idents().into_iter(), info)?;
    Ok(expr)
}

/// The client's `sort`, parsed and checked like a filter.
fn client_sort(raw: &str, info: &RequestInfo) -> Result<Vec<SortItem>> {
    refuse_nul("sort", raw)?;
    let sort =
        filter::parse_sort(raw).map_err(|e| ServiceError::bad(format!("Invalid sort: {e}.")))?;
    guard_client_expr("sort", sort.iter().map(|item| &item.ident), info)?;
    Ok(sort)
}

fn store_err_to_bad(e: StoreError, what: &str) -> ServiceError {
    match e {
        StoreError::Query(q) => ServiceError::bad(format!("Invalid {what}: {}", q.0)),
        other => other.into(),
    }
}

impl Service {
    /// `GET /api/collections/{c}/records`.
    pub async fn list_records(
        &self,
        coll: &str,
        p: &ListParams,
        info: &RequestInfo,
    ) -> Result<Value> {
        let (schema, coll) = self.collection(coll)?;
        let access = access(&coll, Action::List, info);
        if access.is_denied() {
            return Err(ServiceError::superusers_only());
        }
        let (page, per_page) = p.paging()?;
        let filter = match p.filter.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
            Some(raw) => Some(client_filter(raw, info)?),
            None => None,
        };
        let sort = match p.sort.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(raw) => client_sort(raw, info)?,
            None => Vec::new(),
        };
        let skip_total = p.skip_total();
        let q = ListQuery {
            schema: &schema,
            collection: &coll,
            info,
            rule: access.expr(),
            filter: filter.as_ref(),
            sort: &sort,
            limit: per_page,
            offset: ListParams::offset(page, per_page),
            count_total: !skip_total,
        };
        let (rows, total) =
            self.store.list_records(q).await.map_err(|e| store_err_to_bad(e, "filter or sort"))?;
        let items = self
            .present(&schema, &coll, &rows, p.expand.as_deref(), p.fields.as_deref(), info)
            .await?;
        let (total_items, total_pages) = match total {
            Some(t) => (t, (t + per_page - 1) / per_page),
            None => (-1, -1),
        };
        Ok(json!({
            "items": items, "page": page, "perPage": per_page,
            "totalItems": total_items, "totalPages": total_pages,
        }))
    }

    /// `GET /api/collections/{c}/records/{id}`.
    pub async fn view_record(
        &self,
        coll: &str,
        id: &str,
        p: &ViewParams,
        info: &RequestInfo,
    ) -> Result<Value> {
        let (schema, coll) = self.collection(coll)?;
        let access = access(&coll, Action::View, info);
        if access.is_denied() {
            return Err(ServiceError::superusers_only());
        }
        let row = self
            .store
            .get_record(&schema, &coll, info, id, access.expr())
            .await?
            .ok_or_else(ServiceError::not_found)?;
        self.present_one(&schema, &coll, row, p, info).await
    }

    /// `POST /api/collections/{c}/records`.
    pub async fn create_record(
        &self,
        coll: &str,
        body: Map<String, Value>,
        p: &ViewParams,
        info: &RequestInfo,
    ) -> Result<Value> {
        self.create_record_with_files(coll, body, Vec::new(), p, info).await
    }

    /// `POST /api/collections/{c}/records` with uploaded files (a multipart body).
    pub async fn create_record_with_files(
        &self,
        coll: &str,
        mut body: Map<String, Value>,
        files: Vec<UploadedFile>,
        p: &ViewParams,
        info: &RequestInfo,
    ) -> Result<Value> {
        let (schema, coll) = self.collection(coll)?;
        let access = access(&coll, Action::Create, info);
        if access.is_denied() {
            return Err(ServiceError::superusers_only());
        }
        let uploads = Uploads::merge(&coll, &mut body, files);
        let zero: Row = coll.fields.iter().map(|f| (f.name.clone(), f.zero_value())).collect();
        let body = resolve_modifiers(&coll, &zero, client_writable(&coll, body, info));
        let file_errors = uploads.check(&coll, None, &body);
        let mut rinfo = info.clone();
        rinfo.body = body.clone();
        let row = self.build_row(&schema, &coll, None, &body, &rinfo, file_errors).await?;
        let check = access.expr().map(|rule| RuleCheck { schema: &schema, info: &rinfo, rule });
        let written = self.store_uploads(&coll, &row, &uploads).await?;
        match self.store.insert_record(&coll, row.clone(), check).await {
            Ok(_) => {}
            Err(e) => {
                self.remove_now(&written).await;
                if matches!(e, StoreError::RuleFailed) {
                    return Err(ServiceError::bad("Failed to create record."));
                }
                return Err(write_error(e, "Failed to create record."));
            }
        }
        self.present_one(&schema, &coll, row, p, info).await
    }

    /// `PATCH /api/collections/{c}/records/{id}`.
    pub async fn update_record(
        &self,
        coll: &str,
        id: &str,
        body: Map<String, Value>,
        p: &ViewParams,
        info: &RequestInfo,
    ) -> Result<Value> {
        self.update_record_with_files(coll, id, body, Vec::new(), p, info).await
    }

    /// `PATCH /api/collections/{c}/records/{id}` with uploaded files (a multipart body).
    pub async fn update_record_with_files(
        &self,
        coll: &str,
        id: &str,
        mut body: Map<String, Value>,
        files: Vec<UploadedFile>,
        p: &ViewParams,
        info: &RequestInfo,
    ) -> Result<Value> {
        let (schema, coll) = self.collection(coll)?;
        let access = access(&coll, Action::Update, info);
        if access.is_denied() {
            return Err(ServiceError::superusers_only());
        }
        let existing = self
            .store
            .get_record(&schema, &coll, info, id, None)
            .await?
            .ok_or_else(ServiceError::not_found)?;
        let uploads = Uploads::merge(&coll, &mut body, files);
        // The rule sees the body as it will be applied: modifiers resolved against the stored
        // record, so `owner+` is checked like `owner` (PocketBase's ReplaceModifiers).
        let body = resolve_modifiers(&coll, &existing, client_writable(&coll, body, info));
        let mut rinfo = info.clone();
        rinfo.body = body.clone();
        if let Some(rule) = access.expr() {
            self.store
                .get_record(&schema, &coll, &rinfo, id, Some(rule))
                .await?
                .ok_or_else(ServiceError::not_found)?;
        }
        let file_errors = uploads.check(&coll, Some(&existing), &body);
        let row =
            self.build_row(&schema, &coll, Some(&existing), &body, &rinfo, file_errors).await?;
        let written = self.store_uploads(&coll, &row, &uploads).await?;
        // The update and the deletion of the files it drops commit together.
        let mut work = self.store.work();
        let cleanup = self.dropped_files_job(&coll, &existing, &row);
        let queued = cleanup.is_some();
        let committed = match work.update_record(&coll, id, row.clone(), None) {
            Ok(w) => {
                if let Some(job) = cleanup {
                    w.enqueue_job(job);
                }
                self.store.commit(work).await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = committed {
            self.remove_now(&written).await;
            return Err(write_error(e, "Failed to update record."));
        }
        if queued {
            self.jobs_ready().notify_one();
        }
        if coll.is_auth() && row.get("password") != existing.get("password") {
            self.forget_origins(&coll.id, id).await;
        }
        self.present_one(&schema, &coll, row, p, info).await
    }

    /// `DELETE /api/collections/{c}/records/{id}`.
    pub async fn delete_record(&self, coll: &str, id: &str, info: &RequestInfo) -> Result<()> {
        let (schema, coll) = self.collection(coll)?;
        let access = access(&coll, Action::Delete, info);
        if access.is_denied() {
            return Err(ServiceError::superusers_only());
        }
        self.store
            .get_record(&schema, &coll, info, id, access.expr())
            .await?
            .ok_or_else(ServiceError::not_found)?;
        match self.store.delete_record(schema.clone(), &coll, id).await {
            Ok(changes) => {
                self.delete_records_files(&schema, &changes).await;
                Ok(())
            }
            Err(StoreError::RequiredRelation(_)) => Err(ServiceError::bad(
                "Failed to delete record. Make sure that the record is not part of a required relation reference.",
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn present_one(
        &self,
        schema: &Arc<Schema>,
        coll: &Arc<Collection>,
        row: Row,
        p: &ViewParams,
        info: &RequestInfo,
    ) -> Result<Value> {
        let rows = [row];
        let mut out = self
            .present(schema, coll, &rows, p.expand.as_deref(), p.fields.as_deref(), info)
            .await?;
        Ok(out.pop().unwrap_or(Value::Null))
    }

    /// Renders rows for the viewer, expands, then applies `fields`.
    async fn present(
        &self,
        schema: &Arc<Schema>,
        coll: &Arc<Collection>,
        rows: &[Row],
        expand: Option<&str>,
        fields: Option<&str>,
        info: &RequestInfo,
    ) -> Result<Vec<Value>> {
        let mut rendered: Vec<Value> = rows.iter().map(|r| render::record(coll, r, info)).collect();
        if let Some(raw) = expand {
            let tree = ExpandTree::parse(raw);
            if !tree.is_empty() {
                self.expand(schema, coll, rows, &mut rendered, &tree, info, 0).await?;
            }
        }
        if let Some(spec) = fields.and_then(FieldsSpec::parse) {
            rendered = rendered.iter().map(|v| spec.apply(v)).collect();
        }
        Ok(rendered)
    }

    /// Applies a request body to a new or existing row: coercion, modifiers, system fields,
    /// passwords, validation. Returns the complete row to store.
    async fn build_row(
        &self,
        schema: &Schema,
        coll: &Arc<Collection>,
        existing: Option<&Row>,
        body: &Map<String, Value>,
        info: &RequestInfo,
        file_errors: Map<String, Value>,
    ) -> Result<Row> {
        let creating = existing.is_none();
        let failed = if creating { "Failed to create record." } else { "Failed to update record." };
        let su = info.is_superuser();
        let mut errors = file_errors;
        let mut row: Row = match existing {
            Some(r) => r.clone(),
            None => coll.fields.iter().map(|f| (f.name.clone(), f.zero_value())).collect(),
        };
        let mut new_password: Option<String> = None;
        let mut plain_passwords: HashMap<String, String> = HashMap::new();
        // `body` holds plain field names only: modifiers were resolved by `resolve_modifiers`.
        for (name, input) in body {
            let name = name.as_str();
            let Some(field) = coll.field(name) else { continue };
            match (&field.kind, name) {
                (FieldKind::Autodate { .. }, _) | (_, "tokenKey") => continue,
                (_, "id") if !creating => continue,
                (FieldKind::Password { .. }, _) => {
                    let plain = match input {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    if coll.is_auth() && name == "password" {
                        new_password = Some(plain);
                    } else {
                        plain_passwords.insert(name.to_string(), plain);
                    }
                    continue;
                }
                _ => {}
            }
            row.insert(name.to_string(), value::coerce(field, input));
        }
        if creating {
            self.prepare_id(coll, &mut row, body, &mut errors).await?;
        } else if let Some(given) = body.get("id").and_then(Value::as_str) {
            if Some(given) != existing.and_then(|r| r.get("id")).and_then(Value::as_str) {
                errors.insert(
                    "id".into(),
                    error_entry(ErrorCode::PkChange, "The record primary key cannot be changed."),
                );
            }
        }
        for f in &coll.fields {
            if let FieldKind::Text { autogenerate_pattern, .. } = &f.kind {
                let empty = row.get(&f.name).and_then(Value::as_str).is_none_or(str::is_empty);
                if empty && !autogenerate_pattern.is_empty() {
                    if let Some(v) = value::generate_from_pattern(autogenerate_pattern) {
                        row.insert(f.name.clone(), Value::String(v));
                    }
                }
            }
        }
        if coll.is_auth() {
            self.check_auth_fields(coll, existing, body, info, &new_password, &mut errors).await;
            if let (false, Some(old), Some(_)) = (su, existing, body.get("email")) {
                if row.get("email") != old.get("email") && !self.can_manage(coll, old, info).await {
                    // Owners change their email through the confirmation flow, not a PATCH.
                    errors.insert(
                        "email".into(),
                        error_entry(ErrorCode::ValuesMismatch, "Values don't match."),
                    );
                }
            }
            if !su && body.contains_key("verified") {
                let before =
                    existing.and_then(|r| r.get("verified")).cloned().unwrap_or(json!(false));
                if row.get("verified") != Some(&before) {
                    errors.insert(
                        "verified".into(),
                        error_entry(ErrorCode::ValuesMismatch, "Values don't match."),
                    );
                }
            }
        }
        for f in &coll.fields {
            if errors.contains_key(&f.name)
                || matches!(f.kind, FieldKind::Password { .. } | FieldKind::Autodate { .. })
            {
                continue;
            }
            if f.name == "id" || f.name == "tokenKey" {
                continue;
            }
            let v = row.get(&f.name).cloned().unwrap_or_else(|| f.zero_value());
            if let Err(e) = value::validate(f, &v) {
                errors.insert(f.name.clone(), field_error_json(&e));
            }
        }
        for (name, plain) in &plain_passwords {
            if let Some(f) = coll.field(name) {
                if let Err(e) = value::validate(f, &Value::String(plain.clone())) {
                    errors.insert(name.clone(), field_error_json(&e));
                }
            }
        }
        self.check_relations(schema, coll, &row, &mut errors).await?;
        if !errors.is_empty() {
            return Err(ServiceError::fields(failed, errors));
        }
        if let Some(plain) = new_password {
            row.insert("password".into(), Value::String(hash_password(plain).await?));
            if !creating {
                row.insert("tokenKey".into(), Value::String(crate::util::random_alnum(50)));
            }
        }
        // A new email also revokes every token (as PocketBase: tokens went to the old address).
        if let (true, Some(old)) = (coll.is_auth(), existing) {
            if row.get("email") != old.get("email") {
                row.insert("tokenKey".into(), Value::String(crate::util::random_alnum(50)));
            }
        }
        for (name, plain) in plain_passwords {
            row.insert(name, Value::String(hash_password(plain).await?));
        }
        let now = crate::util::now_string();
        for f in &coll.fields {
            if let FieldKind::Autodate { on_create, on_update } = f.kind {
                if (creating && on_create) || (!creating && on_update) {
                    row.insert(f.name.clone(), Value::String(now.clone()));
                }
            }
        }
        Ok(row)
    }

    async fn prepare_id(
        &self,
        _coll: &Arc<Collection>,
        row: &mut Row,
        body: &Map<String, Value>,
        errors: &mut Map<String, Value>,
    ) -> Result<()> {
        let given = body.get("id").and_then(Value::as_str).unwrap_or_default();
        if given.is_empty() {
            row.insert("id".into(), Value::String(crate::util::new_record_id()));
            return Ok(());
        }
        let n = given.chars().count();
        if n < 15 {
            errors.insert(
                "id".into(),
                json!({"code": ErrorCode::MinTextConstraint, "message": "Must be at least 15 character(s).", "params": {"min": 15}}),
            );
        } else if n > 15 {
            errors.insert(
                "id".into(),
                json!({"code": ErrorCode::MaxTextConstraint, "message": "Must be no more than 15 character(s).", "params": {"max": 15}}),
            );
        } else if !given.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
            errors.insert(
                "id".into(),
                error_entry(ErrorCode::InvalidFormat, "Invalid value format."),
            );
        }
        row.insert("id".into(), Value::String(given.to_string()));
        Ok(())
    }

    /// Password rules of auth records: confirmation, old password for owners, minimum length.
    async fn check_auth_fields(
        &self,
        coll: &Arc<Collection>,
        existing: Option<&Row>,
        body: &Map<String, Value>,
        info: &RequestInfo,
        new_password: &Option<String>,
        errors: &mut Map<String, Value>,
    ) {
        let confirm = body.get("passwordConfirm").and_then(Value::as_str).unwrap_or_default();
        match new_password {
            None if existing.is_none() => {
                errors.insert(
                    "password".into(),
                    error_entry(ErrorCode::Required, "Cannot be blank."),
                );
            }
            None => {}
            Some(p) => {
                if confirm != p {
                    errors.insert(
                        "passwordConfirm".into(),
                        error_entry(ErrorCode::ValuesMismatch, "Values don't match."),
                    );
                }
                if let Some(f) = coll.field("password") {
                    if p.is_empty() {
                        errors.insert(
                            "password".into(),
                            error_entry(ErrorCode::Required, "Cannot be blank."),
                        );
                    } else if let Err(e) = value::validate(f, &Value::String(p.clone())) {
                        errors.insert("password".into(), field_error_json(&e));
                    }
                }
                if let Some(old) = existing {
                    if !info.is_superuser() && !self.can_manage(coll, old, info).await {
                        let given =
                            body.get("oldPassword").and_then(Value::as_str).unwrap_or_default();
                        let hash = old.get("password").and_then(Value::as_str).unwrap_or_default();
                        if given.is_empty() {
                            errors.insert(
                                "oldPassword".into(),
                                error_entry(ErrorCode::Required, "Cannot be blank."),
                            );
                        } else if !verify_password(given.to_string(), hash.to_string()).await {
                            errors.insert(
                                "oldPassword".into(),
                                error_entry(
                                    ErrorCode::InvalidOldPassword,
                                    "Missing or invalid old password.",
                                ),
                            );
                        }
                    }
                }
            }
        }
    }

    /// Whether the requester passes the auth collection's `manageRule` for `record`.
    async fn can_manage(&self, coll: &Arc<Collection>, record: &Row, info: &RequestInfo) -> bool {
        let rule = match access(coll, Action::Manage, info) {
            Decision::All => return true,
            Decision::Denied => return false,
            Decision::Filter(rule) => rule,
        };
        let id = record.get("id").and_then(Value::as_str).unwrap_or_default();
        let schema = self.schema();
        matches!(self.store.get_record(&schema, coll, info, id, Some(&rule)).await, Ok(Some(_)))
    }

    /// Every id in relation fields must exist in the target collection.
    async fn check_relations(
        &self,
        schema: &Schema,
        coll: &Arc<Collection>,
        row: &Row,
        errors: &mut Map<String, Value>,
    ) -> Result<()> {
        for f in &coll.fields {
            let Some(target) = f.relation_target() else { continue };
            if errors.contains_key(&f.name) {
                continue;
            }
            let ids: Vec<String> = match row.get(&f.name) {
                Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
                Some(Value::Array(a)) => {
                    a.iter().filter_map(Value::as_str).map(str::to_string).collect()
                }
                _ => continue,
            };
            if ids.is_empty() {
                continue;
            }
            let Some(tc) = schema.by_id(target) else {
                errors.insert(f.name.clone(), missing_rel());
                continue;
            };
            let found = self.store.existing_ids(tc, &ids).await?;
            if ids.iter().any(|id| !found.contains(id)) {
                errors.insert(f.name.clone(), missing_rel());
            }
        }
        Ok(())
    }
}

fn missing_rel() -> Value {
    error_entry(
        ErrorCode::MissingRelRecords,
        "Failed to find all relation records with the provided ids.",
    )
}

/// What a client may write: hidden fields are silently dropped for everyone but superusers, in
/// every spelling (`f`, `f+`, `+f`, `f-`), as PocketBase 0.40.6 does; password fields stay
/// writable (they are hidden from reads, not from writes).
fn client_writable(
    coll: &Collection,
    mut body: Map<String, Value>,
    info: &RequestInfo,
) -> Map<String, Value> {
    if !info.is_superuser() {
        body.retain(|key, _| {
            coll.field(split_modifier(key).0)
                .is_none_or(|f| !f.hidden || matches!(f.kind, FieldKind::Password { .. }))
        });
    }
    body
}

/// PocketBase's `ReplaceModifiers`: the body with every modifier key (`f+`, `+f`, `f-`) replaced
/// by the plain field holding the value it produces from `current` (plain keys apply first).
/// Rules (`@request.body.f`, `:isset`, `:changed`, `:length`, `:each`) and the write both read
/// this one map, so no spelling of a field can get past a rule that checks the plain name.
/// A modifier the field type does not support (`+n` on a number, `t+` on text) is dropped.
fn resolve_modifiers(
    coll: &Collection,
    current: &Row,
    body: Map<String, Value>,
) -> Map<String, Value> {
    let (plain, modified): (Vec<_>, Vec<_>) =
        body.into_iter().partition(|(key, _)| split_modifier(key).1.is_none());
    let mut out: Map<String, Value> = plain.into_iter().collect();
    for (key, input) in modified {
        let (name, Some(modifier)) = split_modifier(&key) else { continue };
        let Some(field) = coll.field(name) else { continue };
        if !value::supports_modifier(field, modifier) {
            continue;
        }
        let base = match out.get(name) {
            Some(given) => value::coerce(field, given),
            None => current.get(name).cloned().unwrap_or_else(|| field.zero_value()),
        };
        out.insert(name.to_string(), value::apply_modifier(field, &base, modifier, &input));
    }
    out
}

/// `tags+` → (tags, Append), `+tags` → (tags, Prepend), `tags-` → (tags, Remove).
fn split_modifier(key: &str) -> (&str, Option<Modifier>) {
    if let Some(n) = key.strip_suffix('+') {
        (n, Some(Modifier::Append))
    } else if let Some(n) = key.strip_prefix('+') {
        (n, Some(Modifier::Prepend))
    } else if let Some(n) = key.strip_suffix('-') {
        (n, Some(Modifier::Remove))
    } else {
        (key, None)
    }
}

/// Maps write failures: unique violations become field errors.
fn write_error(e: StoreError, message: &str) -> ServiceError {
    match e {
        StoreError::Unique(cols) => {
            let mut data = Map::new();
            for c in cols {
                data.insert(c, error_entry(ErrorCode::NotUnique, "Value must be unique."));
            }
            ServiceError::fields(message, data)
        }
        other => other.into(),
    }
}
