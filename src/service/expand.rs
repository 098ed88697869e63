//! `expand`: attaching related records (relations, nested up to 6 levels, back-relations
//! `<collection>_via_<field>`), with ONE store query per relation per level, never per record.
//! The related collection's view rule applies; records the viewer may not see are left out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::model::collection::{Collection, Schema};
use crate::model::policy::{Action, Policy};
use crate::model::request::RequestInfo;
use crate::service::{render, Result, Service};
use crate::store::{RelatedBy, Row};

pub(crate) const MAX_DEPTH: usize = 6;

/// The requested expand paths as a tree.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ExpandTree(BTreeMap<String, ExpandTree>);

impl ExpandTree {
    pub(crate) fn parse(raw: &str) -> ExpandTree {
        let mut root = ExpandTree::default();
        for path in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut node = &mut root;
            for seg in path.split('.').take(MAX_DEPTH) {
                if seg.is_empty() {
                    break;
                }
                node = node.0.entry(seg.to_string()).or_default();
            }
        }
        root
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

type BoxFut<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

fn ids_of(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// A known relation path was requested: PocketBase then always renders an `expand` object.
fn ensure_expand(rendered: &mut [Value]) {
    for v in rendered {
        if let Value::Object(o) = v {
            o.entry("expand").or_insert_with(|| Value::Object(Map::new()));
        }
    }
}

fn set_expand(rendered: &mut Value, key: &str, v: Value) {
    if let Value::Object(o) = rendered {
        let e = o.entry("expand").or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = e {
            m.insert(key.to_string(), v);
        }
    }
}

impl Service {
    /// Expands `tree` onto `rendered` (the API form of `rows`, same order).
    #[allow(clippy::too_many_arguments)] // Recursion state; a struct would only rename it.
    pub(crate) fn expand<'a>(
        &'a self,
        schema: &'a Arc<Schema>,
        coll: &'a Arc<Collection>,
        rows: &'a [Row],
        rendered: &'a mut [Value],
        tree: &'a ExpandTree,
        info: &'a RequestInfo,
        depth: usize,
    ) -> BoxFut<'a> {
        Box::pin(async move {
            if depth >= MAX_DEPTH || rows.is_empty() {
                return Ok(());
            }
            for (key, sub) in &tree.0 {
                if let Some(field) = coll.field(key) {
                    if !Policy::new(info).sees_field(field) {
                        // Deliberately stricter than PocketBase 0.40.6, which expands hidden
                        // relations for anyone: a hidden field's links are as hidden as its ids.
                        continue;
                    }
                    let Some(target) =
                        field.relation_target().and_then(|t| schema.by_id(t)).cloned()
                    else {
                        continue;
                    };
                    ensure_expand(rendered);
                    let mut ids: Vec<String> = Vec::new();
                    let mut seen = HashSet::new();
                    for r in rows {
                        for id in ids_of(r.get(key)) {
                            if seen.insert(id.clone()) {
                                ids.push(id);
                            }
                        }
                    }
                    if ids.is_empty() {
                        continue;
                    }
                    let Some(found) = self
                        .fetch_related(schema, &target, RelatedBy::Ids(&ids), sub, info, depth)
                        .await?
                    else {
                        continue;
                    };
                    let (rel_rows, rel_rendered) = found;
                    let by_id: HashMap<&str, &Value> = rel_rows
                        .iter()
                        .zip(rel_rendered.iter())
                        .filter_map(|(r, v)| r.get("id").and_then(Value::as_str).map(|id| (id, v)))
                        .collect();
                    for (r, out) in rows.iter().zip(rendered.iter_mut()) {
                        let rids = ids_of(r.get(key));
                        if field.is_multi() {
                            let items: Vec<Value> = rids
                                .iter()
                                .filter_map(|id| by_id.get(id.as_str()).map(|v| (*v).clone()))
                                .collect();
                            if !items.is_empty() {
                                set_expand(out, key, Value::Array(items));
                            }
                        } else if let Some(v) = rids.first().and_then(|id| by_id.get(id.as_str())) {
                            set_expand(out, key, (*v).clone());
                        }
                    }
                } else if let Some((target, fname)) = back_relation(schema, coll, key, info) {
                    ensure_expand(rendered);
                    let ids: Vec<String> = rows
                        .iter()
                        .filter_map(|r| r.get("id").and_then(Value::as_str))
                        .map(str::to_string)
                        .collect();
                    let by = RelatedBy::Field { field: &fname, ids: &ids };
                    let Some(found) =
                        self.fetch_related(schema, &target, by, sub, info, depth).await?
                    else {
                        continue;
                    };
                    let (rel_rows, rel_rendered) = found;
                    let mut groups: HashMap<String, Vec<Value>> = HashMap::new();
                    for (r, v) in rel_rows.iter().zip(rel_rendered.iter()) {
                        for owner in ids_of(r.get(&fname)) {
                            groups.entry(owner).or_default().push(v.clone());
                        }
                    }
                    for (r, out) in rows.iter().zip(rendered.iter_mut()) {
                        let id = r.get("id").and_then(Value::as_str).unwrap_or_default();
                        if let Some(items) = groups.remove(id) {
                            set_expand(out, key, Value::Array(items));
                        }
                    }
                }
            }
            Ok(())
        })
    }

