//! Coercion and validation of record field values; pure, no IO.
//!
//! Mirrors PocketBase's per-field `PrepareValue` (silent input coercion), `ValidateValue`
//! (error codes, messages and params as the API renders them) and the `field+`/`+field`/`field-`
//! setters. Checks that need the database (relation ids exist, unique indexes, primary key
//! changes), password hashing and uploaded file contents belong to the service, not here.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{json, Map, Value};

use crate::model::field::{Field, FieldKind};
use crate::model::ErrorCode;
use crate::util::{format_datetime, parse_datetime};

/// One validation failure, rendered by the HTTP layer as {"code","message","params"?}.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub code: ErrorCode,
    pub message: String,
    pub params: Option<Value>,
}

/// An update modifier key: `field+` (append / add), `+field` (prepend), `field-` (remove /
/// subtract).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    Append,
    Prepend,
    Remove,
}

impl FieldError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> FieldError {
        FieldError { code, message: message.into(), params: None }
    }

    pub fn with_params(mut self, params: Value) -> FieldError {
        self.params = Some(params);
        self
    }

    /// `ErrorCode::Required` / "Cannot be blank.", also used by forms outside record fields.
    pub fn required() -> FieldError {
        FieldError::new(ErrorCode::Required, "Cannot be blank.")
    }

    /// The error object as the API renders it: `{"code","message"}` plus `"params"` if any.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("code".into(), json!(self.code));
        o.insert("message".into(), json!(self.message));
        if let Some(params) = &self.params {
            o.insert("params".into(), params.clone());
        }
        Value::Object(o)
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Turns raw client input (JSON, or strings from a urlencoded form) into the stored shape of the
/// field, applying PocketBase's silent coercions. Never fails.
pub fn coerce(field: &Field, input: &Value) -> Value {
    match &field.kind {
        FieldKind::Text { .. }
        | FieldKind::Email { .. }
        | FieldKind::Url { .. }
        | FieldKind::Editor { .. }
        | FieldKind::Password { .. } => Value::String(to_text(input)),
        FieldKind::Number { .. } => number_value(to_f64(input)),
        FieldKind::Bool => Value::Bool(to_bool(input)),
        FieldKind::Date { .. } => Value::String(to_date(input)),
        // The service stamps autodate values; a string is passed through untouched.
        FieldKind::Autodate { .. } => match input {
            Value::String(_) => input.clone(),
            _ => json!(""),
        },
        FieldKind::Select { .. } | FieldKind::Relation { .. } => {
            list_value(field, to_unique_strings(input))
        }
        FieldKind::File { .. } => list_value(field, file_names(input)),
        FieldKind::Json { .. } => coerce_json(input),
        FieldKind::GeoPoint => coerce_geo_point(input),
    }
}

