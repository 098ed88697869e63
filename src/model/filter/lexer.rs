//! Lexer of the filter language: turns source text into tokens carrying byte positions.
//!
//! Owns the token-level rules: whitespace and `// line comments`, operators, number and string
//! literals (including escape resolution) and identifiers (split into segments and modifier).
//! Tokens are produced lazily, one at a time, so the first error reported is the leftmost one the
//! parser actually reaches. Every index used here sits on a char boundary, so no input can make
//! the lexer panic.

use super::ast::{CmpOp, Ident, Op};
use super::ParseError;

/// Longest snippet of source text quoted in an error message, in chars.
const MAX_SNIPPET_CHARS: usize = 40;

/// Why a text literal holding NUL is refused (PostgreSQL cannot bind NUL in text).
const NUL_MESSAGE: &str = "NUL characters are not allowed";

#[derive(Debug, Clone, PartialEq)]
pub(super) enum TokenKind {
    LParen,
    RParen,
    Comma,
    And,
    Or,
    Op(Op),
    Ident(Ident),
    Number(f64),
    Text(String),
    Eof,
}

/// A token and the byte range `start..end` of its source text.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub kind: TokenKind,
    pub start: usize,
    pub end: usize,
}

pub(super) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(src: &'a str) -> Self {
        Lexer { src, pos: 0 }
    }

    /// Describes a token for an error message: `end of input` or its quoted source text.
    pub(super) fn describe(&self, token: &Token) -> String {
        match token.kind {
            TokenKind::Eof => "end of input".to_string(),
            _ => quote(self.src.get(token.start..token.end).unwrap_or_default()),
        }
    }

    /// The source text between two byte offsets previously reported by this lexer.
    pub(super) fn text(&self, start: usize, end: usize) -> &'a str {
        self.src.get(start..end).unwrap_or_default()
    }

    fn byte_at(&self, at: usize) -> Option<u8> {
        self.src.as_bytes().get(at).copied()
    }

    fn char_at(&self, at: usize) -> Option<char> {
        self.src.get(at..).and_then(|rest| rest.chars().next())
    }

    /// Skips whitespace and `//` comments (up to, not including, the end of the line).
    fn skip_trivia(&mut self) {
        while let Some(c) = self.char_at(self.pos) {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else if c == '/' && self.byte_at(self.pos + 1) == Some(b'/') {
                let rest = self.src.get(self.pos..).unwrap_or_default();
                self.pos += rest.find('\n').unwrap_or(rest.len());
            } else {
                break;
            }
        }
    }

    pub(super) fn next_token(&mut self) -> Result<Token, ParseError> {
        self.skip_trivia();
        let start = self.pos;
        let Some(c) = self.char_at(start) else {
            return Ok(Token { kind: TokenKind::Eof, start, end: start });
        };
        let simple = |kind, len: usize| Token { kind, start, end: start + len };
        let token = match c {
            '(' => simple(TokenKind::LParen, 1),
            ')' => simple(TokenKind::RParen, 1),
            ',' => simple(TokenKind::Comma, 1),
            '&' if self.byte_at(start + 1) == Some(b'&') => simple(TokenKind::And, 2),
            '&' => return Err(err(start, "unexpected \"&\", expected \"&&\"")),
            '|' if self.byte_at(start + 1) == Some(b'|') => simple(TokenKind::Or, 2),
            '|' => return Err(err(start, "unexpected \"|\", expected \"||\"")),
            '=' | '!' | '>' | '<' | '~' | '?' => self.lex_op(start)?,
            '\'' | '"' => self.lex_string(start, c)?,
            '0'..='9' => self.lex_number(start)?,
            '-' if self.byte_at(start + 1).is_some_and(|b| b.is_ascii_digit()) => {
                self.lex_number(start)?
            }
            _ if is_ident_start(c) => {
                let (ident, end) = scan_ident(self.src, start)?;
                Token { kind: TokenKind::Ident(ident), start, end }
            }
            _ => return Err(err(start, format!("unexpected character {}", quote(&c.to_string())))),
        };
        self.pos = token.end;
        Ok(token)
    }

    fn lex_op(&self, start: usize) -> Result<Token, ParseError> {
        let any = self.byte_at(start) == Some(b'?');
        let at = if any { start + 1 } else { start };
        let (kind, len) = match (self.byte_at(at), self.byte_at(at + 1)) {
            (Some(b'='), _) => (CmpOp::Eq, 1),
            (Some(b'!'), Some(b'=')) => (CmpOp::Neq, 2),
            (Some(b'!'), Some(b'~')) => (CmpOp::NotLike, 2),
            (Some(b'>'), Some(b'=')) => (CmpOp::Gte, 2),
            (Some(b'>'), _) => (CmpOp::Gt, 1),
            (Some(b'<'), Some(b'=')) => (CmpOp::Lte, 2),
            (Some(b'<'), _) => (CmpOp::Lt, 1),
            (Some(b'~'), _) => (CmpOp::Like, 1),
            _ if any => {
                return Err(err(
                    start,
                    "unknown operator \"?\", expected one of ?= ?!= ?> ?>= ?< ?<= ?~ ?!~",
                ))
            }
            _ => return Err(err(start, "unexpected \"!\", expected \"!=\" or \"!~\"")),
        };
        Ok(Token { kind: TokenKind::Op(Op { kind, any }), start, end: at + len })
    }

    /// `-?\d+(\.\d+)?`. Trailing letters, digits, `_` and `.` are swallowed into the same token so
    /// that `1.2.3` or `10px` are reported as one invalid number.
    fn lex_number(&self, start: usize) -> Result<Token, ParseError> {
        let bytes = self.src.as_bytes();
        let mut end = start;
        if bytes.get(end) == Some(&b'-') {
            end += 1;
        }
        while bytes.get(end).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
        {
            end += 1;
        }
        let text = self.text(start, end);
        let unsigned = text.strip_prefix('-').unwrap_or(text);
        let (int, frac) = match unsigned.split_once('.') {
            Some((int, frac)) => (int, Some(frac)),
            None => (unsigned, None),
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
            return Err(err(start, format!("invalid number {}", quote(text))));
        }
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Token { kind: TokenKind::Number(n), start, end }),
            _ => Err(err(start, format!("number {} is out of range", quote(text)))),
        }
    }

    /// Scans a quoted literal starting at byte `start` and resolves its escapes.
    ///
    /// PocketBase 0.40.6 (probed): `\\`, `\"`, `\'` (both quotes in both quote styles), `\n`,
    /// `\t` and `\r` decode; every other escape keeps its backslash and its char (`\q`, `\0`,
    /// `\x41`, `\b`, `\u0041` stay as written). An escaped char never ends the literal, so
    /// `"x\\"` is `x\` and `"x\"` is unterminated.
    ///
    /// Deliberate difference: Basalt also decodes `\b`, `\f` and `\uXXXX` (a surrogate pair
    /// becomes one char). The JS SDK's `pb.filter` writes strings with `JSON.stringify`, which
    /// emits exactly those escapes for control chars; decoding them makes `pb.filter` round-trip
    /// every string, where PocketBase cannot match text containing a control char. A `\u` that
    /// is not 4 hex digits, or a surrogate without its partner, stays as written like
    /// PocketBase's unknown escapes. NUL (raw or `\u0000`) is refused: PostgreSQL cannot bind it.
    fn lex_string(&self, start: usize, quote_char: char) -> Result<Token, ParseError> {
        let mut at = start + 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.char_at(at) else {
                return Err(err(start, "unterminated string"));
            };
            let c_at = at;
            at += c.len_utf8();
            if c == quote_char {
                break;
            }
            if c == '\0' {
                return Err(err(c_at, NUL_MESSAGE));
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some(e) = self.char_at(at) else {
                return Err(err(start, "unterminated string"));
            };
            if e == '\0' {
                return Err(err(at, NUL_MESSAGE));
            }
            at += e.len_utf8();
            let decoded = match e {
                '\\' | '"' | '\'' => e,
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                'b' => '\u{8}',
                'f' => '\u{c}',
                'u' => match self.unicode_escape(at) {
                    Some(('\0', _)) => return Err(err(c_at, NUL_MESSAGE)),
                    Some((decoded, len)) => {
                        at += len;
                        decoded
                    }
                    // Kept as written: the digits (if any) are scanned as plain text next.
                    None => {
                        out.push('\\');
                        'u'
                    }
                },
                // Unknown escapes (`\q`, `\0`, `\x41`) keep their backslash, as in PocketBase.
                _ => {
                    out.push('\\');
                    e
                }
            };
            out.push(decoded);
        }
        Ok(Token { kind: TokenKind::Text(out), start, end: at })
    }

    /// The code unit written as exactly four hex digits at byte `at`.
    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.src.get(at..at.checked_add(4)?)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(digits, 16).ok()
    }

    /// Decodes the rest of a `\u` escape whose digits start at byte `at`: the char and how many
    /// source bytes it used after `\u`, or `None` when the escape stays as written (not four hex
    /// digits, a lone low surrogate, a high surrogate not followed by `\u` and a low one).
    fn unicode_escape(&self, at: usize) -> Option<(char, usize)> {
        let unit = self.hex4(at)?;
        if !(0xD800..=0xDBFF).contains(&unit) {
            // `from_u32` refuses lone low surrogates (U+DC00..U+DFFF).
            return char::from_u32(unit).map(|c| (c, 4));
        }
        if self.src.get(at + 4..at + 6) != Some("\\u") {
            return None;
        }
        let low = self.hex4(at + 6).filter(|low| (0xDC00..=0xDFFF).contains(low))?;
        let scalar = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
        char::from_u32(scalar).map(|c| (c, 10))
    }
}