    /// Fetches related records through the target's view rule, rendered and expanded one level
    /// deeper with `sub`; `None` if the viewer may see none.
    async fn fetch_related(
        &self,
        schema: &Arc<Schema>,
        target: &Arc<Collection>,
        by: RelatedBy<'_>,
        sub: &ExpandTree,
        info: &RequestInfo,
        depth: usize,
    ) -> Result<Option<(Vec<Row>, Vec<Value>)>> {
        let access = Policy::new(info).decide(target, Action::Expand);
        if access.is_denied() {
            return Ok(None);
        }
        let mut ctx = info.clone();
        ctx.context = "expand";
        let rows = self.store.related_records(schema, target, &ctx, by, access.expr()).await?;
        let mut rendered: Vec<Value> =
            rows.iter().map(|r| render::record(target, r, info)).collect();
        self.expand(schema, target, &rows, &mut rendered, sub, info, depth + 1).await?;
        Ok(Some((rows, rendered)))
    }
}

/// `comments_via_post` → (comments, "post") when `post` is a relation to `coll`; also the
/// deprecated form `comments(post)` (collection name or id), which PocketBase 0.40.6 still
/// answers under the key as written. A hidden relation field links only for superusers.
fn back_relation(
    schema: &Schema,
    coll: &Collection,
    key: &str,
    info: &RequestInfo,
) -> Option<(Arc<Collection>, String)> {
    let usable = |target: &Arc<Collection>, field: &str| {
        let f = target.field(field)?;
        (Policy::new(info).sees_field(f) && f.relation_target() == Some(coll.id.as_str()))
            .then(|| (target.clone(), f.name.clone()))
    };
    if let Some((name, rest)) = key.split_once('(') {
        let field = rest.strip_suffix(')')?;
        let target = schema.get(name)?;
        return usable(target, field);
    }
    let mut start = 0;
    while let Some(pos) = key[start..].find("_via_") {
        let at = start + pos;
        if let Some(found) = schema.get(&key[..at]).and_then(|t| usable(t, &key[at + 5..])) {
            return Some(found);
        }
        start = at + 5;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_into_a_tree() {
        let t = ExpandTree::parse("author, tags.org,tags,a.b.c.d.e.f.g.h");
        assert_eq!(t.0.len(), 3);
        assert!(t.0["tags"].0.contains_key("org"));
        let mut depth = 0;
        let mut n = &t.0["a"];
        while let Some((_, next)) = n.0.iter().next() {
            n = next;
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH - 1);
    }
}