/// Checks a coerced value against the field's options (`required` included). DB-dependent checks
/// (relation ids exist, unique indexes) are NOT done here.
pub fn validate(field: &Field, value: &Value) -> Result<(), FieldError> {
    let required = field.required;
    match &field.kind {
        FieldKind::Text { min, max, pattern, primary_key, .. } => {
            let text = as_text(value)?;
            validate_text(text, required || *primary_key, *min, *max, pattern)?;
            if *primary_key && !text.is_empty() && pattern != DEFAULT_ID_PATTERN {
                validate_primary_key(text)?;
            }
            Ok(())
        }
        FieldKind::Number { min, max, only_int } => {
            validate_number(as_number(value)?, required, *min, *max, *only_int)
        }
        FieldKind::Bool => match value {
            Value::Bool(false) if required => Err(FieldError::required()),
            Value::Bool(_) => Ok(()),
            _ => Err(unsupported_type()),
        },
        FieldKind::Email { only_domains, except_domains } => {
            validate_email(as_text(value)?, required, only_domains, except_domains)
        }
        FieldKind::Url { only_domains, except_domains } => {
            validate_url(as_text(value)?, required, only_domains, except_domains)
        }
        FieldKind::Editor { max_size, .. } => {
            let text = as_text(value)?;
            check_required(required, text.is_empty())?;
            check_size(
                text.len(),
                *max_size,
                DEFAULT_EDITOR_MAX_SIZE,
                ErrorCode::ContentSizeLimit,
                "content",
            )
        }
        FieldKind::Date { min, max } => validate_date(as_text(value)?, required, min, max),
        FieldKind::Autodate { .. } => Ok(()),
        FieldKind::Select { values, max_select } => {
            let selected = to_unique_strings(value);
            check_required(required, selected.is_empty())?;
            check_max_select(selected.len(), *max_select)?;
            match selected.iter().find(|v| !values.contains(v)) {
                Some(bad) => {
                    Err(FieldError::new(ErrorCode::InvalidValue, format!("Invalid value {bad}."))
                        .with_params(json!({ "value": bad })))
                }
                None => Ok(()),
            }
        }
        FieldKind::Relation { min_select, max_select, .. } => {
            let ids = to_unique_strings(value);
            check_required(required, ids.is_empty())?;
            if ids.is_empty() {
                return Ok(());
            }
            if *min_select > 0 && (ids.len() as i64) < *min_select {
                return Err(FieldError::new(
                    ErrorCode::NotEnoughValues,
                    format!("Select at least {min_select}."),
                )
                .with_params(json!({ "minSelect": min_select })));
            }
            check_max_select(ids.len(), *max_select)
        }
        FieldKind::File { max_select, .. } => {
            let files = file_names(value);
            check_required(required, files.is_empty())?;
            let max = (*max_select).max(1);
            if files.len() as i64 > max {
                return Err(FieldError::new(
                    ErrorCode::TooManyFiles,
                    format!("The maximum allowed files is {max}."),
                )
                .with_params(json!({ "maxSelect": max })));
            }
            Ok(())
        }
        FieldKind::Json { max_size } => {
            let size = serde_json::to_string(value).map(|s| s.len()).unwrap_or(0);
            check_size(size, *max_size, DEFAULT_JSON_MAX_SIZE, ErrorCode::JsonSizeLimit, "JSON")?;
            let blank = match value {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                _ => false,
            };
            check_required(required, blank)
        }
        FieldKind::Password { min, max, pattern, .. } => {
            validate_password(as_text(value)?, required, *min, *max, pattern)
        }
        FieldKind::GeoPoint => validate_geo_point(value, required),
    }
}

/// Applies an update modifier: number `+`/`-` add/subtract; multi select/relation/file `field+`
/// appends, `+field` prepends, `field-` removes (input may be a single value or an array);
/// single-value select/relation/file follow PocketBase's list algorithm and keep the last item, so
/// `field+` sets a new value, `field-` clears an equal value and `+field` only fills an empty one.
/// Field types without that modifier (PocketBase ignores such keys) return `current` unchanged.
/// Whether PocketBase accepts `modifier` on `field`: numbers take `n+` and `n-`; select,
/// relation and file fields take all three; every other type takes none.
pub fn supports_modifier(field: &Field, modifier: Modifier) -> bool {
    match field.kind {
        FieldKind::Number { .. } => matches!(modifier, Modifier::Append | Modifier::Remove),
        FieldKind::Select { .. } | FieldKind::Relation { .. } | FieldKind::File { .. } => true,
        _ => false,
    }
}

pub fn apply_modifier(field: &Field, current: &Value, modifier: Modifier, input: &Value) -> Value {
    match (&field.kind, modifier) {
        (FieldKind::Number { .. }, Modifier::Append) => {
            number_value(to_f64(current) + to_f64(input))
        }
        (FieldKind::Number { .. }, Modifier::Remove) => {
            number_value(to_f64(current) - to_f64(input))
        }
        (FieldKind::Select { .. } | FieldKind::Relation { .. }, _) => {
            let items = modify_list(to_unique_strings(current), to_unique_strings(input), modifier);
            list_value(field, items)
        }
        (FieldKind::File { .. }, _) => {
            list_value(field, modify_list(file_names(current), file_names(input), modifier))
        }
        _ => current.clone(),
    }
}

