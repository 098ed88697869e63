//! Filter/rule/sort ASTs → SQL text plus bound parameters, through `Dialect`.
//!
//! Invariants: every value from a request is a bound parameter; identifiers are only ever taken
//! from the collection schema (quoted), never from the request text. Relation paths become
//! correlated sub-queries, never joins on the outer query, so a list never multiplies rows.
//! What the caller may address (hidden fields, emails, related collections' list rules) is
//! `model::policy`'s decision; this file never reads a rule's text.
//!
//! Multi-value operands (multi relations, back-relations, `:each`, `@collection`) follow
//! PocketBase: the plain operators require ALL elements to match (an empty set counts as one
//! empty element), the `?` forms require ANY.

use std::sync::Arc;

use serde_json::Value;

use crate::model::collection::{Collection, Schema};
use crate::model::field::{Field, FieldKind};
use crate::model::filter::ast::{CmpOp, Expr, Ident, Op, Operand};
use crate::model::filter::SortItem;
use crate::model::policy::{Decision, Policy};
use crate::model::request::RequestInfo;
use crate::store::dialect::{quote_ident, Dialect};

/// A bound parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Null,
    Bool(bool),
    Int(i64),
    Real(f64),
    Text(String),
    /// A JSON value for a JSON column (`store::stored`; filters never bind one).
    Json(Value),
    /// SQL NULL in a JSON column.
    JsonNull,
}

impl Param {
    pub(crate) fn from_json(v: &Value) -> Param {
        match v {
            Value::Null => Param::Null,
            Value::Bool(b) => Param::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Param::Int(i),
                None => Param::Real(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => Param::Text(s.clone()),
            other => Param::Text(other.to_string()),
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, Param::Null) || matches!(self, Param::Text(s) if s.is_empty())
    }
}

/// Why an expression could not be compiled: always the client's fault (400).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError(msg.into()))
}

/// The value type of an operand, so comparisons can line types up (PostgreSQL refuses
/// `text = bigint`; SQLite would silently apply affinity rules instead).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ty {
    Text,
    Number,
    Bool,
    Json,
    /// NULL and anything of unknown type.
    Any,
}

/// A FROM chain a multi-value operand iterates over.
#[derive(Debug, Clone, Default)]
struct Chain {
    froms: Vec<String>,
    conds: Vec<String>,
    multi: bool,
}

impl Chain {
    fn add_table(&mut self, table: String, on: String, inner: bool) {
        if self.froms.is_empty() {
            self.froms.push(table);
            self.conds.push(on);
        } else {
            let join = if inner { "JOIN" } else { "LEFT JOIN" };
            self.froms.push(format!("{join} {table} ON {on}"));
        }
    }

    /// Adds a table-valued function source; `joined` is how the dialect writes it after other
    /// FROM items it may refer to (a lateral join).
    fn add_source(&mut self, source: String, joined: String) {
        if self.froms.is_empty() {
            self.froms.push(source);
        } else {
            self.froms.push(joined);
        }
    }

    fn where_sql(&self) -> String {
        if self.conds.is_empty() {
            "1=1".into()
        } else {
            self.conds.join(" AND ")
        }
    }
}

/// A resolved operand.
#[derive(Debug, Clone)]
struct Resolved {
    sql: String,
    ty: Ty,
    nullable: bool,
    /// The literal value when the operand is a literal or request value.
    lit: Option<Param>,
    /// Index of the operand's own bound parameter, when it has exactly one.
    param_idx: Option<usize>,
    /// Set when the operand iterates a multi-value source.
    chain: Option<Chain>,
}

impl Resolved {
    fn scalar(sql: String, nullable: bool) -> Resolved {
        Resolved { sql, ty: Ty::Any, nullable, lit: None, param_idx: None, chain: None }
    }
    fn typed(mut self, ty: Ty) -> Resolved {
        self.ty = ty;
        self
    }
    fn is_empty_lit(&self) -> bool {
        self.lit.as_ref().is_some_and(Param::is_empty)
    }
}

/// Where the columns of the current path step come from.
#[derive(Clone)]
enum Base<'a> {
    /// A table alias in the SQL.
    Alias(String),
    /// Values of a record held in memory (the authenticated record): bound as parameters.
    Values(&'a serde_json::Map<String, Value>),
}

/// Compiles expressions for one statement; parameters accumulate across calls.
pub(crate) struct Compiler<'a> {
    pub(crate) dialect: &'a dyn Dialect,
    schema: &'a Schema,
    info: &'a RequestInfo,
    /// Every per-caller decision (hidden fields, emails, related list rules) comes from here;
    /// the compiler never reads rule text.
    policy: Policy<'a>,
    pub(crate) params: Vec<Param>,
    aliases: usize,
    /// Compiling the client's filter or sort: hidden fields and private emails are the
    /// policy's to allow.
    client: bool,
    /// Relation paths go through the related collection's list rule, as the policy decides
    /// (client filters and sorts, outside a related rule).
    join_rules: bool,
    /// Whether the comparison being compiled is a `?` (any) one.
    cur_any: bool,
    /// `@collection.name[:alias]` sources shared by all `?` comparisons of one expression:
    /// (name with alias, SQL alias, collection).
    shared: Vec<(String, String, Arc<Collection>)>,
}

