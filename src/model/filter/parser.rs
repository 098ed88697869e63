//! Recursive-descent parser of the filter language and of `sort` lists.
//!
//! Owns the grammar (`expr := term ('||' term)*`, `term := factor ('&&' factor)*`,
//! `factor := '(' expr ')' | operand OP operand`), operand forms (literals, identifiers, function
//! calls) and the size limits that keep hostile input from costing much: input length, number of
//! comparisons and nesting depth (which also bounds recursion, so no input can overflow the
//! stack).

use super::ast::{Expr, Operand};
use super::lexer::{is_ident_start, quote, scan_ident, Lexer, Token, TokenKind};
use super::{ParseError, SortItem};

/// Longest accepted filter or sort input, in bytes.
pub(super) const MAX_INPUT_LEN: usize = 3500;
/// Most comparisons (`a = b` leaves) in one filter.
pub(super) const MAX_COMPARISONS: usize = 200;
/// Deepest nesting of parentheses and function calls combined.
pub(super) const MAX_DEPTH: usize = 32;
/// Most items in one sort list.
pub(super) const MAX_SORT_ITEMS: usize = 8;

fn err(position: usize, message: impl Into<String>) -> ParseError {
    ParseError { position, message: message.into() }
}

fn check_len(input: &str) -> Result<(), ParseError> {
    if input.len() > MAX_INPUT_LEN {
        return Err(err(
            MAX_INPUT_LEN,
            format!("input is too long ({} bytes, max {MAX_INPUT_LEN})", input.len()),
        ));
    }
    Ok(())
}

pub(super) fn parse_filter(input: &str) -> Result<Expr, ParseError> {
    check_len(input)?;
    let mut parser = Parser { lexer: Lexer::new(input), peeked: None, depth: 0, comparisons: 0 };
    let first = parser.peek()?;
    if first.kind == TokenKind::Eof {
        return Err(err(first.start, "empty filter, expected an expression"));
    }
    let expr = parser.parse_or()?;
    let next = parser.bump()?;
    match next.kind {
        TokenKind::Eof => Ok(expr),
        TokenKind::RParen => Err(err(next.start, "unexpected \")\" without a matching \"(\"")),
        _ => Err(err(
            next.start,
            format!("unexpected {}, expected \"&&\" or \"||\"", parser.lexer.describe(&next)),
        )),
    }
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<Token>,
    depth: usize,
    comparisons: usize,
}