/// Generates a random string for simple autogenerate patterns: a sequence of `[class]{n}`
/// or literal characters, e.g. `[a-z0-9]{15}`, `[a-zA-Z0-9]{50}`, `abc[0-9]{3}`. None if the
/// pattern is outside that subset.
///
/// Also accepted: `{n,m}` quantifiers, `\d`/`\w` and escaped punctuation, a leading `^` and a
/// trailing `$`. Rejected: groups, alternation, `* + ? .`, negated classes, non-ASCII.
pub fn generate_from_pattern(pattern: &str) -> Option<String> {
    use rand::Rng;

    let body = pattern.strip_prefix('^').unwrap_or(pattern);
    let body = body.strip_suffix('$').filter(|b| !b.ends_with('\\')).unwrap_or(body);
    let chars: Vec<char> = body.chars().collect();
    if chars.is_empty() || !body.is_ascii() {
        return None;
    }
    let mut rng = rand::thread_rng();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let (alphabet, next) = parse_atom(&chars, i)?;
        let (min, max, next) = parse_quantifier(&chars, next)?;
        let count = if min == max { min } else { rng.gen_range(min..=max) };
        for _ in 0..count {
            out.push(alphabet[rng.gen_range(0..alphabet.len())]);
        }
        i = next;
    }
    Some(out)
}

// ------------------------------------------------------------------------------------------------
// Per-type validation.

/// The outcome of one validation check.
type Check = Result<(), FieldError>;

/// PocketBase's default `id` pattern; primary keys with it skip the extra PK character checks.
const DEFAULT_ID_PATTERN: &str = "^[a-z0-9]+$";
const DEFAULT_TEXT_MAX: i64 = 5000;
const DEFAULT_PASSWORD_MAX: i64 = 71;
const DEFAULT_EDITOR_MAX_SIZE: i64 = 5 << 20;
const DEFAULT_JSON_MAX_SIZE: i64 = 1 << 20;
const MAX_URL_CHARS: usize = 2083;
const FORBIDDEN_PK_CHARS: &[&str] = &[
    ".", "/", "\\", "|", "\"", "'", "`", "<", ">", ":", "?", "*", "%", "$", "\0", "\t", "\n", "\r",
    " ",
];
const RESERVED_PKS: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];
const URL_SCHEMES: &[&str] = &["http", "https", "ftp", "ws", "wss", "tcp", "udp"];

fn validate_text(text: &str, required: bool, min: i64, max: i64, pattern: &str) -> Check {
    check_required(required, text.is_empty())?;
    if text.is_empty() {
        return Ok(());
    }
    let length = text.chars().count() as i64;
    if min > 0 && length < min {
        return Err(FieldError::new(
            ErrorCode::MinTextConstraint,
            format!("Must be at least {min} character(s)."),
        )
        .with_params(json!({ "min": min })));
    }
    let max = if max == 0 { DEFAULT_TEXT_MAX } else { max };
    if max > 0 && length > max {
        return Err(FieldError::new(
            ErrorCode::MaxTextConstraint,
            format!("Must be no more than {max} character(s)."),
        )
        .with_params(json!({ "max": max })));
    }
    check_pattern(text, pattern)
}

fn validate_primary_key(text: &str) -> Check {
    if let Some(ch) = FORBIDDEN_PK_CHARS.iter().find(|ch| text.contains(**ch)) {
        return Err(FieldError::new(
            ErrorCode::ForbiddenPkCharacter,
            format!("'{ch}' is not a valid primary key character."),
        )
        .with_params(json!({ "ch": ch })));
    }
    if let Some(reserved) = RESERVED_PKS.iter().find(|r| r.eq_ignore_ascii_case(text)) {
        return Err(FieldError::new(
            ErrorCode::ReservedPk,
            format!("The primary key '{reserved}' is reserved and cannot be used."),
        )
        .with_params(json!({ "reserved": reserved })));
    }
    Ok(())
}