fn err(position: usize, message: impl Into<String>) -> ParseError {
    ParseError { position, message: message.into() }
}

/// `"text"`, shortened to [`MAX_SNIPPET_CHARS`] chars.
pub(super) fn quote(text: &str) -> String {
    match text.char_indices().nth(MAX_SNIPPET_CHARS) {
        Some((cut, _)) => format!("\"{}...\"", &text[..cut]),
        None => format!("\"{text}\""),
    }
}

pub(super) fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || matches!(c, '_' | '@' | '#')
}

fn is_ident_continue(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':')
}

/// Scans the identifier starting at byte `start` of `src` (whose first char must satisfy
/// [`is_ident_start`]) and returns it with the offset just past it.
pub(super) fn scan_ident(src: &str, start: usize) -> Result<(Ident, usize), ParseError> {
    let bytes = src.as_bytes();
    if !src.get(start..).and_then(|rest| rest.chars().next()).is_some_and(is_ident_start) {
        return Err(err(start, "expected an identifier"));
    }
    let mut end = start + 1;
    while bytes.get(end).copied().is_some_and(is_ident_continue) {
        end += 1;
    }
    // Only ASCII bytes were consumed, so `start..end` is on char boundaries.
    let raw = src.get(start..end).unwrap_or_default();
    let ident = build_ident(raw, start)?;
    Ok((ident, end))
}

/// Splits `raw` (found at byte `start`) into segments and the trailing modifier.
fn build_ident(raw: &str, start: usize) -> Result<Ident, ParseError> {
    let invalid = |offset: usize, what: &str| {
        err(start + offset, format!("invalid identifier {}: {what}", quote(raw)))
    };
    let mut segments = Vec::new();
    let mut offset = 0;
    for segment in raw.split('.') {
        if segment.is_empty() {
            return Err(invalid(offset, "empty path segment around \".\""));
        }
        let mut part_offset = offset;
        for part in segment.split(':') {
            if part.is_empty() {
                let what = if part_offset == offset {
                    "expected a name before \":\""
                } else {
                    "expected a name after \":\""
                };
                return Err(invalid(part_offset, what));
            }
            part_offset += part.len() + 1;
        }
        segments.push(segment.to_string());
        offset += segment.len() + 1;
    }
    let mut modifier = None;
    if let Some(last) = segments.last_mut() {
        if let Some((name, modi)) = last.split_once(':') {
            modifier = Some(modi.to_string());
            *last = name.to_string();
        }
    }
    Ok(Ident { raw: raw.to_string(), segments, modifier })
}
