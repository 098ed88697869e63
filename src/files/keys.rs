//! Storage keys, laid out as PocketBase lays them out (`core/record_model.go` `BaseFilesPath`,
//! `apis/file.go`): `<collectionId>/<recordId>/<filename>` for a file and
//! `<collectionId>/<recordId>/thumbs_<filename>/<size>_<filename>` for its thumbnails. Every
//! segment is checked against one whitelist before a key exists, so no name from a request can
//! step out of its record's folder: only `[A-Za-z0-9_.*+=#-]`, not starting with `.`, 1–255 bytes.
//! That refuses `..`, `/`, `\`, NUL, `%` (so no percent-encoded traversal either), absolute paths,
//! spaces and non-ASCII. Names made by `files::names` always pass. Pure.

use object_store::path::Path;

use crate::files::FileError;

const MAX_SEGMENT_LEN: usize = 255;

/// A checked key of one stored object (a file or a thumbnail).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileKey(Path);

/// A checked key prefix: every object of one record (`<collectionId>/<recordId>/`) or every
/// thumbnail of one file (`<collectionId>/<recordId>/thumbs_<filename>/`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyPrefix(Path);

impl FileKey {
    /// `<collectionId>/<recordId>/<filename>`.
    pub fn file(collection_id: &str, record_id: &str, filename: &str) -> Result<Self, FileError> {
        parse(&[collection_id, record_id, filename]).map(FileKey)
    }

    /// `<collectionId>/<recordId>/thumbs_<filename>/<size>_<filename>`; `size` is a thumb spec
    /// such as `100x100` or `0x50t` (see `files::thumbs::ThumbSize`).
    pub fn thumb(
        collection_id: &str,
        record_id: &str,
        filename: &str,
        size: &str,
    ) -> Result<Self, FileError> {
        validate_segment(filename)?;
        validate_segment(size)?;
        let dir = format!("thumbs_{filename}");
        let name = format!("{size}_{filename}");
        parse(&[collection_id, record_id, &dir, &name]).map(FileKey)
    }

    /// The key of this file's thumbnail of `size` (a file key has three segments; a thumb key
    /// has four and has no thumbs of its own).
    pub fn thumb_of(&self, size: &str) -> Result<Self, FileError> {
        match self.as_str().split('/').collect::<Vec<_>>().as_slice() {
            [collection, record, name] => FileKey::thumb(collection, record, name, size),
            _ => Err(FileError::InvalidKey(format!("{self} is not an original file"))),
        }
    }

    /// The key as stored (`a/b/c`).
    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }

    /// The last segment (the file's or the thumbnail's name).
    pub fn file_name(&self) -> &str {
        self.as_str().rsplit('/').next().unwrap_or_default()
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl std::fmt::Display for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl KeyPrefix {
    /// Every object of one record: its files and their thumbnails.
    pub fn record(collection_id: &str, record_id: &str) -> Result<Self, FileError> {
        parse(&[collection_id, record_id]).map(KeyPrefix)
    }

    /// Every object of one collection's records.
    pub fn collection(collection_id: &str) -> Result<Self, FileError> {
        parse(&[collection_id]).map(KeyPrefix)
    }

    /// Every thumbnail of one file.
    pub fn thumbs(collection_id: &str, record_id: &str, filename: &str) -> Result<Self, FileError> {
        validate_segment(filename)?;
        parse(&[collection_id, record_id, &format!("thumbs_{filename}")]).map(KeyPrefix)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

/// Checks one key segment (an id, a file name, a thumb size) against the whitelist.
pub fn validate_segment(segment: &str) -> Result<(), FileError> {
    let invalid = |why: &str| FileError::InvalidKey(format!("{segment:?}: {why}"));
    if segment.is_empty() {
        return Err(invalid("empty"));
    }
    if segment.len() > MAX_SEGMENT_LEN {
        return Err(invalid("longer than 255 bytes"));
    }
    if segment.starts_with('.') {
        return Err(invalid("starts with a dot"));
    }
    if let Some(c) = segment.chars().find(|c| {
        !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '*' | '+' | '=' | '#' | '-'))
    }) {
        return Err(invalid(&format!("character {c:?} is not allowed")));
    }
    Ok(())
}

fn parse(segments: &[&str]) -> Result<Path, FileError> {
    for s in segments {
        validate_segment(s)?;
    }
    // `Path::parse` keeps the characters as written (no percent-encoding of `*` or `#`), so the
    // keys are byte for byte PocketBase's.
    Path::parse(segments.join("/")).map_err(|e| FileError::InvalidKey(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_pocketbase_s() {
        let k = FileKey::file("pbc_123", "abc123def456ghi", "photo_0123456789.png").expect("key");
        assert_eq!(k.as_str(), "pbc_123/abc123def456ghi/photo_0123456789.png");
        assert_eq!(k.file_name(), "photo_0123456789.png");
        let t = FileKey::thumb("_pb_users_auth_", "r1", "a_x.png", "100x100t").expect("thumb");
        assert_eq!(t.as_str(), "_pb_users_auth_/r1/thumbs_a_x.png/100x100t_a_x.png");
        assert_eq!(t.file_name(), "100x100t_a_x.png");
        let original = FileKey::file("_pb_users_auth_", "r1", "a_x.png").expect("key");
        assert_eq!(original.thumb_of("100x100t").expect("thumb"), t);
        assert!(t.thumb_of("10x10").is_err(), "no thumbs of thumbs");
        assert!(original.thumb_of("../x").is_err());
        assert_eq!(KeyPrefix::record("c", "r").expect("p").as_str(), "c/r");
        assert_eq!(KeyPrefix::collection("c").expect("p").as_str(), "c");
        assert!(KeyPrefix::collection("..").is_err());
        assert_eq!(KeyPrefix::thumbs("c", "r", "a.png").expect("p").as_str(), "c/r/thumbs_a.png");
        // Extensions may hold `*`, `#`, `=`, `+`: kept raw, not percent-encoded.
        let odd = FileKey::file("c", "r", "a_x.c#+=*").expect("key");
        assert_eq!(odd.as_str(), "c/r/a_x.c#+=*");
    }

    #[test]
    fn hostile_segments_are_refused() {
        let long = "a".repeat(256);
        let hostile = [
            "", ".", "..", "../x", "x/..", "a/b", "/etc", "\\x", "a\\..\\b", "a\0b", "%2e%2e",
            "..%2f", "%2F", ".hidden", "a b", "é", "a\nb", "C:", "~", &long,
        ];
        for h in hostile {
            assert!(validate_segment(h).is_err(), "{h:?} accepted");
            assert!(FileKey::file("c", "r", h).is_err(), "file {h:?}");
            assert!(FileKey::file(h, "r", "f").is_err(), "collection {h:?}");
            assert!(FileKey::file("c", h, "f").is_err(), "record {h:?}");
            assert!(FileKey::thumb("c", "r", h, "10x10").is_err(), "thumb file {h:?}");
            assert!(FileKey::thumb("c", "r", "f", h).is_err(), "thumb size {h:?}");
            assert!(KeyPrefix::record("c", h).is_err(), "prefix {h:?}");
        }
        assert!(validate_segment(&"a".repeat(255)).is_ok());
        assert!(validate_segment("a..b").is_ok(), "dots inside a name are harmless");
    }
}