fn validate_password(plain: &str, required: bool, min: i64, max: i64, pattern: &str) -> Check {
    check_required(required, plain.is_empty())?;
    if plain.is_empty() {
        return Ok(());
    }
    // NOTE: PocketBase words these differently from text fields and sends no params.
    let length = plain.chars().count() as i64;
    if length < min {
        return Err(FieldError::new(
            ErrorCode::MinTextConstraint,
            format!("Must be at least {min} character(s)."),
        ));
    }
    let max = if max <= 0 { DEFAULT_PASSWORD_MAX } else { max };
    if length > max {
        return Err(FieldError::new(
            ErrorCode::MaxTextConstraint,
            format!("Must be less than {max} character(s)."),
        ));
    }
    check_pattern(plain, pattern)
}

fn check_pattern(text: &str, pattern: &str) -> Check {
    if pattern.is_empty() {
        return Ok(());
    }
    // An uncompilable pattern never matches, as in PocketBase (`match, _ := regexp.MatchString`).
    match Regex::new(pattern) {
        Ok(re) if re.is_match(text) => Ok(()),
        _ => Err(FieldError::new(ErrorCode::InvalidFormat, "Invalid value format.")),
    }
}

fn validate_number(
    n: f64,
    required: bool,
    min: Option<f64>,
    max: Option<f64>,
    only_int: bool,
) -> Check {
    if !n.is_finite() {
        return Err(FieldError::new(
            ErrorCode::NotANumber,
            "The submitted number is not properly formatted.",
        ));
    }
    if n == 0.0 {
        return check_required(required, true);
    }
    if only_int && n.fract() != 0.0 {
        return Err(FieldError::new(
            ErrorCode::OnlyIntConstraint,
            "Decimal numbers are not allowed.",
        ));
    }
    if let Some(min) = min.filter(|min| n < *min) {
        return Err(FieldError::new(
            ErrorCode::MinNumberConstraint,
            format!("Must be greater or equal than {}.", go_float(min)),
        )
        .with_params(json!({ "min": number_value(min) })));
    }
    if let Some(max) = max.filter(|max| n > *max) {
        return Err(FieldError::new(
            ErrorCode::MaxNumberConstraint,
            format!("Must be less or equal than {}.", go_float(max)),
        )
        .with_params(json!({ "max": number_value(max) })));
    }
    Ok(())
}

fn validate_email(email: &str, required: bool, only: &[String], except: &[String]) -> Check {
    check_required(required, email.is_empty())?;
    if email.is_empty() {
        return Ok(());
    }
    if !is_email(email) {
        return Err(FieldError::new(ErrorCode::IsEmail, "Must be a valid email address."));
    }
    let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    if domain_denied(domain, only, except) {
        return Err(FieldError::new(
            ErrorCode::EmailDomainNotAllowed,
            "Email domain is not allowed.",
        ));
    }
    Ok(())
}

fn validate_url(raw: &str, required: bool, only: &[String], except: &[String]) -> Check {
    check_required(required, raw.is_empty())?;
    if raw.is_empty() {
        return Ok(());
    }
    let Some(host) = url_host(raw) else {
        return Err(FieldError::new(ErrorCode::InvalidUrl, "Must be a valid url."));
    };
    if domain_denied(host, only, except) {
        return Err(FieldError::new(ErrorCode::UrlDomainNotAllowed, "Url domain is not allowed."));
    }
    Ok(())
}

