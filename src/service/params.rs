//! The query parameters of record and collection requests as received (`page`, `perPage`,
//! `sort`, `filter`, `expand`, `fields`, `skipTotal`) and how PocketBase reads the paging ones.
//! Shared by records, collections and auth answers.

use crate::service::{Result, ServiceError};

pub const DEFAULT_PER_PAGE: i64 = 30;
pub const MAX_PER_PAGE: i64 = 1000;

/// Query parameters of a list request, as received.
#[derive(Debug, Default, Clone)]
pub struct ListParams {
    pub page: Option<String>,
    pub per_page: Option<String>,
    pub sort: Option<String>,
    pub filter: Option<String>,
    pub expand: Option<String>,
    pub fields: Option<String>,
    pub skip_total: Option<String>,
}

impl ListParams {
    /// `(page, perPage)` as PocketBase reads them: not an integer is a 400, below 1 is the
    /// default, `perPage` is capped. Both list endpoints share this.
    pub(crate) fn paging(&self) -> Result<(i64, i64)> {
        let page = parse_int("page", &self.page)?.filter(|n| *n > 0).unwrap_or(1);
        let per_page = match parse_int("perPage", &self.per_page)? {
            Some(n) if n > 0 => n.min(MAX_PER_PAGE),
            _ => DEFAULT_PER_PAGE,
        };
        Ok((page, per_page))
    }

    /// How many items come before `page`. Saturates: a page far past the end (up to
    /// `i64::MAX`) is simply empty, never an overflow.
    pub(crate) fn offset(page: i64, per_page: i64) -> i64 {
        (page - 1).saturating_mul(per_page)
    }

    pub(crate) fn skip_total(&self) -> bool {
        truthy(&self.skip_total)
    }
}

/// `expand` and `fields` of single-record requests.
#[derive(Debug, Default, Clone)]
pub struct ViewParams {
    pub expand: Option<String>,
    pub fields: Option<String>,
}

fn parse_int(name: &str, raw: &Option<String>) -> Result<Option<i64>> {
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s.parse::<i64>().map(Some).map_err(|_| {
            ServiceError::bad(format!("Invalid \"{name}\" parameter: {s:?} is not an integer."))
        }),
    }
}

fn truthy(raw: &Option<String>) -> bool {
    matches!(raw.as_deref().map(str::trim), Some("1" | "true" | "True" | "TRUE" | "t"))
}