const MACROS: &[&str] = &[
    "@now",
    "@yesterday",
    "@tomorrow",
    "@todayStart",
    "@todayEnd",
    "@monthStart",
    "@monthEnd",
    "@yearStart",
    "@yearEnd",
    "@second",
    "@minute",
    "@hour",
    "@day",
    "@month",
    "@weekday",
    "@year",
];

impl<'a> Compiler<'a> {
    pub(crate) fn new(dialect: &'a dyn Dialect, schema: &'a Schema, info: &'a RequestInfo) -> Self {
        Compiler {
            dialect,
            schema,
            info,
            policy: Policy::new(info),
            params: Vec::new(),
            aliases: 0,
            client: false,
            join_rules: false,
            cur_any: false,
            shared: Vec::new(),
        }
    }

    pub(crate) fn param(&mut self, p: Param) -> String {
        self.params.push(p);
        self.dialect.placeholder(self.params.len())
    }

    fn alias(&mut self, prefix: &str) -> String {
        self.aliases += 1;
        format!("{prefix}{}", self.aliases)
    }

    /// Compiles a client `filter` (stricter: hidden fields are not addressable).
    pub(crate) fn client_filter(
        &mut self,
        coll: &Arc<Collection>,
        alias: &str,
        expr: &Expr,
    ) -> Result<String, QueryError> {
        self.as_client(|c| c.top(coll, alias, expr))
    }

