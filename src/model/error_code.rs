//! `ErrorCode`: the machine-readable codes of validation errors (`{"code": "validation_…",
//! "message": …}` under an error envelope's `data`). They are PocketBase's wire codes: clients
//! match on them, so `as_str()` must never change. Messages stay with the code that raises them.
//! Must not: hold messages or know about HTTP.

use std::fmt;

use serde::{Serialize, Serializer};

/// Declares the enum, `as_str` and `ALL` from one table, so the three cannot drift apart.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident => $wire:literal,)*) => {
        /// A validation error code; serialises as its wire string.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as PocketBase sends it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $wire,)*
                }
            }
        }
    };
}

error_codes! {
    // Field values (`model::value`)
    Required => "validation_required",
    MinTextConstraint => "validation_min_text_constraint",
    MaxTextConstraint => "validation_max_text_constraint",
    InvalidFormat => "validation_invalid_format",
    UnsupportedValueType => "validation_unsupported_value_type",
    TooManyValues => "validation_too_many_values",
    UrlDomainNotAllowed => "validation_url_domain_not_allowed",
    InvalidValue => "validation_invalid_value",
    TooManyFiles => "validation_too_many_files",
    FileSizeLimit => "validation_file_size_limit",
    InvalidMimeType => "validation_invalid_mime_type",
    InvalidFile => "validation_invalid_file",
    MinNumberConstraint => "validation_min_number_constraint",
    MaxNumberConstraint => "validation_max_number_constraint",
    JsonSizeLimit => "validation_json_size_limit",
    EmailDomainNotAllowed => "validation_email_domain_not_allowed",
    ContentSizeLimit => "validation_content_size_limit",
    ReservedPk => "validation_reserved_pk",
    OnlyIntConstraint => "validation_only_int_constraint",
    NotEnoughValues => "validation_not_enough_values",
    MinGreaterEqualThanRequired => "validation_min_greater_equal_than_required",
    MaxLessEqualThanRequired => "validation_max_less_equal_than_required",
    LengthOutOfRange => "validation_length_out_of_range",
    LengthTooLong => "validation_length_too_long",
    IsEmail => "validation_is_email",
    IsUrl => "validation_is_url",
    InvalidUrl => "validation_invalid_url",
    InvalidLongitude => "validation_invalid_longitude",
    InvalidLatitude => "validation_invalid_latitude",
    ForbiddenPkCharacter => "validation_forbidden_pk_character",
    NotANumber => "validation_not_a_number",
    // Records and auth (`service::records`, `service::auth`)
    NotUnique => "validation_not_unique",
    ValuesMismatch => "validation_values_mismatch",
    PkChange => "validation_pk_change",
    MissingRelRecords => "validation_missing_rel_records",
    InvalidOldPassword => "validation_invalid_old_password",
    InInvalid => "validation_in_invalid",
    // Auth flows (`service::auth_flows`)
    InvalidToken => "validation_invalid_token",
    InvalidTokenClaims => "validation_invalid_token_claims",
    InvalidTokenPayload => "validation_invalid_token_payload",
    TokenCollectionMismatch => "validation_token_collection_mismatch",
    TokenEmailMismatch => "validation_token_email_mismatch",
    InvalidNewEmail => "validation_invalid_new_email",
    InvalidPassword => "validation_invalid_password",
    // Collections (`service::collections`)
    MatchInvalid => "validation_match_invalid",
    ReservedName => "validation_reserved_name",
    NotInInvalid => "validation_not_in_invalid",
    TooManyFields => "validation_too_many_fields",
    InvalidRule => "validation_invalid_rule",
    InvalidIndexExpression => "validation_invalid_index_expression",
    FieldTypeChange => "validation_field_type_change",
    FieldRelationMissingCollection => "validation_field_relation_missing_collection",
    DuplicatedFieldName => "validation_duplicated_field_name",
    DuplicatedFieldId => "validation_duplicated_field_id",
    CollectionsImportFailure => "validation_collections_import_failure",
    CollectionTypeChange => "validation_collection_type_change",
    CollectionSystemNameChange => "validation_collection_system_name_change",
    CollectionNameExists => "validation_collection_name_exists",
    CollectionIdExists => "validation_collection_id_exists",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::ErrorCode;

    /// The wire strings, written out: a renamed variant or a typo in the table fails here.
    const WIRE: &[(ErrorCode, &str)] = &[
        (ErrorCode::CollectionIdExists, "validation_collection_id_exists"),
        (ErrorCode::CollectionNameExists, "validation_collection_name_exists"),
        (ErrorCode::CollectionSystemNameChange, "validation_collection_system_name_change"),
        (ErrorCode::CollectionTypeChange, "validation_collection_type_change"),
        (ErrorCode::CollectionsImportFailure, "validation_collections_import_failure"),
        (ErrorCode::ContentSizeLimit, "validation_content_size_limit"),
        (ErrorCode::DuplicatedFieldId, "validation_duplicated_field_id"),
        (ErrorCode::DuplicatedFieldName, "validation_duplicated_field_name"),
        (ErrorCode::EmailDomainNotAllowed, "validation_email_domain_not_allowed"),
        (ErrorCode::FieldRelationMissingCollection, "validation_field_relation_missing_collection"),
        (ErrorCode::FieldTypeChange, "validation_field_type_change"),
        (ErrorCode::ForbiddenPkCharacter, "validation_forbidden_pk_character"),
        (ErrorCode::InInvalid, "validation_in_invalid"),
        (ErrorCode::InvalidFormat, "validation_invalid_format"),
        (ErrorCode::InvalidIndexExpression, "validation_invalid_index_expression"),
        (ErrorCode::InvalidLatitude, "validation_invalid_latitude"),
        (ErrorCode::InvalidLongitude, "validation_invalid_longitude"),
        (ErrorCode::InvalidOldPassword, "validation_invalid_old_password"),
        (ErrorCode::InvalidRule, "validation_invalid_rule"),
        (ErrorCode::InvalidUrl, "validation_invalid_url"),
        (ErrorCode::InvalidValue, "validation_invalid_value"),
        (ErrorCode::IsEmail, "validation_is_email"),
        (ErrorCode::IsUrl, "validation_is_url"),
        (ErrorCode::JsonSizeLimit, "validation_json_size_limit"),
        (ErrorCode::LengthOutOfRange, "validation_length_out_of_range"),
        (ErrorCode::LengthTooLong, "validation_length_too_long"),
        (ErrorCode::MatchInvalid, "validation_match_invalid"),
        (ErrorCode::MaxLessEqualThanRequired, "validation_max_less_equal_than_required"),
        (ErrorCode::MaxNumberConstraint, "validation_max_number_constraint"),
        (ErrorCode::MaxTextConstraint, "validation_max_text_constraint"),
        (ErrorCode::MinGreaterEqualThanRequired, "validation_min_greater_equal_than_required"),
        (ErrorCode::MinNumberConstraint, "validation_min_number_constraint"),
        (ErrorCode::MinTextConstraint, "validation_min_text_constraint"),
        (ErrorCode::MissingRelRecords, "validation_missing_rel_records"),
        (ErrorCode::NotANumber, "validation_not_a_number"),
        (ErrorCode::NotEnoughValues, "validation_not_enough_values"),
        (ErrorCode::NotInInvalid, "validation_not_in_invalid"),
        (ErrorCode::NotUnique, "validation_not_unique"),
        (ErrorCode::OnlyIntConstraint, "validation_only_int_constraint"),
        (ErrorCode::PkChange, "validation_pk_change"),
        (ErrorCode::Required, "validation_required"),
        (ErrorCode::ReservedName, "validation_reserved_name"),
        (ErrorCode::ReservedPk, "validation_reserved_pk"),
        (ErrorCode::TooManyFields, "validation_too_many_fields"),
        (ErrorCode::TooManyFiles, "validation_too_many_files"),
        (ErrorCode::FileSizeLimit, "validation_file_size_limit"),
        (ErrorCode::InvalidMimeType, "validation_invalid_mime_type"),
        (ErrorCode::InvalidFile, "validation_invalid_file"),
        (ErrorCode::TooManyValues, "validation_too_many_values"),
        (ErrorCode::UnsupportedValueType, "validation_unsupported_value_type"),
        (ErrorCode::UrlDomainNotAllowed, "validation_url_domain_not_allowed"),
        (ErrorCode::ValuesMismatch, "validation_values_mismatch"),
        (ErrorCode::InvalidToken, "validation_invalid_token"),
        (ErrorCode::InvalidTokenClaims, "validation_invalid_token_claims"),
        (ErrorCode::InvalidTokenPayload, "validation_invalid_token_payload"),
        (ErrorCode::TokenCollectionMismatch, "validation_token_collection_mismatch"),
        (ErrorCode::TokenEmailMismatch, "validation_token_email_mismatch"),
        (ErrorCode::InvalidNewEmail, "validation_invalid_new_email"),
        (ErrorCode::InvalidPassword, "validation_invalid_password"),
    ];

    #[test]
    fn every_code_has_its_pocketbase_wire_string() {
        for (code, wire) in WIRE {
            assert_eq!(code.as_str(), *wire, "{code:?}");
            assert_eq!(code.to_string(), *wire);
            assert_eq!(serde_json::to_value(code).ok(), Some(serde_json::json!(wire)));
        }
        let listed: HashSet<ErrorCode> = WIRE.iter().map(|(c, _)| *c).collect();
        let all: HashSet<ErrorCode> = ErrorCode::ALL.iter().copied().collect();
        assert_eq!(listed, all, "WIRE and ErrorCode::ALL list the same codes");
        assert_eq!(WIRE.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn no_two_codes_share_a_wire_string() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {}", code.as_str());
            assert!(code.as_str().starts_with("validation_"), "{code:?}");
        }
    }
}
