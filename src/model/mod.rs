//! Basalt's vocabulary: collections, fields, record values, the request as rules see it, the
//! filter language, and the access policy (rules parsed once, decisions per caller). Pure: no
//! IO, no async, no SQL.
pub mod collection;
pub mod error_code;
pub mod field;
pub mod filter;
pub mod policy;
pub mod request;
pub mod value;

pub use error_code::ErrorCode;
