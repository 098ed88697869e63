//! Basalt's vocabulary: collections, fields, record values, the request as rules see it, and the
//! filter language. Pure: no IO, no async, no SQL.
pub mod collection;
pub mod field;
pub mod filter;
pub mod request;
pub mod value;