    /// Runs `f` compiling client input: the policy's visibility decisions and related list
    /// rules apply.
    fn as_client<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let saved = (self.client, self.join_rules);
        (self.client, self.join_rules) = (true, true);
        let res = f(self);
        (self.client, self.join_rules) = saved;
        res
    }

    /// Compiles a whole expression; `?` comparisons on the same `@collection` source share one
    /// joined row (PocketBase joins such sources once for the whole expression).
    fn top(
        &mut self,
        coll: &Arc<Collection>,
        alias: &str,
        expr: &Expr,
    ) -> Result<String, QueryError> {
        let saved = std::mem::take(&mut self.shared);
        let inner = self.expr(coll, alias, expr);
        let shared = std::mem::replace(&mut self.shared, saved);
        let inner = inner?;
        if shared.is_empty() {
            return Ok(inner);
        }
        let mut from = "(SELECT 1) rc0".to_string();
        for (_, a, c) in &shared {
            let on = self.join_rule(c, a)?.unwrap_or_else(|| "1=1".into());
            from.push_str(&format!(" LEFT JOIN {} {a} ON {on}", quote_ident(&c.name)));
        }
        Ok(format!("EXISTS (SELECT 1 FROM {from} WHERE {inner})"))
    }

    /// Compiles an API rule expression.
    pub(crate) fn rule(
        &mut self,
        coll: &Arc<Collection>,
        alias: &str,
        expr: &Expr,
    ) -> Result<String, QueryError> {
        // PocketBase applies related collections' list rules only to client filters and sorts;
        // an API rule sees related records as they are.
        let saved = std::mem::replace(&mut self.join_rules, false);
        let res = self.top(coll, alias, expr);
        self.join_rules = saved;
        res
    }

    /// Compiles `sort` into ORDER BY terms.
    pub(crate) fn sort(
        &mut self,
        coll: &Arc<Collection>,
        alias: &str,
        items: &[SortItem],
    ) -> Result<Vec<String>, QueryError> {
        self.as_client(|c| c.sort_terms(coll, alias, items))
    }

    fn sort_terms(
        &mut self,
        coll: &Arc<Collection>,
        alias: &str,
        items: &[SortItem],
    ) -> Result<Vec<String>, QueryError> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let first = item.ident.segments.first().map(String::as_str).unwrap_or_default();
            let sql = match first {
                "@random" => self.dialect.random().to_string(),
                "@rowid" => self.dialect.rowid(alias),
                _ => {
                    let r = self.ident(coll, alias, &item.ident)?;
                    if r.chain.is_some() {
                        return err(format!(
                            "cannot sort by the multi-value path {:?}",
                            item.ident.raw
                        ));
                    }
                    r.sql
                }
            };
            out.push(self.dialect.order_term(&sql, item.desc));
        }
        Ok(out)
    }

    fn expr(
        &mut self,
        coll: &Arc<Collection>,
        alias: &str,
        e: &Expr,
    ) -> Result<String, QueryError> {
        match e {
            Expr::And(a, b) => {
                Ok(format!("({} AND {})", self.expr(coll, alias, a)?, self.expr(coll, alias, b)?))
            }
            Expr::Or(a, b) => {
                Ok(format!("({} OR {})", self.expr(coll, alias, a)?, self.expr(coll, alias, b)?))
            }
            Expr::Cmp { left, op, right } => {
                let saved = std::mem::replace(&mut self.cur_any, op.any);
                let operands = self
                    .operand(coll, alias, left)
                    .and_then(|l| Ok((l, self.operand(coll, alias, right)?)));
                self.cur_any = saved;
                let (l, r) = operands?;
                self.comparison(*op, l, r)
            }
        }
    }

    fn comparison(&mut self, op: Op, l: Resolved, r: Resolved) -> Result<String, QueryError> {
        let cond = self.cmp_sql(op.kind, &l, &r);
        let mut chain = Chain::default();
        for c in [&l.chain, &r.chain].into_iter().flatten() {
            for (i, f) in c.froms.iter().enumerate() {
                if i == 0 && !chain.froms.is_empty() {
                    // The second operand's source only refers to the outer row: a plain cross join.
                    chain.froms.push(format!("CROSS JOIN {f}"));
                } else {
                    chain.froms.push(f.clone());
                }
            }
            chain.conds.extend(c.conds.iter().cloned());
        }
        if chain.froms.is_empty() {
            return Ok(cond);
        }
        let from = chain.froms.join(" ");
        let wh = chain.where_sql();
        // An empty set behaves like one NULL element (PocketBase's LEFT JOIN semantics).
        let null_side = |x: &Resolved| {
            if x.chain.is_some() {
                Resolved::scalar("NULL".into(), true)
            } else {
                x.clone()
            }
        };
        let cond_null = self.cmp_sql(op.kind, &null_side(&l), &null_side(&r));
        if op.any {
            return Ok(format!(
                "(EXISTS (SELECT 1 FROM {from} WHERE {wh} AND {cond}) OR (NOT EXISTS (SELECT 1 FROM {from} WHERE {wh}) AND {}))",
                self.dialect.is_true(&cond_null)
            ));
        }
        Ok(format!(
            "(NOT EXISTS (SELECT 1 FROM {from} WHERE {wh} AND NOT {}) AND (EXISTS (SELECT 1 FROM {from} WHERE {wh}) OR {}))",
            self.dialect.is_true(&cond),
            self.dialect.is_true(&cond_null)
        ))
    }

    fn cmp_sql(&mut self, kind: CmpOp, l: &Resolved, r: &Resolved) -> String {
        let (l, r) = self.unify(l, r);
        let d = self.dialect;
        if l.ty == Ty::Json || r.ty == Ty::Json {
            let (ls, rs) = (self.json_side(&l), self.json_side(&r));
            return match kind {
                CmpOp::Eq => format!("({})", d.null_safe_eq(&ls, &rs, true)),
                CmpOp::Neq => format!("({})", d.null_safe_eq(&ls, &rs, false)),
                CmpOp::Gt => format!("{ls} > {rs}"),
                CmpOp::Gte => format!("{ls} >= {rs}"),
                CmpOp::Lt => format!("{ls} < {rs}"),
                CmpOp::Lte => format!("{ls} <= {rs}"),
                CmpOp::Like | CmpOp::NotLike => self.like_sql(kind, &l, &r),
            };
        }
        let (ls, rs) = (&l.sql, &r.sql);
        match kind {
            CmpOp::Eq | CmpOp::Neq => {
                let eq = kind == CmpOp::Eq;
                match (l.is_empty_lit(), r.is_empty_lit()) {
                    (true, true) => (if eq { "1=1" } else { "1=0" }).into(),
                    (false, true) => empty_check(&l, eq),
                    (true, false) => empty_check(&r, eq),
                    (false, false) => {
                        let op = if eq { "=" } else { "!=" };
                        if needs_text_compare(&l) || needs_text_compare(&r) {
                            // A possibly-NULL number/bool: compare as text so NULL folds to ''
                            // (PocketBase's `COALESCE(x, '')`) on every engine.
                            format!("{} {op} {}", d.text_coalesce(ls), d.text_coalesce(rs))
                        } else {
                            format!("{} {op} {}", coalesce(&l), coalesce(&r))
                        }
                    }
                }
            }
            CmpOp::Gt => format!("{ls} > {rs}"),
            CmpOp::Gte => format!("{ls} >= {rs}"),
            CmpOp::Lt => format!("{ls} < {rs}"),
            CmpOp::Lte => format!("{ls} <= {rs}"),
            CmpOp::Like | CmpOp::NotLike => self.like_sql(kind, &l, &r),
        }
    }

    /// `~` / `!~`: SQL LIKE over text, with PocketBase's wrapping and escaping of literals.
    fn like_sql(&mut self, kind: CmpOp, l: &Resolved, r: &Resolved) -> String {
        let d = self.dialect;
        let rs = &r.sql;
        let pattern = match (&r.lit, r.param_idx) {
            (Some(p), idx) => {
                let text = match p {
                    Param::Null | Param::JsonNull => String::new(),
                    Param::Json(v) => v.to_string(),
                    Param::Bool(b) => b.to_string(),
                    Param::Int(i) => i.to_string(),
                    Param::Real(f) => f.to_string(),
                    Param::Text(s) => s.clone(),
                };
                match idx {
                    // Rewrite the operand's own parameter so no unused one remains.
                    Some(i) => {
                        self.params[i] = Param::Text(like_pattern(&text));
                        d.cast_text(rs)
                    }
                    None => self.param(Param::Text(like_pattern(&text))),
                }
            }
            (None, _) => format!("('%' || {} || '%')", d.cast_text(rs)),
        };
        d.like(&d.cast_text(&l.sql), &pattern, kind == CmpOp::NotLike)
    }

    /// Lines the two operand types up: a literal takes the type of the other side when it
    /// converts cleanly; otherwise two different concrete types compare as text.
    fn unify(&mut self, l: &Resolved, r: &Resolved) -> (Resolved, Resolved) {
        let (mut l, mut r) = (l.clone(), r.clone());
        self.coerce_literal(&mut r, l.ty);
        self.coerce_literal(&mut l, r.ty);
        let concrete = |t: Ty| matches!(t, Ty::Text | Ty::Number | Ty::Bool);
        if concrete(l.ty) && concrete(r.ty) && l.ty != r.ty {
            for x in [&mut l, &mut r] {
                // Booleans read as SQLite stores them ('1'/'0'), so `b = 'true'` is false on
                // every engine, as in PocketBase.
                x.sql = if x.ty == Ty::Bool {
                    self.dialect.bool_text(&x.sql)
                } else {
                    self.dialect.cast_text(&x.sql)
                };
                x.ty = Ty::Text;
            }
        }
        (l, r)
    }

    fn coerce_literal(&mut self, x: &mut Resolved, target: Ty) {
        let (Some(p), Some(i)) = (&x.lit, x.param_idx) else { return };
        if x.ty == target {
            return;
        }
        let converted = match (target, p) {
            (Ty::Number, Param::Text(s)) => s.trim().parse::<f64>().ok().map(number_param),
            (Ty::Number, Param::Bool(b)) => Some(Param::Int(i64::from(*b))),
            (Ty::Bool, Param::Int(n)) => Some(Param::Bool(*n != 0)),
            (Ty::Bool, Param::Real(f)) => Some(Param::Bool(*f != 0.0)),
            (Ty::Text, Param::Int(n)) => Some(Param::Text(n.to_string())),
            (Ty::Text, Param::Real(f)) => Some(Param::Text(f.to_string())),
            (Ty::Text, Param::Bool(b)) => Some(Param::Text(if *b { "1" } else { "0" }.into())),
            _ => None,
        };
        if let Some(np) = converted {
            self.params[i] = np.clone();
            x.lit = Some(np);
            x.ty = target;
        }
    }

    /// An operand as a JSON value, for comparisons with JSON columns and paths.
    fn json_side(&self, x: &Resolved) -> String {
        if x.ty == Ty::Json {
            return x.sql.clone();
        }
        match &x.lit {
            Some(Param::Null) => "NULL".into(),
            Some(Param::Text(t)) if t.is_empty() => self.dialect.json_value("CAST('' AS TEXT)"),
            _ => self.dialect.json_value(&x.sql),
        }
    }

    fn operand(
        &mut self,
        coll: &Arc<Collection>,
        alias: &str,
        o: &Operand,
    ) -> Result<Resolved, QueryError> {
        match o {
            Operand::Null => Ok(self.literal(Param::Null)),
            Operand::Bool(b) => Ok(self.literal(Param::Bool(*b))),
            Operand::Number(n) => Ok(self.literal(number_param(*n))),
            Operand::Text(s) => Ok(self.literal(Param::Text(s.clone()))),
            Operand::Ident(id) => self.ident(coll, alias, id),
            Operand::Func { name, args } => self.function(coll, alias, name, args),
        }
    }

    fn literal(&mut self, p: Param) -> Resolved {
        // Empty literals are inlined: some comparisons drop an operand (`x = ''` becomes an
        // emptiness check) and an unused bound parameter is an error in SQLite.
        let (sql, param_idx) = match &p {
            Param::Null => ("NULL".to_string(), None),
            Param::Text(t) if t.is_empty() => ("''".to_string(), None),
            other => (self.param(other.clone()), Some(self.params.len() - 1)),
        };
        let ty = match &p {
            Param::Null | Param::JsonNull => Ty::Any,
            Param::Bool(_) => Ty::Bool,
            Param::Int(_) | Param::Real(_) => Ty::Number,
            Param::Text(_) => Ty::Text,
            Param::Json(_) => Ty::Json,
        };
        Resolved {
            sql,
            ty,
            nullable: matches!(p, Param::Null),
            lit: Some(p),
            param_idx,
            chain: None,
        }
    }

    fn function(
        &mut self,
        coll: &Arc<Collection>,
        alias: &str,
        name: &str,
        args: &[Operand],
    ) -> Result<Resolved, QueryError> {
        match (name, args) {
            ("strftime", [Operand::Text(fmt), value]) => {
                let f = self.param(Param::Text(self.dialect.strftime_format(fmt)));
                let mut v = self.operand(coll, alias, value)?;
                v.sql = self.dialect.strftime(&f, &self.dialect.cast_text(&v.sql));
                v.lit = None;
                v.param_idx = None;
                v.nullable = true;
                v.ty = Ty::Text;
                Ok(v)
            }
            ("strftime", _) => err("strftime expects a format text and a value"),
            ("geoDistance", [a, b, c, d]) => {
                let mut parts = Vec::with_capacity(4);
                for arg in [a, b, c, d] {
                    let r = self.operand(coll, alias, arg)?;
                    if r.chain.is_some() {
                        return err("geoDistance does not accept multi-value arguments");
                    }
                    let sql =
                        if r.ty == Ty::Json { self.dialect.json_number(&r.sql) } else { r.sql };
                    parts.push(sql);
                }
                let sql = self.dialect.geo_distance(&parts[0], &parts[1], &parts[2], &parts[3]);
                Ok(Resolved::scalar(sql, true).typed(Ty::Number))
            }
            ("geoDistance", _) => err("geoDistance expects 4 arguments"),
            _ => err(format!("unknown function {name:?}")),
        }
    }

    fn ident(
        &mut self,
        coll: &Arc<Collection>,
        alias: &str,
        id: &Ident,
    ) -> Result<Resolved, QueryError> {
        let first = id.segments.first().map(String::as_str).unwrap_or_default();
        if first == "@request" {
            return self.request_ident(coll, alias, id);
        }
        if first == "@collection" {
            return self.collection_ident(id);
        }
        if MACROS.contains(&first) {
            if id.segments.len() > 1 || id.modifier.is_some() {
                return err(format!("invalid macro {:?}", id.raw));
            }
            return Ok(self.literal(macro_value(first)));
        }
        if first.starts_with('@') || first.starts_with('#') {
            return err(format!("unknown identifier {:?}", id.raw));
        }
        self.path(Base::Alias(alias.to_string()), coll.clone(), &id.segments, id, Chain::default())
    }

    fn collection_ident(&mut self, id: &Ident) -> Result<Resolved, QueryError> {
        let Some(spec) = id.segments.get(1) else {
            return err(format!("invalid @collection identifier {:?}", id.raw));
        };
        let name = spec.split(':').next().unwrap_or_default();
        let Some(target) = self.schema.get(name).cloned() else {
            return err(format!("unknown collection {name:?} in {:?}", id.raw));
        };
        if id.segments.len() < 3 {
            return err(format!("{:?} needs a field", id.raw));
        }
        if self.cur_any {
            let a = match self.shared.iter().find(|(k, _, _)| k == spec) {
                Some((_, a, _)) => a.clone(),
                None => {
                    let a = self.alias("rc");
                    self.shared.push((spec.clone(), a.clone(), target.clone()));
                    a
                }
            };
            return self.path(Base::Alias(a), target, &id.segments[2..], id, Chain::default());
        }
        let a = self.alias("rc");
        let mut chain = Chain { multi: true, ..Chain::default() };
        chain.froms.push(format!("{} {a}", quote_ident(&target.name)));
        if let Some(rule) = self.join_rule(&target, &a)? {
            chain.conds.push(rule);
        }
        self.path(Base::Alias(a), target, &id.segments[2..], id, chain)
    }

    fn request_ident(
        &mut self,
        coll: &Arc<Collection>,
        alias: &str,
        id: &Ident,
    ) -> Result<Resolved, QueryError> {
        let info = self.info;
        let seg = |i: usize| id.segments.get(i).map(String::as_str);
        match (seg(1), seg(2)) {
            (Some("method"), None) => Ok(self.literal(Param::Text(info.method.clone()))),
            (Some("context"), None) => Ok(self.literal(Param::Text(info.context.to_string()))),
            (Some("auth"), Some(field)) => {
                let Some(auth) = &info.auth else {
                    return Ok(self.literal(Param::Text(String::new())));
                };
                match field {
                    "collectionId" if id.segments.len() == 3 => {
                        Ok(self.literal(Param::Text(auth.collection.id.clone())))
                    }
                    "collectionName" if id.segments.len() == 3 => {
                        Ok(self.literal(Param::Text(auth.collection.name.clone())))
                    }
                    _ => {
                        // Rules may read hidden fields of the auth record.
                        let saved = std::mem::replace(&mut self.client, false);
                        let res = self.path(
                            Base::Values(&auth.record),
                            auth.collection.clone(),
                            &id.segments[2..],
                            id,
                            Chain::default(),
                        );
                        self.client = saved;
                        res
                    }
                }
            }
            (Some("body"), Some(key)) if id.segments.len() == 3 => {
                self.body_ident(coll, alias, key, id.modifier.as_deref())
            }
            (Some(map @ ("query" | "headers")), Some(key)) if id.segments.len() == 3 => {
                let src = if map == "query" { &info.query } else { &info.headers };
                let p = src.get(key).map(Param::from_json).unwrap_or(Param::Null);
                let mut r = self.literal(p);
                if id.modifier.as_deref() == Some("lower") {
                    r.sql = self.dialect.lower(&r.sql);
                    r.lit = None;
                    r.param_idx = None;
                    r.ty = Ty::Text;
                } else if id.modifier.is_some() {
                    return err(format!("unsupported modifier in {:?}", id.raw));
                }
                Ok(r)
            }
            _ => err(format!("unknown request identifier {:?}", id.raw)),
        }
    }

    fn body_ident(
        &mut self,
        coll: &Arc<Collection>,
        alias: &str,
        key: &str,
        modifier: Option<&str>,
    ) -> Result<Resolved, QueryError> {
        let field = coll.field(key);
        let raw = self.info.body.get(key);
        let value = match (field, raw) {
            (Some(f), Some(v)) => crate::model::value::coerce(f, v),
            (None, Some(v)) => v.clone(),
            (_, None) => Value::Null,
        };
        match modifier {
            None => Ok(self.literal(Param::from_json(&value))),
            Some("isset") => Ok(self.literal(Param::Bool(raw.is_some()))),
            Some("length") => {
                let n = value.as_array().map(Vec::len).unwrap_or(0);
                Ok(self.literal(Param::Int(n as i64)))
            }
            Some("lower") => {
                let p = self.literal(Param::from_json(&value));
                Ok(Resolved::scalar(self.dialect.lower(&p.sql), true).typed(Ty::Text))
            }
            Some("each") => {
                let arr = match value {
                    Value::Array(_) => value,
                    Value::Null => Value::Array(vec![]),
                    other => Value::Array(vec![other]),
                };
                let p = self.param(Param::Text(arr.to_string()));
                let a = self.alias("je");
                let mut chain = Chain { multi: true, ..Chain::default() };
                let (src, joined) = self.source(&p, &a);
                chain.add_source(src, joined);
                let sql = self.dialect.json_each_value(&a);
                Ok(Resolved {
                    sql,
                    ty: Ty::Text,
                    nullable: true,
                    lit: None,
                    param_idx: None,
                    chain: Some(chain),
                })
            }
            Some("changed") => {
                let Some(f) = field else {
                    return err(format!("unknown field {key:?} for :changed"));
                };
                if raw.is_none() {
                    return Ok(self.literal(Param::Bool(false)));
                }
                let p = self.literal(Param::from_json(&value));
                let col = format!("{alias}.{}", quote_ident(&f.name));
                let d = self.dialect;
                let cond =
                    format!("(NOT ({} = {}))", d.text_coalesce(&col), d.text_coalesce(&p.sql));
                Ok(Resolved::scalar(cond, false).typed(Ty::Bool))
            }
            Some(m) => err(format!("unknown modifier {m:?}")),
        }
    }

    /// Resolves a field path starting at `base` (a row of `coll`).
    fn path(
        &mut self,
        base: Base<'_>,
        coll: Arc<Collection>,
        segs: &[String],
        id: &Ident,
        mut chain: Chain,
    ) -> Result<Resolved, QueryError> {
        let mut base = base;
        let mut coll = coll;
        for (i, seg) in segs.iter().enumerate() {
            let last = i + 1 == segs.len();
            if let Some(field) = coll.field(seg).cloned() {
                if self.client && !self.policy.sees_field(&field) {
                    return err(format!("field {seg:?} is hidden"));
                }
                if last {
                    return self.terminal(&base, &coll, &field, id, chain);
                }
                match &field.kind {
                    FieldKind::Relation { collection_id, .. } => {
                        let Some(target) = self.schema.by_id(collection_id).cloned() else {
                            return err(format!("relation {seg:?} points at a missing collection"));
                        };
                        let a = self.alias("r");
                        let col = self.column(&base, &field.name);
                        let table = format!("{} {a}", quote_ident(&target.name));
                        let rule = self.join_rule(&target, &a)?;
                        if field.is_multi() {
                            let je = self.alias("je");
                            let (src, joined) = self.source(&col, &je);
                            chain.add_source(src, joined);
                            let mut on =
                                format!("{a}.\"id\" = {}", self.dialect.json_each_value(&je));
                            if let Some(rule) = rule {
                                on = format!("{on} AND {rule}");
                            }
                            chain.add_table(table, on, true);
                            chain.multi = true;
                        } else {
                            let mut on = format!("{a}.\"id\" = {col}");
                            if let Some(rule) = rule {
                                on = format!("{on} AND {rule}");
                            }
                            chain.add_table(table, on, false);
                        }
                        base = Base::Alias(a);
                        coll = target;
                    }
                    FieldKind::Json { .. } | FieldKind::GeoPoint => {
                        let col = self.column(&base, &field.name);
                        let p = self.param(Param::Text(self.dialect.json_path(&segs[i + 1..])));
                        let sql = self.dialect.json_extract(&col, &p);
                        let r = Resolved {
                            sql,
                            ty: Ty::Json,
                            nullable: true,
                            lit: None,
                            param_idx: None,
                            chain: None,
                        };
                        return Ok(self.finish(chain, r));
                    }
                    _ => return err(format!("{:?}: {seg:?} is not a relation", id.raw)),
                }
            } else if let Some((target, field)) = self.back_relation(&coll, seg) {
                let a = self.alias("r");
                let me = self.column(&base, "id");
                let fcol = format!("{a}.{}", quote_ident(&field.name));
                let mut on = if field.is_multi() {
                    let je = self.alias("je");
                    format!(
                        "EXISTS (SELECT 1 FROM {} WHERE {} = {me})",
                        self.dialect.json_each(&fcol, &je),
                        self.dialect.json_each_value(&je)
                    )
                } else {
                    format!("{fcol} = {me}")
                };
                if let Some(rule) = self.join_rule(&target, &a)? {
                    on = format!("{on} AND {rule}");
                }
                chain.add_table(format!("{} {a}", quote_ident(&target.name)), on, true);
                chain.multi = true;
                base = Base::Alias(a);
                coll = target;
                if last {
                    if id.modifier.is_some() {
                        return err(format!(
                            "modifiers are not supported on back-relations ({:?})",
                            id.raw
                        ));
                    }
                    let idf = coll.field("id").cloned();
                    return match idf {
                        Some(f) => self.terminal(&base, &coll, &f, id, chain),
                        None => err("collection without id"),
                    };
                }
            } else {
                return err(format!("unknown field {seg:?} in {:?}", id.raw));
            }
        }
        err(format!("incomplete identifier {:?}", id.raw))
    }

    fn terminal(
        &mut self,
        base: &Base<'_>,
        coll: &Arc<Collection>,
        field: &Field,
        id: &Ident,
        mut chain: Chain,
    ) -> Result<Resolved, QueryError> {
        let ty = field_ty(field);
        let in_chain = !chain.froms.is_empty();
        if let (Base::Values(row), None, false) = (base, id.modifier.as_deref(), in_chain) {
            // A value held in memory (the auth record) is a literal of the field's type.
            let v = row.get(&field.name).cloned().unwrap_or(Value::Null);
            let mut r = self.literal(Param::from_json(&v));
            if !r.is_empty_lit() {
                r.ty = ty;
            }
            return Ok(r);
        }
        let col = self.column(base, &field.name);
        let values = matches!(base, Base::Values(_));
        let mut r = Resolved::scalar(col.clone(), in_chain || values).typed(ty);
        if self.client && self.policy.masks_email_in_filters(coll, field) {
            if let Base::Alias(a) = base {
                r.sql = format!("(CASE WHEN {a}.\"emailVisibility\" = TRUE THEN {col} END)");
                r.nullable = true;
            }
        }
        match id.modifier.as_deref() {
            None => {}
            Some("lower") => {
                r.sql = self.dialect.lower(&r.sql);
                r.ty = Ty::Text;
            }
            Some("length") => {
                if !field.is_multi() {
                    return err(format!(":length needs a multi-value field ({:?})", id.raw));
                }
                r.sql = self.dialect.json_array_length(&col);
                r.ty = Ty::Number;
            }
            Some("each") => {
                if !field.is_multi() {
                    return err(format!(":each needs a multi-value field ({:?})", id.raw));
                }
                let je = self.alias("je");
                let (src, joined) = self.source(&col, &je);
                chain.add_source(src, joined);
                chain.multi = true;
                r.sql = self.dialect.json_each_value(&je);
                r.nullable = true;
                r.ty = Ty::Text;
            }
            Some(m) => return err(format!("modifier {m:?} is not allowed in {:?}", id.raw)),
        }
        Ok(self.finish(chain, r))
    }

    /// Wraps a resolved column in its chain: a scalar sub-query for single-relation paths,
    /// a multi-value operand otherwise.
    fn finish(&mut self, chain: Chain, mut r: Resolved) -> Resolved {
        if chain.froms.is_empty() {
            return r;
        }
        if chain.multi {
            r.chain = Some(chain);
            r.nullable = true;
            return r;
        }
        r.sql = format!(
            "(SELECT {} FROM {} WHERE {} LIMIT 1)",
            r.sql,
            chain.froms.join(" "),
            chain.where_sql()
        );
        r.nullable = true;
        r
    }

    /// A JSON-array source over `expr` named `alias`, and how to join it after other FROM items.
    fn source(&self, expr: &str, alias: &str) -> (String, String) {
        let src = self.dialect.json_each(expr, alias);
        let joined = self.dialect.lateral_join(&src);
        (src, joined)
    }

    fn column(&mut self, base: &Base<'_>, name: &str) -> String {
        match base {
            Base::Alias(a) => format!("{a}.{}", quote_ident(name)),
            Base::Values(row) => {
                let v = row.get(name).cloned().unwrap_or(Value::Null);
                self.param(Param::from_json(&v))
            }
        }
    }

    fn back_relation(&self, coll: &Collection, seg: &str) -> Option<(Arc<Collection>, Field)> {
        let mut start = 0;
        while let Some(pos) = seg[start..].find("_via_") {
            let at = start + pos;
            let (cname, fname) = (&seg[..at], &seg[at + 5..]);
            if let Some(target) = self.schema.get(cname) {
                if let Some(f) = target.field(fname) {
                    if f.relation_target() == Some(coll.id.as_str()) {
                        return Some((target.clone(), f.clone()));
                    }
                }
            }
            start = at + 5;
        }
        None
    }

    /// The list rule of a related collection, applied to a join for non-superusers.
    fn join_rule(
        &mut self,
        target: &Arc<Collection>,
        alias: &str,
    ) -> Result<Option<String>, QueryError> {
        if !self.join_rules {
            return Ok(None);
        }
        match self.policy.relation_path(target) {
            None if self.client => Err(QueryError(format!(
                "only superusers can filter or sort by fields of the {:?} collection",
                target.name
            ))),
            None | Some(Decision::Denied) => Ok(Some("1=0".into())),
            Some(Decision::All) => Ok(None),
            Some(Decision::Filter(expr)) => {
                // NOTE: nested relations inside a related rule do not apply their own rules again;
                // this bounds the recursion (rules referencing each other would never end).
                let (saved_rules, saved_client) = (self.join_rules, self.client);
                self.join_rules = false;
                self.client = false;
                let res = self.expr(target, alias, &expr);
                self.join_rules = saved_rules;
                self.client = saved_client;
                res.map(Some)
            }
        }
    }
}