fn validate_date(raw: &str, required: bool, min: &str, max: &str) -> Check {
    // Unparsable text is the zero date, exactly as `coerce` would have stored it.
    let Some(date) = parse_datetime(raw) else {
        return check_required(required, true);
    };
    if let Some(min) = parse_datetime(min).filter(|min| date < *min) {
        return Err(FieldError::new(
            ErrorCode::MinGreaterEqualThanRequired,
            format!("Must be no less than {}.", go_time_string(min)),
        )
        .with_params(json!({ "threshold": go_time_json(min) })));
    }
    if let Some(max) = parse_datetime(max).filter(|max| date > *max) {
        return Err(FieldError::new(
            ErrorCode::MaxLessEqualThanRequired,
            format!("Must be no greater than {}.", go_time_string(max)),
        )
        .with_params(json!({ "threshold": go_time_json(max) })));
    }
    Ok(())
}

fn validate_geo_point(value: &Value, required: bool) -> Check {
    let point = value.as_object().ok_or_else(unsupported_type)?;
    let coord = |key: &str| match point.get(key) {
        None => Ok(0.0),
        Some(v) => v.as_f64().ok_or_else(unsupported_type),
    };
    let (lon, lat) = (coord("lon")?, coord("lat")?);
    if lon == 0.0 && lat == 0.0 {
        return check_required(required, true);
    }
    if !(-90.0..=90.0).contains(&lat) {
        return Err(FieldError::new(
            ErrorCode::InvalidLatitude,
            "Latitude must be between -90 and 90 degrees.",
        ));
    }
    if !(-180.0..=180.0).contains(&lon) {
        return Err(FieldError::new(
            ErrorCode::InvalidLongitude,
            "Longitude must be between -180 and 180 degrees.",
        ));
    }
    Ok(())
}

fn check_required(required: bool, blank: bool) -> Check {
    if required && blank {
        Err(FieldError::required())
    } else {
        Ok(())
    }
}

fn check_max_select(len: usize, max_select: i64) -> Check {
    let max = max_select.max(1);
    if len as i64 > max {
        return Err(FieldError::new(
            ErrorCode::TooManyValues,
            format!("Select no more than {max}."),
        )
        .with_params(json!({ "maxSelect": max })));
    }
    Ok(())
}

fn check_size(size: usize, max_size: i64, default: i64, code: ErrorCode, what: &str) -> Check {
    let max = if max_size <= 0 { default } else { max_size };
    if size as i64 > max {
        return Err(FieldError::new(
            code,
            format!("The maximum allowed {what} size is {max} bytes."),
        )
        .with_params(json!({ "maxSize": max })));
    }
    Ok(())
}

fn domain_denied(domain: &str, only: &[String], except: &[String]) -> bool {
    (!only.is_empty() && !only.iter().any(|d| d == domain)) || except.iter().any(|d| d == domain)
}

fn unsupported_type() -> FieldError {
    FieldError::new(ErrorCode::UnsupportedValueType, "Invalid or unsupported value type.")
}

fn as_text(value: &Value) -> Result<&str, FieldError> {
    value.as_str().ok_or_else(unsupported_type)
}

fn as_number(value: &Value) -> Result<f64, FieldError> {
    value.as_f64().ok_or_else(unsupported_type)
}

/// The email syntax of PocketBase's validator (govalidator's `IsEmail`): dot-atom or quoted
/// local part, a dotted domain whose last label starts and ends with a letter.
static EMAIL_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    const U: &str = r"\x{00A0}-\x{D7FF}\x{F900}-\x{FDCF}\x{FDF0}-\x{FFEF}";
    let atext = format!(r"[a-zA-Z0-9!#$%&'*+\-/=?^_`{{|}}~{U}]");
    let qtext = format!(r"[\x20\x09\x01-\x08\x0b\x0c\x0e-\x1f\x7f\x21\x23-\x5b\x5d-\x7e{U}]");
    let quoted = format!(r#""(?:{qtext}|\\[\x01-\x7f{U}])*""#);
    let label = format!(r"[a-zA-Z0-9{U}](?:[a-zA-Z0-9\-._~{U}]*[a-zA-Z0-9{U}])?");
    let tld = format!(r"[a-zA-Z{U}](?:[a-zA-Z0-9\-._~{U}]*[a-zA-Z{U}])?");
    Regex::new(&format!(r"^(?:{atext}+(?:\.{atext}+)*|{quoted})@(?:{label}\.)+{tld}\.?$")).ok()
});

