//! Turning stored rows into API records: system keys, hidden fields, auth email visibility,
//! and the `fields` query parameter (key picking with `expand.x.y` paths and `:excerpt`).

use serde_json::{Map, Value};

use crate::model::collection::Collection;
use crate::model::policy::Policy;
use crate::model::request::RequestInfo;
use crate::store::Row;

/// Renders a stored row for `viewer`.
pub(crate) fn record(coll: &Collection, row: &Row, viewer: &RequestInfo) -> Value {
    let policy = Policy::new(viewer);
    let mut out = Map::new();
    out.insert("collectionId".into(), Value::String(coll.id.clone()));
    out.insert("collectionName".into(), Value::String(coll.name.clone()));
    for f in &coll.fields {
        if f.name == "password" && coll.is_auth() {
            // Write-only: reads return "" like PocketBase's password field when visible.
            continue;
        }
        if !policy.sees_field(f) {
            continue;
        }
        if matches!(f.kind, crate::model::field::FieldKind::Password { .. }) {
            out.insert(f.name.clone(), Value::String(String::new()));
            continue;
        }
        if coll.is_auth() && f.name == "tokenKey" {
            continue;
        }
        if coll.is_auth() && f.name == "email" && !policy.sees_email(coll, row) {
            continue;
        }
        out.insert(f.name.clone(), row.get(&f.name).cloned().unwrap_or(Value::Null));
    }
    Value::Object(out)
}

/// `:excerpt(max, ellipsis)` of one `fields` item.
type Excerpt = Option<(usize, bool)>;
/// A path of a `fields` item with its excerpt.
type Item<'a> = (&'a [String], Excerpt);

/// A parsed `fields` parameter.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FieldsSpec {
    /// (dotted path, optional excerpt (max, ellipsis)).
    items: Vec<(Vec<String>, Excerpt)>,
}

impl FieldsSpec {
    pub(crate) fn parse(raw: &str) -> Option<FieldsSpec> {
        let raw = raw.trim();
        if raw.is_empty() {
            return None;
        }
        let mut items = Vec::new();
        for part in split_top_level(raw) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (path, modifier) = match part.find(':') {
                Some(i) => (&part[..i], Some(&part[i + 1..])),
                None => (part, None),
            };
            let excerpt = modifier.and_then(parse_excerpt);
            items.push((path.split('.').map(str::to_string).collect(), excerpt));
        }
        Some(FieldsSpec { items })
    }

    /// Keeps only the requested keys of a rendered record (recursively into `expand`).
    pub(crate) fn apply(&self, v: &Value) -> Value {
        let refs: Vec<Item<'_>> = self.items.iter().map(|(p, e)| (p.as_slice(), *e)).collect();
        pick(v, &refs)
    }
}

fn split_top_level(raw: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in raw.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth <= 0 => {
                out.push(&raw[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&raw[start..]);
    out
}

fn parse_excerpt(m: &str) -> Option<(usize, bool)> {
    let inner = m.strip_prefix("excerpt(")?.strip_suffix(')')?;
    let mut args = inner.split(',').map(str::trim);
    let max = args.next()?.parse::<usize>().ok()?;
    let ellipsis = matches!(args.next(), Some("true" | "1"));
    Some((max, ellipsis))
}

fn pick(v: &Value, items: &[Item<'_>]) -> Value {
    let Value::Object(obj) = v else { return v.clone() };
    let mut out = Map::new();
    for (path, excerpt) in items {
        let Some((head, rest)) = path.split_first() else { continue };
        if head == "*" {
            for (k, val) in obj {
                let val = match excerpt {
                    Some((max, ell)) if rest.is_empty() => excerpt_value(val, *max, *ell),
                    _ => val.clone(),
                };
                out.entry(k.clone()).or_insert(val);
            }
            continue;
        }
        let Some(val) = obj.get(head) else { continue };
        if rest.is_empty() {
            let val = match excerpt {
                Some((max, ell)) => excerpt_value(val, *max, *ell),
                None => val.clone(),
            };
            out.insert(head.clone(), val);
            continue;
        }
        // Nested path: collect sub-items for this key.
        let sub: Vec<Item<'_>> = items
            .iter()
            .filter(|(p, _)| p.first() == Some(head) && p.len() > 1)
            .map(|(p, e)| (&p[1..], *e))
            .collect();
        let picked = match val {
            Value::Array(arr) => Value::Array(arr.iter().map(|x| pick(x, &sub)).collect()),
            Value::Object(_) if head == "expand" => {
                // `expand.rel.x`: keys of expand are relation names.
                let Value::Object(rels) = val else { continue };
                let mut m = Map::new();
                for (rel, rv) in rels {
                    let rel_items: Vec<Item<'_>> = sub
                        .iter()
                        .filter(|(p, _)| p.first() == Some(rel) && p.len() > 1)
                        .map(|(p, e)| (&p[1..], *e))
                        .collect();
                    let whole = sub.iter().any(|(p, _)| p.len() == 1 && p[0] == *rel);
                    if whole {
                        m.insert(rel.clone(), rv.clone());
                    } else if !rel_items.is_empty() {
                        let pv = match rv {
                            Value::Array(a) => {
                                Value::Array(a.iter().map(|x| pick(x, &rel_items)).collect())
                            }
                            other => pick(other, &rel_items),
                        };
                        m.insert(rel.clone(), pv);
                    }
                }
                Value::Object(m)
            }
            other => pick(other, &sub),
        };
        out.insert(head.clone(), picked);
    }
    Value::Object(out)
}

/// Strips HTML tags, collapses whitespace and truncates to `max` characters.
fn excerpt_value(v: &Value, max: usize, ellipsis: bool) -> Value {
    let Value::String(s) = v else { return v.clone() };
    let mut text = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= max {
        return Value::String(text);
    }
    let mut cut: String = text.chars().take(max).collect();
    cut = cut.trim_end().to_string();
    if ellipsis {
        cut.push_str("...");
    }
    Value::String(cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn picks_fields_and_expand_paths() {
        let rec = json!({"id": "a", "title": "Hello World", "expand": {"tags": [{"id": "t", "name": "js"}]}});
        let spec = FieldsSpec::parse("id,expand.tags.name").unwrap();
        assert_eq!(spec.apply(&rec), json!({"id": "a", "expand": {"tags": [{"name": "js"}]}}));
        let spec = FieldsSpec::parse("*,title:excerpt(5,true)").unwrap();
        assert_eq!(spec.apply(&rec)["title"], json!("Hello..."));
        assert_eq!(spec.apply(&rec)["id"], json!("a"));
    }

    #[test]
    fn excerpt_strips_html() {
        assert_eq!(excerpt_value(&json!("<p>Hi <b>there</b></p>"), 100, false), json!("Hi there"));
    }
}