/// The type a field's column holds (multi-value fields hold JSON arrays).
fn field_ty(f: &Field) -> Ty {
    match &f.kind {
        FieldKind::Number { .. } => Ty::Number,
        FieldKind::Bool => Ty::Bool,
        FieldKind::Json { .. } | FieldKind::GeoPoint => Ty::Json,
        _ if f.is_multi() => Ty::Json,
        _ => Ty::Text,
    }
}

/// A possibly-NULL number or bool cannot fold NULL into '' without becoming text.
fn needs_text_compare(r: &Resolved) -> bool {
    r.nullable && r.lit.is_none() && matches!(r.ty, Ty::Number | Ty::Bool)
}

fn coalesce(r: &Resolved) -> String {
    if r.nullable && r.lit.is_none() {
        format!("COALESCE({}, '')", r.sql)
    } else {
        r.sql.clone()
    }
}

fn empty_check(r: &Resolved, eq: bool) -> String {
    let sql = &r.sql;
    if matches!(r.ty, Ty::Number | Ty::Bool) {
        // A number or bool is never '': only NULL (an empty relation path) is empty.
        return if eq { format!("({sql} IS NULL)") } else { format!("({sql} IS NOT NULL)") };
    }
    if eq {
        format!("({sql} = '' OR {sql} IS NULL)")
    } else {
        format!("({sql} != '' AND {sql} IS NOT NULL)")
    }
}

