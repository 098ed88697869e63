//! Hot files from memory. A stored object never changes under its key: upload names carry 10
//! random characters and a thumbnail's key is its original's name plus its size, so what the
//! store says about a key (size, validators, content type) and, for small objects, its bytes can
//! be kept without any invalidation for correctness. Whether a caller may read a key is decided
//! before the cache is asked (the record must still hold the name), so an entry that outlives
//! its deleted object is only memory, and deletes drop their entries to give that back.
//!
//! Bounded by bytes (moka's TinyLFU admission: a one-off download does not push out hot ones).
//! Every instance keeps its own; there is nothing to share because nothing changes.

use std::sync::Arc;

use bytes::Bytes;
use moka::sync::Cache;

use crate::files::{FileKey, FileMeta, KeyPrefix};

/// What is known about one stored object.
#[derive(Clone, Debug)]
pub struct CachedFile {
    pub meta: FileMeta,
    /// The type to serve it with (recorded at upload, or detected from its first bytes).
    pub content_type: String,
    /// The whole object, when it is small enough to keep.
    pub bytes: Option<Bytes>,
}

/// Entry overhead counted besides the bytes (key, metadata, moka's bookkeeping).
const ENTRY_OVERHEAD: u64 = 256;

/// The object cache: metadata for any object, bytes for those up to `max_inline` bytes.
pub struct FileCache {
    entries: Option<Cache<String, Arc<CachedFile>>>,
    max_inline: u64,
}

impl FileCache {
    /// A cache of at most `capacity` bytes keeping objects up to `max_inline` bytes whole;
    /// `capacity` 0 turns it off (every call misses, nothing is kept).
    pub fn new(capacity: u64, max_inline: u64) -> Self {
        let entries = (capacity > 0).then(|| {
            Cache::builder()
                .max_capacity(capacity)
                .weigher(|k: &String, v: &Arc<CachedFile>| {
                    let w = ENTRY_OVERHEAD
                        + k.len() as u64
                        + v.content_type.len() as u64
                        + v.bytes.as_ref().map_or(0, |b| b.len() as u64);
                    u32::try_from(w).unwrap_or(u32::MAX)
                })
                .support_invalidation_closures()
                .build()
        });
        FileCache { entries, max_inline: max_inline.min(capacity / 8) }
    }

    /// Whether an object of `size` bytes should be kept whole.
    pub fn keeps_bytes(&self, size: u64) -> bool {
        self.entries.is_some() && size <= self.max_inline
    }

    pub fn get(&self, key: &FileKey) -> Option<Arc<CachedFile>> {
        self.entries.as_ref()?.get(key.as_str())
    }

    pub fn insert(&self, key: &FileKey, file: Arc<CachedFile>) {
        if let Some(c) = &self.entries {
            c.insert(key.as_str().to_string(), file);
        }
    }

    pub fn remove(&self, key: &FileKey) {
        if let Some(c) = &self.entries {
            c.invalidate(key.as_str());
        }
    }

    /// Drops every entry under `prefix` (a record's folder, or one file's thumbnails).
    pub fn remove_prefix(&self, prefix: &KeyPrefix) {
        if let Some(c) = &self.entries {
            // Whole segments only: the prefix of record `r1` must not take `r10`'s entries.
            let p = format!("{}/", prefix.as_str());
            // Only fails when closures are not supported, which `new` turns on.
            let _ = c.invalidate_entries_if(move |k, _| k.starts_with(&p));
        }
    }

    /// Bytes held now (moka counts lazily; `run_pending_tasks` first for an exact figure).
    pub fn weighted_size(&self) -> u64 {
        self.entries.as_ref().map_or(0, |c| {
            c.run_pending_tasks();
            c.weighted_size()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn file(bytes: usize) -> Arc<CachedFile> {
        Arc::new(CachedFile {
            meta: FileMeta {
                size: bytes as u64,
                last_modified: Utc::now(),
                e_tag: None,
                content_type: None,
            },
            content_type: "image/png".into(),
            bytes: Some(Bytes::from(vec![7u8; bytes])),
        })
    }

    fn key(record: &str, name: &str) -> FileKey {
        FileKey::file("c1", record, name).unwrap()
    }

    #[test]
    fn keeps_what_fits_and_drops_by_prefix() {
        let cache = FileCache::new(1 << 20, 64 << 10);
        assert!(cache.keeps_bytes(64 << 10));
        assert!(!cache.keeps_bytes((64 << 10) + 1));
        let (a, b, other) = (key("r1", "a.png"), key("r1", "b.png"), key("r10", "a.png"));
        for k in [&a, &b, &other] {
            cache.insert(k, file(1000));
        }
        assert_eq!(cache.get(&a).unwrap().bytes.as_ref().unwrap().len(), 1000);
        cache.remove(&a);
        assert!(cache.get(&a).is_none());
        cache.remove_prefix(&KeyPrefix::record("c1", "r1").unwrap());
        cache.weighted_size();
        assert!(cache.get(&b).is_none());
        assert!(cache.get(&other).is_some());
    }

    #[test]
    fn stays_within_its_byte_bound() {
        let cache = FileCache::new(256 << 10, 32 << 10);
        for i in 0..100 {
            cache.insert(&key(&format!("r{i}"), "a.png"), file(30 << 10));
        }
        assert!(cache.weighted_size() <= 256 << 10, "{}", cache.weighted_size());
    }

    #[test]
    fn capacity_zero_is_off() {
        let cache = FileCache::new(0, 1 << 20);
        cache.insert(&key("r1", "a.png"), file(10));
        assert!(cache.get(&key("r1", "a.png")).is_none());
        assert!(!cache.keeps_bytes(1));
    }
}
