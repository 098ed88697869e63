//! An uploaded file between the request and the store: its client name, detected type, size and
//! bytes (in memory, or spooled to a temp file that is deleted when dropped). `http::multipart`
//! makes them; `service` validates them against a file field and stores them.

use bytes::Bytes;

use crate::files::mime::Detected;
use crate::files::{names, FileError, FileKey, FileStore, PutInfo};

/// One uploaded file.
#[derive(Debug)]
pub struct UploadedFile {
    /// The form field it was sent under.
    pub field: String,
    /// The client's file name, reduced to its last `/` segment as Go does (never a path).
    pub original_name: String,
    /// The type detected from the content (the client's `Content-Type` is ignored).
    pub detected: Detected,
    pub size: u64,
    /// The first bytes ([`crate::files::mime::SNIFF_LEN`] at most), for naming and type checks.
    pub head: Bytes,
    pub content: FileContent,
}

/// Where an upload's bytes are until they are stored.
#[derive(Debug)]
pub enum FileContent {
    Memory(Bytes),
    /// Deleted when dropped.
    Spooled(tempfile::NamedTempFile),
}

impl UploadedFile {
    /// A fresh stored name (PocketBase's mangling, see `files::names`).
    pub fn stored_name(&self) -> String {
        names::stored_name(&self.original_name, &self.head)
    }

    /// Writes the bytes to `key`, streaming a spooled file.
    pub async fn store(&self, store: &FileStore, key: &FileKey) -> Result<PutInfo, FileError> {
        let ct = Some(self.detected.mime);
        match &self.content {
            FileContent::Memory(bytes) => store.put_bytes(key, bytes.clone(), ct).await,
            FileContent::Spooled(file) => store.put_file(key, file.path(), ct).await,
        }
    }
}