fn number_param(n: f64) -> Param {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Param::Int(n as i64)
    } else {
        Param::Real(n)
    }
}

/// PocketBase's `~` operand: wrapped in `%…%` with `\ % _` escaped, unless it already has `%`.
fn like_pattern(text: &str) -> String {
    if text.contains('%') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 4);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

fn macro_value(name: &str) -> Param {
    use chrono::{Datelike, Duration, TimeZone, Timelike, Utc};
    let now = Utc::now();
    let day_start = now.date_naive().and_hms_opt(0, 0, 0).map(|n| Utc.from_utc_datetime(&n));
    let fmt = |d: Option<chrono::DateTime<Utc>>| {
        Param::Text(d.map(crate::util::format_datetime).unwrap_or_default())
    };
    let month_start = Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0).single();
    let next_month = if now.month() == 12 {
        Utc.with_ymd_and_hms(now.year() + 1, 1, 1, 0, 0, 0).single()
    } else {
        Utc.with_ymd_and_hms(now.year(), now.month() + 1, 1, 0, 0, 0).single()
    };
    let year_start = Utc.with_ymd_and_hms(now.year(), 1, 1, 0, 0, 0).single();
    let year_end = Utc.with_ymd_and_hms(now.year() + 1, 1, 1, 0, 0, 0).single();
    let ms = Duration::milliseconds(1);
    match name {
        "@now" => fmt(Some(now)),
        "@yesterday" => fmt(Some(now - Duration::days(1))),
        "@tomorrow" => fmt(Some(now + Duration::days(1))),
        "@todayStart" => fmt(day_start),
        "@todayEnd" => fmt(day_start.map(|d| d + Duration::days(1) - ms)),
        "@monthStart" => fmt(month_start),
        "@monthEnd" => fmt(next_month.map(|d| d - ms)),
        "@yearStart" => fmt(year_start),
        "@yearEnd" => fmt(year_end.map(|d| d - ms)),
        "@second" => Param::Int(i64::from(now.second())),
        "@minute" => Param::Int(i64::from(now.minute())),
        "@hour" => Param::Int(i64::from(now.hour())),
        "@day" => Param::Int(i64::from(now.day())),
        "@month" => Param::Int(i64::from(now.month())),
        "@weekday" => Param::Int(i64::from(now.weekday().num_days_from_sunday())),
        _ => Param::Int(i64::from(now.year())),
    }
}

