//! What one realtime subscriber sees of one committed change: the collection's list rule (for
//! `COLLECTION/*` topics) or view rule (for `COLLECTION/ID` topics) for that subscriber's auth and
//! topic options, the topic's own `filter`, then the record rendered as the REST API renders it
//! (hidden fields, email visibility, `expand`, `fields`). `realtime::Hub` asks this per
//! subscription; nothing here knows SSE or clients.

use std::sync::Arc;

use serde_json::Value;

use crate::model::collection::{Collection, Schema};
use crate::model::filter::ast::{CmpOp, Expr, Ident, Op, Operand};
use crate::model::filter::{self, eval};
use crate::model::policy::{Action, Decision, Policy};
use crate::model::request::RequestInfo;
use crate::service::params::ViewParams;
use crate::service::{Result, Service};
use crate::store::{ListQuery, Row};

/// One subscription's view of a change.
#[derive(Debug, Clone, Copy)]
pub struct RealtimeView<'a> {
    /// `COLLECTION/*` (the list rule) or `COLLECTION/ID` (the view rule).
    pub list: bool,
    /// The subscriber as rules see it (`@request.context` is `realtime`).
    pub info: &'a RequestInfo,
    pub expand: Option<&'a str>,
    pub fields: Option<&'a str>,
    pub filter: Option<&'a str>,
}

impl Service {
    /// The record as the subscriber may see it, or `None` when the rules or the topic's filter
    /// hide it. `base` is the record as stored now (read once per change by the caller), or,
    /// for a delete (`deleted`), as it was. The rule and the filter are decided in memory when
    /// that is certain (`filter::eval`: a record's own fields against request values, the
    /// common `owner = @request.auth.id` included), so one change fanned out to thousands of
    /// subscribers costs no query per subscriber; otherwise by the list query's SQL (a deleted
    /// row through `Store::row_visible`). PocketBase checks a delete just before the row goes;
    /// the one difference is what else the same write removed (a parent deleted by the same
    /// cascade is gone when a child's rule looks at it).
    pub async fn realtime_record(
        &self,
        coll: &Arc<Collection>,
        base: &Row,
        deleted: bool,
        view: RealtimeView<'_>,
    ) -> Result<Option<Value>> {
        let schema = self.schema();
        let info = view.info;
        let action = if view.list { Action::List } else { Action::View };
        let decision = Policy::new(info).decide(coll, action);
        let rule_ok = match &decision {
            Decision::Denied => return Ok(None),
            Decision::All => Some(true),
            Decision::Filter(rule) => eval::decide(rule, coll, base, info, false),
        };
        // A topic filter the subscriber may not write (`@request.*`, `@collection.*` for
        // non-superusers) or cannot be parsed sends nothing, as in PocketBase.
        let filter = match view.filter.map(str::trim).filter(|f| !f.is_empty()) {
            None => None,
            Some(raw) => match parse_filter(raw, info) {
                Some(expr) => Some(expr),
                None => return Ok(None),
            },
        };
        let filter_ok = match &filter {
            None => Some(true),
            Some(f) => eval::decide(f, coll, base, info, true),
        };
        let row = match (rule_ok, filter_ok) {
            (Some(false), _) | (_, Some(false)) => return Ok(None),
            (Some(true), Some(true)) => base.clone(),
            _ if deleted => {
                let visible = self
                    .store
                    .row_visible(&schema, coll, info, base, decision.expr(), filter.as_ref())
                    .await;
                match visible {
                    Ok(true) => base.clone(),
                    Ok(false) => return Ok(None),
                    Err(e) => {
                        tracing::debug!(error = %e, "a realtime rule or filter failed");
                        return Ok(None);
                    }
                }
            }
            _ => {
                let id = base.get("id").and_then(Value::as_str).unwrap_or_default();
                match self.visible_row(&schema, coll, id, &decision, filter, info).await {
                    Some(row) => row,
                    None => return Ok(None),
                }
            }
        };
        let p = ViewParams {
            expand: view.expand.map(str::to_string),
            fields: view.fields.map(str::to_string),
        };
        // A failing expand still sends the record (PocketBase: `"expand": {}`).
        Ok(Some(self.present_one(&schema, coll, row, &p, info).await?))
    }

    /// The record if the rule and the filter let the subscriber see it (one query, the list
    /// path's: hidden fields and related list rules apply to the filter as they do there).
    async fn visible_row(
        &self,
        schema: &Arc<Schema>,
        coll: &Arc<Collection>,
        record_id: &str,
        decision: &Decision,
        filter: Option<Expr>,
        info: &RequestInfo,
    ) -> Option<Row> {
        let by_id = Expr::Cmp {
            left: Operand::Ident(Ident {
                raw: "id".into(),
                segments: vec!["id".into()],
                modifier: None,
            }),
            op: Op { kind: CmpOp::Eq, any: false },
            right: Operand::Text(record_id.to_string()),
        };
        let filter = match filter {
            Some(f) => Expr::And(Box::new(by_id), Box::new(f)),
            None => by_id,
        };
        let q = ListQuery {
            schema,
            collection: coll,
            info,
            rule: decision.expr(),
            filter: Some(&filter),
            sort: &[],
            limit: 1,
            offset: 0,
            count_total: false,
        };
        match self.store.list_records(q).await {
            Ok((mut rows, _)) => rows.pop(),
            Err(e) => {
                tracing::debug!(error = %e, "a realtime rule or filter failed; nothing sent");
                None
            }
        }
    }
}

impl Service {
    /// A record as stored now (every field): what realtime shows its subscribers, and an
    /// auth record to refresh a client's bound auth.
    pub async fn record_row(&self, coll: &Arc<Collection>, id: &str) -> Option<Row> {
        let schema = self.schema();
        self.store.get_record(&schema, coll, &RequestInfo::default(), id, None).await.ok().flatten()
    }
}

fn parse_filter(raw: &str, info: &RequestInfo) -> Option<Expr> {
    if raw.contains('\0') {
        return None;
    }
    let expr = filter::parse(raw).ok()?;
    let policy = Policy::new(info);
    expr.idents().into_iter().all(|i| policy.may_reference(i)).then_some(expr)
}
