//! Collection fields: the type of each column and its options, in PocketBase's JSON shape.
//!
//! Parsing from and rendering to the API's JSON lives here; value coercion and validation of
//! record data lives in `model::value`. No storage concerns (column types are `store`'s job).

use serde_json::{json, Map, Value};

/// One field of a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub id: String,
    pub name: String,
    pub system: bool,
    pub hidden: bool,
    pub presentable: bool,
    pub required: bool,
    pub help: String,
    pub kind: FieldKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    Text {
        min: i64,
        max: i64,
        pattern: String,
        autogenerate_pattern: String,
        primary_key: bool,
    },
    Number {
        min: Option<f64>,
        max: Option<f64>,
        only_int: bool,
    },
    Bool,
    Email {
        only_domains: Vec<String>,
        except_domains: Vec<String>,
    },
    Url {
        only_domains: Vec<String>,
        except_domains: Vec<String>,
    },
    Editor {
        max_size: i64,
        convert_urls: bool,
    },
    Date {
        min: String,
        max: String,
    },
    Autodate {
        on_create: bool,
        on_update: bool,
    },
    Select {
        values: Vec<String>,
        max_select: i64,
    },
    File {
        max_select: i64,
        max_size: i64,
        mime_types: Vec<String>,
        thumbs: Vec<String>,
        protected: bool,
    },
    Relation {
        collection_id: String,
        cascade_delete: bool,
        min_select: i64,
        max_select: i64,
    },
    Json {
        max_size: i64,
    },
    Password {
        min: i64,
        max: i64,
        pattern: String,
        cost: i64,
    },
    GeoPoint,
}

/// Why a field definition could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FieldDefError {
    /// The JSON is not a field object or names an unknown type (PocketBase: "invalid formatting").
    #[error("invalid field format: {0}")]
    Format(String),
}

impl FieldKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldKind::Text { .. } => "text",
            FieldKind::Number { .. } => "number",
            FieldKind::Bool => "bool",
            FieldKind::Email { .. } => "email",
            FieldKind::Url { .. } => "url",
            FieldKind::Editor { .. } => "editor",
            FieldKind::Date { .. } => "date",
            FieldKind::Autodate { .. } => "autodate",
            FieldKind::Select { .. } => "select",
            FieldKind::File { .. } => "file",
            FieldKind::Relation { .. } => "relation",
            FieldKind::Json { .. } => "json",
            FieldKind::Password { .. } => "password",
            FieldKind::GeoPoint => "geoPoint",
        }
    }
}

impl Field {
    /// True for select/file/relation fields holding a list of values (`maxSelect > 1`).
    pub fn is_multi(&self) -> bool {
        match &self.kind {
            FieldKind::Select { max_select, .. }
            | FieldKind::File { max_select, .. }
            | FieldKind::Relation { max_select, .. } => *max_select > 1,
            _ => false,
        }
    }

    /// Relation target collection id, if this is a relation field.
    pub fn relation_target(&self) -> Option<&str> {
        match &self.kind {
            FieldKind::Relation { collection_id, .. } => Some(collection_id),
            _ => None,
        }
    }

    /// The value a record holds when nothing was set.
    pub fn zero_value(&self) -> Value {
        match &self.kind {
            FieldKind::Number { .. } => json!(0),
            FieldKind::Bool => json!(false),
            FieldKind::Json { .. } => Value::Null,
            FieldKind::GeoPoint => json!({"lon": 0, "lat": 0}),
            FieldKind::Select { .. } | FieldKind::File { .. } | FieldKind::Relation { .. }
                if self.is_multi() =>
            {
                json!([])
            }
            _ => json!(""),
        }
    }

    /// The default field id PocketBase derives: type name + crc32 of the field name.
    pub fn default_id(type_name: &str, name: &str) -> String {
        format!("{type_name}{}", crc32fast::hash(name.as_bytes()))
    }