/// `SELECT COUNT(*)` of `row` standing in for `coll`'s table (a one-row CTE of that name)
/// under `rule` and the client `filter`: whether they match a row that need not be stored.
pub(crate) fn shadow_count_sql(
    d: &'static dyn crate::store::dialect::Dialect,
    schema: &crate::model::collection::Schema,
    coll: &std::sync::Arc<crate::model::collection::Collection>,
    info: &crate::model::request::RequestInfo,
    row: &crate::store::Row,
    rule: Option<&crate::model::filter::ast::Expr>,
    filter: Option<&crate::model::filter::ast::Expr>,
) -> Result<(String, Vec<Param>), crate::store::StoreError> {
    let mut c = Compiler::new(d, schema, info);
    let mut wheres = vec!["1=1".to_string()];
    if let Some(rule) = rule {
        wheres.push(c.rule(coll, "t", rule)?);
    }
    if let Some(filter) = filter {
        wheres.push(c.client_filter(coll, "t", filter)?);
    }
    let mut values = Vec::with_capacity(coll.fields.len());
    for f in &coll.fields {
        let v = row.get(&f.name).cloned().unwrap_or(serde_json::Value::Null);
        let p = c.param(crate::store::stored::encode(f, &v));
        values.push(format!(
            "{} AS {}",
            d.typed_value(&p, f),
            crate::store::dialect::quote_ident(&f.name)
        ));
    }
    let table = crate::store::dialect::quote_ident(&coll.name);
    let sql = format!(
        "WITH {table} AS (SELECT {}) SELECT COUNT(*) FROM {table} t WHERE {}",
        values.join(", "),
        wheres.join(" AND ")
    );
    Ok((sql, c.params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_like_pocketbase() {
        assert_eq!(like_pattern("hello"), "%hello%");
        assert_eq!(like_pattern("o_w"), "%o\\_w%");
        assert_eq!(like_pattern("Hello%"), "Hello%");
    }
}