pub fn is_email(email: &str) -> bool {
    EMAIL_RE.as_ref().is_some_and(|re| re.is_match(email))
}

/// Validates an absolute URL (known scheme, non-empty host, no whitespace) and returns its raw
/// host as Go's `url.URL.Host` has it (port included, case kept), for the domain lists.
fn url_host(raw: &str) -> Option<&str> {
    let count = raw.chars().count();
    if count <= 3 || count >= MAX_URL_CHARS || raw.chars().any(char::is_whitespace) {
        return None;
    }
    let parsed = url::Url::parse(raw).ok()?;
    if !URL_SCHEMES.contains(&parsed.scheme()) || parsed.host_str().is_none_or(str::is_empty) {
        return None;
    }
    let (_, rest) = raw.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    (!host.is_empty()).then_some(host)
}

// ------------------------------------------------------------------------------------------------
// Casts (spf13/cast semantics, as PocketBase uses them).

/// `cast.ToString`: strings as-is, numbers in plain decimal, bools as words, null and
/// arrays/objects as "".
fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => n.as_f64().map(|f| f.to_string()).unwrap_or_default(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null | Value::Array(_) | Value::Object(_) => String::new(),
    }
}

/// `cast.ToFloat64`: numbers, numeric strings (anything else is 0), bools as 1/0.
fn to_f64(v: &Value) -> f64 {
    let n = match v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => s.parse::<f64>().unwrap_or(0.0),
        Value::Bool(b) => f64::from(u8::from(*b)),
        _ => 0.0,
    };
    // NOTE: PocketBase would reject "NaN"/"Inf" with validation_not_a_number, but JSON cannot
    // hold them, so they collapse to 0 here.
    if n.is_finite() {
        n
    } else {
        0.0
    }
}

/// `cast.ToBool`: Go's `strconv.ParseBool` words for strings, non-zero numbers.
fn to_bool(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => matches!(s.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"),
        _ => false,
    }
}

fn to_date(v: &Value) -> String {
    match v {
        Value::String(s) => parse_datetime(s).map(format_datetime).unwrap_or_default(),
        _ => String::new(),
    }
}

/// A number in the stored JSON shape: integral values as JSON integers (`42`, not `42.0`).
/// A number as PocketBase renders it: integral values as integers (`5`, not `5.0`), everything
/// else as the shortest decimal that reads back to the same f64. Both stores render through this,
/// so an engine never changes how a stored number looks.
pub fn number_value(n: f64) -> Value {
    const I64_BOUND: f64 = 9_223_372_036_854_775_808.0; // 2^63
    const U64_BOUND: f64 = 18_446_744_073_709_551_616.0; // 2^64
    if !n.is_finite() {
        json!(0)
    } else if n.fract() == 0.0 && n.abs() < I64_BOUND {
        json!(n as i64)
    } else if n.fract() == 0.0 && n > 0.0 && n < U64_BOUND {
        json!(n as u64)
    } else {
        json!(n)
    }
}

/// `list.ToUniqueStringSlice`: null/"" → [], a string holding a JSON array of strings → that
/// array, any other string → [string], arrays → their elements as text, other scalars → [text];
/// empty strings dropped, duplicates dropped keeping the first occurrence.
fn to_unique_strings(v: &Value) -> Vec<String> {
    let items = match v {
        Value::Null | Value::Object(_) => Vec::new(),
        Value::String(s) if s.is_empty() => Vec::new(),
        Value::String(s) if s.contains('[') => {
            json_string_array(s).unwrap_or_else(|| vec![s.clone()])
        }
        Value::String(s) => vec![s.clone()],
        // A nested array or object makes Go's cast fail for the whole list.
        Value::Array(a) if a.iter().any(|i| i.is_array() || i.is_object()) => Vec::new(),
        Value::Array(a) => a.iter().map(to_text).collect(),
        Value::Number(_) | Value::Bool(_) => vec![to_text(v)],
    };
    nonzero_uniques(items)
}

