//! The filter/rule expression tree shared by client `filter` params and API rules.
//!
//! Pure data: produced by `parser.rs`, consumed by `store::query` (which resolves identifiers
//! against a collection schema and emits SQL). Nothing here knows about SQL or collections.

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `a && b`. `&&` binds tighter than `||`.
    And(Box<Expr>, Box<Expr>),
    /// `a || b`.
    Or(Box<Expr>, Box<Expr>),
    /// `left op right`: the only leaf; a bare operand is a parse error.
    Cmp { left: Operand, op: Op, right: Operand },
}

/// A comparison operator plus the "any of" flag (`?=`, `?~`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    pub kind: CmpOp,
    /// True for the `?`-prefixed forms: any element of a multi-value operand may match.
    pub any: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    /// `~`: case-insensitive contains (SQL LIKE).
    Like,
    /// `!~`.
    NotLike,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// `10`, `-1.5`.
    Number(f64),
    /// `'single'` or `"double"` quoted text with escapes already resolved.
    Text(String),
    /// A field path, `@request.*`, `@collection.*` or a datetime macro such as `@now`.
    Ident(Ident),
    /// `name(arg, ...)`, e.g. `strftime('%Y', created)` or `geoDistance(a, b, c, d)`.
    Func { name: String, args: Vec<Operand> },
}

/// A dotted identifier such as `author.name`, `tags:each`, `@request.body.title:isset`
/// or `@collection.posts:p.title`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    /// The identifier exactly as written (without surrounding whitespace), for error messages.
    pub raw: String,
    /// Dot-separated parts, without the trailing modifier. A `:alias` inside a part other than the
    /// last one (only meaningful for `@collection.name:alias`) stays inside that part's text.
    pub segments: Vec<String>,
    /// The `:modifier` suffix of the last part (`each`, `length`, `lower`, `isset`, `changed`),
    /// unvalidated: the resolver decides whether it is allowed where it appears.
    pub modifier: Option<String>,
}

impl Expr {
    /// Every identifier of the expression, function arguments included, left to right. Checks
    /// that depend on what an expression refers to (not on how its text looks) walk these.
    pub fn idents(&self) -> Vec<&Ident> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(e) = stack.pop() {
            match e {
                // Pushed right first so the left side is visited first.
                Expr::And(a, b) | Expr::Or(a, b) => stack.extend([b.as_ref(), a.as_ref()]),
                Expr::Cmp { left, right, .. } => {
                    left.collect_idents(&mut out);
                    right.collect_idents(&mut out);
                }
            }
        }
        out
    }
}

impl Operand {
    fn collect_idents<'a>(&'a self, out: &mut Vec<&'a Ident>) {
        match self {
            Operand::Ident(id) => out.push(id),
            Operand::Func { args, .. } => args.iter().for_each(|a| a.collect_idents(out)),
            Operand::Null | Operand::Bool(_) | Operand::Number(_) | Operand::Text(_) => {}
        }
    }
}