    /// Reads a field from API JSON, filling PocketBase's defaults for omitted options.
    pub fn from_json(v: &Value) -> Result<Field, FieldDefError> {
        let o =
            v.as_object().ok_or_else(|| FieldDefError::Format("field must be an object".into()))?;
        let name = str_opt(o, "name");
        let type_name = o
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| FieldDefError::Format(format!("field {name:?} has no type")))?;
        let kind = match type_name {
            "text" => FieldKind::Text {
                min: int_opt(o, "min"),
                max: int_opt(o, "max"),
                pattern: str_opt(o, "pattern"),
                autogenerate_pattern: str_opt(o, "autogeneratePattern"),
                primary_key: bool_opt(o, "primaryKey"),
            },
            "number" => FieldKind::Number {
                min: o.get("min").and_then(Value::as_f64),
                max: o.get("max").and_then(Value::as_f64),
                only_int: bool_opt(o, "onlyInt"),
            },
            "bool" => FieldKind::Bool,
            "email" => FieldKind::Email {
                only_domains: strs_opt(o, "onlyDomains"),
                except_domains: strs_opt(o, "exceptDomains"),
            },
            "url" => FieldKind::Url {
                only_domains: strs_opt(o, "onlyDomains"),
                except_domains: strs_opt(o, "exceptDomains"),
            },
            "editor" => FieldKind::Editor {
                max_size: int_opt(o, "maxSize"),
                convert_urls: bool_opt(o, "convertURLs"),
            },
            "date" => FieldKind::Date { min: str_opt(o, "min"), max: str_opt(o, "max") },
            "autodate" => FieldKind::Autodate {
                on_create: bool_opt(o, "onCreate"),
                on_update: bool_opt(o, "onUpdate"),
            },
            "select" => FieldKind::Select {
                values: strs_opt(o, "values"),
                max_select: int_opt(o, "maxSelect"),
            },
            "file" => FieldKind::File {
                max_select: int_opt(o, "maxSelect"),
                max_size: int_opt(o, "maxSize"),
                mime_types: strs_opt(o, "mimeTypes"),
                thumbs: strs_opt(o, "thumbs"),
                protected: bool_opt(o, "protected"),
            },
            "relation" => FieldKind::Relation {
                collection_id: str_opt(o, "collectionId"),
                cascade_delete: bool_opt(o, "cascadeDelete"),
                min_select: int_opt(o, "minSelect"),
                max_select: int_opt(o, "maxSelect"),
            },
            "json" => FieldKind::Json { max_size: int_opt(o, "maxSize") },
            "password" => FieldKind::Password {
                min: int_opt(o, "min"),
                max: int_opt(o, "max"),
                pattern: str_opt(o, "pattern"),
                cost: int_opt(o, "cost"),
            },
            "geoPoint" => FieldKind::GeoPoint,
            other => return Err(FieldDefError::Format(format!("unknown field type {other:?}"))),
        };
        let id = match o.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => String::new(),
        };
        Ok(Field {
            id,
            name,
            system: bool_opt(o, "system"),
            hidden: bool_opt(o, "hidden"),
            presentable: bool_opt(o, "presentable"),
            required: bool_opt(o, "required"),
            help: str_opt(o, "help"),
            kind,
        })
    }

    /// Renders the field as the API returns it (every option present).
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("id".into(), json!(self.id));
        o.insert("name".into(), json!(self.name));
        o.insert("type".into(), json!(self.kind.type_name()));
        o.insert("system".into(), json!(self.system));
        o.insert("hidden".into(), json!(self.hidden));
        o.insert("presentable".into(), json!(self.presentable));
        if !matches!(self.kind, FieldKind::Autodate { .. }) {
            o.insert("required".into(), json!(self.required));
            o.insert("help".into(), json!(self.help));
        }
        let opts = match &self.kind {
            FieldKind::Text { min, max, pattern, autogenerate_pattern, primary_key } => json!({
                "min": min, "max": max, "pattern": pattern,
                "autogeneratePattern": autogenerate_pattern, "primaryKey": primary_key}),
            FieldKind::Number { min, max, only_int } => {
                json!({"min": min, "max": max, "onlyInt": only_int})
            }
            FieldKind::Bool | FieldKind::GeoPoint => json!({}),
            FieldKind::Email { only_domains, except_domains }
            | FieldKind::Url { only_domains, except_domains } => {
                json!({"onlyDomains": only_domains, "exceptDomains": except_domains})
            }
            FieldKind::Editor { max_size, convert_urls } => {
                json!({"maxSize": max_size, "convertURLs": convert_urls})
            }
            FieldKind::Date { min, max } => json!({"min": min, "max": max}),
            FieldKind::Autodate { on_create, on_update } => {
                json!({"onCreate": on_create, "onUpdate": on_update})
            }
            FieldKind::Select { values, max_select } => {
                json!({"values": values, "maxSelect": max_select})
            }
            FieldKind::File { max_select, max_size, mime_types, thumbs, protected } => json!({
                "maxSelect": max_select, "maxSize": max_size, "mimeTypes": mime_types,
                "thumbs": thumbs, "protected": protected}),
            FieldKind::Relation { collection_id, cascade_delete, min_select, max_select } => {
                json!({
                "collectionId": collection_id, "cascadeDelete": cascade_delete,
                "minSelect": min_select, "maxSelect": max_select})
            }
            FieldKind::Json { max_size } => json!({"maxSize": max_size}),
            FieldKind::Password { min, max, pattern, cost } => {
                json!({"min": min, "max": max, "pattern": pattern, "cost": cost})
            }
        };
        if let Value::Object(opts) = opts {
            o.extend(opts);
        }
        Value::Object(o)
    }
}

fn str_opt(o: &Map<String, Value>, key: &str) -> String {
    o.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn int_opt(o: &Map<String, Value>, key: &str) -> i64 {
    o.get(key).and_then(Value::as_f64).map(|f| f as i64).unwrap_or(0)
}

fn bool_opt(o: &Map<String, Value>, key: &str) -> bool {
    o.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn strs_opt(o: &Map<String, Value>, key: &str) -> Vec<String> {
    match o.get(key) {
        Some(Value::Array(items)) => {
            items.iter().filter_map(Value::as_str).map(str::to_string).collect()
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrips_every_type_with_defaults() {
        for t in [
            "text", "number", "bool", "email", "url", "editor", "date", "autodate", "select",
            "file", "relation", "json", "password", "geoPoint",
        ] {
            let f = Field::from_json(&json!({"name": "x", "type": t})).unwrap();
            assert_eq!(f.kind.type_name(), t);
            let back = Field::from_json(&f.to_json()).unwrap();
            assert_eq!(back, f, "{t}");
        }
    }

    #[test]
    fn unknown_type_is_a_format_error() {
        assert!(Field::from_json(&json!({"name": "x", "type": "nope"})).is_err());
        assert!(Field::from_json(&json!("text")).is_err());
    }

    #[test]
    fn default_ids_match_pocketbase() {
        assert_eq!(Field::default_id("text", "id"), "text3208210256");
        assert_eq!(Field::default_id("autodate", "created"), "autodate2990389176");
    }
}
