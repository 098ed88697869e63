//! PocketBase's filter language ("fexpr"): the public entry points `parse` (filters and API
//! rules) and `parse_sort` (the `sort` query parameter), plus their error type.
//!
//! The tree they produce lives in `ast`; tokenizing is in `lexer`, the grammar in `parser`.

pub mod ast;
pub mod eval;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

/// Why a filter or sort string was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} (at character {position})")]
pub struct ParseError {
    /// Byte offset into the input where the problem was found.
    pub position: usize,
    /// What was wrong and, where it helps, what was expected instead.
    pub message: String,
}

/// One `sort` item: `-created` is `{ ident: created, desc: true }`.
#[derive(Debug, Clone, PartialEq)]
pub struct SortItem {
    /// The field path (`title`, `author.name`) or special key (`@random`, `@rowid`); may carry a
    /// modifier such as `:lower`, which the resolver validates.
    pub ident: ast::Ident,
    /// True for a `-` prefix; `+` or no prefix sorts ascending.
    pub desc: bool,
}

/// Parses a filter or API rule such as `views > 10 && (author = @request.auth.id || public = true)`.
///
/// Empty (or whitespace/comment-only) input is an error: callers treat a missing filter as "no
/// filter" before calling this.
pub fn parse(input: &str) -> Result<ast::Expr, ParseError> {
    parser::parse_filter(input)
}

/// Parses a `sort` list such as `-created,+title,author.name,@random` (at most 8 items).
///
/// Empty input and empty items (`a,,b`) are errors.
pub fn parse_sort(input: &str) -> Result<Vec<SortItem>, ParseError> {
    parser::parse_sort(input)
}