/// File field names: like `to_unique_strings`, except that each array element counts only if it
/// yields exactly one name (PocketBase's `FileField.toSliceValue`).
fn file_names(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => nonzero_uniques(
            a.iter()
                .filter_map(|item| {
                    let mut names = to_unique_strings(item);
                    (names.len() == 1).then(|| names.remove(0))
                })
                .collect(),
        ),
        _ => to_unique_strings(v),
    }
}

fn json_string_array(s: &str) -> Option<Vec<String>> {
    match serde_json::from_str::<Value>(s).ok()? {
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Some(s),
                Value::Null => Some(String::new()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn nonzero_uniques(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        if !item.is_empty() && !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn modify_list(current: Vec<String>, input: Vec<String>, modifier: Modifier) -> Vec<String> {
    let items = match modifier {
        Modifier::Append => current.into_iter().chain(input).collect(),
        Modifier::Prepend => input.into_iter().chain(current).collect(),
        Modifier::Remove => current.into_iter().filter(|c| !input.contains(c)).collect(),
    };
    nonzero_uniques(items)
}

/// The stored shape of a select/relation/file list: an array when `maxSelect > 1`, else the
/// last item (or "").
fn list_value(field: &Field, mut items: Vec<String>) -> Value {
    if field.is_multi() {
        json!(items)
    } else {
        Value::String(items.pop().unwrap_or_default())
    }
}

/// PocketBase's JSON field normalization of plain strings (so forms and JSON bodies agree):
/// `""` stays a string; `null`/`true`/`false` and valid JSON starting with a digit, `-`, `"`,
/// `[` or `{` are parsed; anything else is kept as a string.
fn coerce_json(v: &Value) -> Value {
    let Value::String(s) = v else {
        return normalize_numbers(v.clone());
    };
    let parseable = matches!(s.as_str(), "null" | "true" | "false")
        || s.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '"' | '[' | '{'));
    if parseable {
        if let Ok(parsed) = serde_json::from_str::<Value>(s) {
            return normalize_numbers(parsed);
        }
    }
    v.clone()
}

/// Integral floats become integers, as Go's float64 round trip renders them.
fn normalize_numbers(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => number_value(n.as_f64().unwrap_or(0.0)),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize_numbers).collect()),
        Value::Object(o) => {
            Value::Object(o.into_iter().map(|(k, v)| (k, normalize_numbers(v))).collect())
        }
        other => other,
    }
}

fn coerce_geo_point(v: &Value) -> Value {
    let parsed;
    let object = match v {
        Value::Object(o) => Some(o),
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s).ok();
            parsed.as_ref().and_then(Value::as_object)
        }
        _ => None,
    };
    let coord = |key: &str| match object.and_then(|o| o.get(key)) {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(Value::String(s)) => {
            s.trim().parse::<f64>().ok().filter(|f| f.is_finite()).unwrap_or(0.0)
        }
        _ => 0.0,
    };
    json!({ "lon": number_value(coord("lon")), "lat": number_value(coord("lat")) })
}

// ------------------------------------------------------------------------------------------------
// Go formatting, so messages read exactly like PocketBase's.