impl Parser<'_> {
    fn peek(&mut self) -> Result<&Token, ParseError> {
        let token = match self.peeked.take() {
            Some(token) => token,
            None => self.lexer.next_token()?,
        };
        Ok(self.peeked.insert(token))
    }

    fn bump(&mut self) -> Result<Token, ParseError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lexer.next_token(),
        }
    }

    fn peek_is(&mut self, kind: &TokenKind) -> Result<bool, ParseError> {
        Ok(self.peek()?.kind == *kind)
    }

    /// Enters one level of parentheses or call arguments opened at `position`.
    fn enter(&mut self, position: usize) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(
                position,
                format!("nesting is too deep (max {MAX_DEPTH} levels of parentheses and function calls)"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn parse_or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.parse_and()?;
        while self.peek_is(&TokenKind::Or)? {
            self.bump()?;
            let right = self.parse_and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.parse_factor()?;
        while self.peek_is(&TokenKind::And)? {
            self.bump()?;
            let right = self.parse_factor()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_factor(&mut self) -> Result<Expr, ParseError> {
        if !self.peek_is(&TokenKind::LParen)? {
            return self.parse_comparison();
        }
        let open = self.bump()?;
        self.enter(open.start)?;
        let expr = self.parse_or()?;
        let close = self.bump()?;
        match close.kind {
            TokenKind::RParen => {}
            TokenKind::Eof => {
                return Err(err(
                    close.start,
                    format!("missing closing \")\" for the \"(\" at character {}", open.start),
                ))
            }
            _ => {
                return Err(err(
                    close.start,
                    format!(
                        "unexpected {}, expected \"&&\", \"||\" or \")\"",
                        self.lexer.describe(&close)
                    ),
                ))
            }
        }
        self.leave();
        Ok(expr)
    }

    fn parse_comparison(&mut self) -> Result<Expr, ParseError> {
        let start = self.peek()?.start;
        let (left, left_end) = self.parse_operand()?;
        let next = self.bump()?;
        let TokenKind::Op(op) = next.kind else {
            return Err(err(
                next.start,
                format!(
                    "unexpected {}, expected a comparison operator after {}",
                    self.lexer.describe(&next),
                    quote(self.lexer.text(start, left_end))
                ),
            ));
        };
        let (right, _) = self.parse_operand()?;
        self.comparisons += 1;
        if self.comparisons > MAX_COMPARISONS {
            return Err(err(start, format!("too many comparisons (max {MAX_COMPARISONS})")));
        }
        Ok(Expr::Cmp { left, op, right })
    }

    /// Parses one operand and returns it with the byte offset just past it.
    fn parse_operand(&mut self) -> Result<(Operand, usize), ParseError> {
        let token = self.bump()?;
        let operand = match token.kind {
            TokenKind::Number(n) => Operand::Number(n),
            TokenKind::Text(text) => Operand::Text(text),
            TokenKind::Ident(ident) => {
                if self.peek_is(&TokenKind::LParen)? {
                    return self.parse_call(token.start, ident.raw);
                }
                match ident.raw.as_str() {
                    "null" => Operand::Null,
                    "true" => Operand::Bool(true),
                    "false" => Operand::Bool(false),
                    _ => Operand::Ident(ident),
                }
            }
            _ => {
                return Err(err(
                    token.start,
                    format!("unexpected {}, expected an operand", self.lexer.describe(&token)),
                ))
            }
        };
        Ok((operand, token.end))
    }

    /// Parses the argument list of `name(...)`; the next token is the `(`.
    fn parse_call(&mut self, start: usize, name: String) -> Result<(Operand, usize), ParseError> {
        let plain = name.bytes().enumerate().all(|(i, b)| {
            b == b'_' || if i == 0 { b.is_ascii_alphabetic() } else { b.is_ascii_alphanumeric() }
        });
        if !plain {
            return Err(err(
                start,
                format!(
                    "invalid function name {}, expected letters, digits and \"_\"",
                    quote(&name)
                ),
            ));
        }
        let open = self.bump()?;
        self.enter(open.start)?;
        let mut args = Vec::new();
        let end = if self.peek_is(&TokenKind::RParen)? {
            self.bump()?.end
        } else {
            loop {
                let (arg, _) = self.parse_operand()?;
                args.push(arg);
                let next = self.bump()?;
                match next.kind {
                    TokenKind::Comma => {}
                    TokenKind::RParen => break next.end,
                    TokenKind::Eof => {
                        return Err(err(
                            next.start,
                            format!("missing closing \")\" in the call to {}", quote(&name)),
                        ))
                    }
                    _ => {
                        return Err(err(
                            next.start,
                            format!(
                                "unexpected {}, expected \",\" or \")\" in the call to {}",
                                self.lexer.describe(&next),
                                quote(&name)
                            ),
                        ))
                    }
                }
            }
        };
        self.leave();
        Ok((Operand::Func { name, args }, end))
    }
}

pub(super) fn parse_sort(input: &str) -> Result<Vec<SortItem>, ParseError> {
    check_len(input)?;
    if input.trim().is_empty() {
        return Err(err(0, "empty sort, expected a field name"));
    }
    let mut items = Vec::new();
    let mut part_start = 0;
    for part in input.split(',') {
        let item_start = part_start + (part.len() - part.trim_start().len());
        let item = part.trim();
        let item_end = item_start + item.len();
        part_start += part.len() + 1;
        if item.is_empty() {
            return Err(err(item_start, "empty sort item, expected a field name"));
        }
        if items.len() == MAX_SORT_ITEMS {
            return Err(err(item_start, format!("too many sort fields (max {MAX_SORT_ITEMS})")));
        }
        let (desc, name_start) = match item.as_bytes().first() {
            Some(b'-') => (true, item_start + 1),
            Some(b'+') => (false, item_start + 1),
            _ => (false, item_start),
        };
        let first = input.get(name_start..).and_then(|rest| rest.chars().next());
        if !first.is_some_and(is_ident_start) || name_start >= item_end {
            let found = match first {
                Some(c) if name_start < item_end => quote(&c.to_string()),
                _ => "end of item".to_string(),
            };
            return Err(err(name_start, format!("unexpected {found}, expected a field name")));
        }
        let (ident, end) = scan_ident(input, name_start)?;
        if end != item_end {
            let found = input
                .get(end..)
                .and_then(|rest| rest.chars().next())
                .map(|c| quote(&c.to_string()))
                .unwrap_or_default();
            return Err(err(
                end,
                format!("unexpected {found} in sort field, expected \",\" or the end of the list"),
            ));
        }
        items.push(SortItem { ident, desc });
    }
    Ok(items)
}