/// Go's `%v` for a float64 (`strconv` 'g', shortest): `5`, `2.5`, `1e+06`, `1e-05`.
fn go_float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return f.to_string();
    }
    let sci = format!("{f:e}"); // shortest digits, e.g. "1.5e6", "-2e-5"
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    // Shortest %g switches to exponent form below 1e-4 and from 1e6 (precision 6).
    if (-4..6).contains(&exp) {
        return f.to_string();
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// Go's `time.Time.String()` for a UTC time: `2024-01-02 03:04:05.5 +0000 UTC`.
fn go_time_string(t: chrono::DateTime<chrono::Utc>) -> String {
    format!("{}{} +0000 UTC", t.format("%Y-%m-%d %H:%M:%S"), go_fraction(t))
}

/// Go's `time.Time` JSON (RFC 3339 with trimmed nanoseconds): `2024-01-02T03:04:05.5Z`.
fn go_time_json(t: chrono::DateTime<chrono::Utc>) -> String {
    format!("{}{}Z", t.format("%Y-%m-%dT%H:%M:%S"), go_fraction(t))
}

fn go_fraction(t: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Timelike;
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos == 0 {
        return String::new();
    }
    let digits = format!("{nanos:09}");
    format!(".{}", digits.trim_end_matches('0'))
}

// ------------------------------------------------------------------------------------------------
// Autogenerate pattern parsing.

/// One atom at `i`: a `[class]`, an escape or a literal. Returns its alphabet and the next index.
fn parse_atom(chars: &[char], i: usize) -> Option<(Vec<char>, usize)> {
    match chars[i] {
        '[' => parse_class(chars, i + 1),
        '\\' => Some((escape_alphabet(*chars.get(i + 1)?)?, i + 2)),
        '(' | ')' | '|' | '*' | '+' | '?' | '.' | '^' | '$' | '{' | '}' | ']' => None,
        c => Some((vec![c], i + 1)),
    }
}

fn parse_class(chars: &[char], mut i: usize) -> Option<(Vec<char>, usize)> {
    if chars.get(i) == Some(&'^') {
        return None;
    }
    let mut alphabet = Vec::new();
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !alphabet.is_empty() {
            break;
        }
        let (first, next) = match c {
            '\\' => {
                let escaped = escape_alphabet(*chars.get(i + 1)?)?;
                if escaped.len() > 1 {
                    alphabet.extend(escaped);
                    i += 2;
                    continue;
                }
                (escaped[0], i + 2)
            }
            '[' => return None,
            c => (c, i + 1),
        };
        if chars.get(next) == Some(&'-') && chars.get(next + 1).is_some_and(|c| *c != ']') {
            let last = *chars.get(next + 1)?;
            if last == '\\' || last < first {
                return None;
            }
            alphabet.extend(first..=last);
            i = next + 2;
        } else {
            alphabet.push(first);
            i = next;
        }
    }
    alphabet.sort_unstable();
    alphabet.dedup();
    Some((alphabet, i + 1))
}

fn escape_alphabet(c: char) -> Option<Vec<char>> {
    match c {
        'd' => Some(('0'..='9').collect()),
        'w' => Some(('0'..='9').chain('A'..='Z').chain('a'..='z').chain(['_']).collect()),
        c if c.is_ascii_punctuation() => Some(vec![c]),
        _ => None,
    }
}

/// An optional `{n}` or `{n,m}` at `i`. Returns (min, max, next index); counts are capped to keep
/// a hostile pattern from allocating without bound.
fn parse_quantifier(chars: &[char], i: usize) -> Option<(usize, usize, usize)> {
    const MAX_REPEAT: usize = 10_000;
    if chars.get(i) != Some(&'{') {
        return Some((1, 1, i));
    }
    let close = i + chars[i..].iter().position(|c| *c == '}')?;
    let inner: String = chars[i + 1..close].iter().collect();
    let (min, max) = match inner.split_once(',') {
        Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
        None => {
            let n = inner.parse().ok()?;
            (n, n)
        }
    };
    (min <= max && max <= MAX_REPEAT).then_some((min, max, close + 1))
}

#[cfg(test)]
#[path = "value_tests.rs"]
mod tests;
