//! `FileStore`: the one door to stored files, over `object_store` (the local disk under
//! `<data dir>/storage`, or an S3-compatible bucket). Every call takes a checked `FileKey` /
//! `KeyPrefix`, so nothing here parses names. Uploads stream: up to `multipart_threshold` bytes
//! are buffered and sent in one PUT; past that the upload switches to a multipart upload whose
//! memory stays at a few parts whatever the file's size. Reads stream too, optionally from a
//! byte range.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use futures_util::Stream;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::{
    Attribute, Attributes, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMultipartOptions,
    PutOptions, PutPayload, WriteMultipart,
};
use serde::Deserialize;

use crate::files::keys::{FileKey, KeyPrefix};
use crate::files::mime::{self, Detected};
use crate::files::FileError;

/// S3 needs parts of at least 5 MiB (except the last), so that is the smallest useful part.
const DEFAULT_PART_SIZE: usize = 5 * 1024 * 1024;
/// Parts uploading at once per upload; with the part being filled, memory per upload is about
/// `(MAX_PARTS_IN_FLIGHT + 1) × part_size`.
const MAX_PARTS_IN_FLIGHT: usize = 2;
/// Chunk size when a local file (a spooled upload) is streamed into the store.
const READ_CHUNK: usize = 256 * 1024;

/// An S3-compatible bucket, as PocketBase's settings `s3` section describes it (camelCase keys:
/// `endpoint`, `bucket`, `region`, `accessKey`, `secret`, `forcePathStyle`). `Debug` never shows
/// the secret.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct S3Config {
    /// `https://s3.eu-central-1.amazonaws.com`, `http://127.0.0.1:9000`…; empty for AWS's default.
    pub endpoint: String,
    pub bucket: String,
    /// Empty means `us-east-1`.
    pub region: String,
    pub access_key: String,
    pub secret: String,
    /// `https://host/bucket/key` instead of `https://bucket.host/key` (MinIO, moto, most
    /// self-hosted servers).
    pub force_path_style: bool,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("secret", &if self.secret.is_empty() { "" } else { "[redacted]" })
            .field("force_path_style", &self.force_path_style)
            .finish()
    }
}

/// What a store knows about one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMeta {
    pub size: u64,
    pub last_modified: DateTime<Utc>,
    /// The store's entity tag (S3's quoted MD5, or the local disk's inode/size/mtime), as given.
    pub e_tag: Option<String>,
    /// The content type recorded at upload; `None` on the local disk, which keeps no
    /// attributes (use [`FileStore::detect_type`]).
    pub content_type: Option<String>,
}

/// An opened object: its metadata, the byte range being sent and the bytes.
pub struct Download {
    pub meta: FileMeta,
    pub range: Range<u64>,
    pub stream: BoxStream<'static, Result<Bytes, FileError>>,
}

impl fmt::Debug for Download {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Download").field("meta", &self.meta).field("range", &self.range).finish()
    }
}

/// The result of an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutInfo {
    pub size: u64,
    pub e_tag: Option<String>,
    /// Whether the bytes went up as a multipart upload (tests check the switch happens).
    pub multipart: bool,
}

/// Stored files, local or S3. Cheap to clone.
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<dyn ObjectStore>,
    /// Whether the backend keeps attributes (content type); the local disk does not.
    attributes: bool,
    multipart_threshold: usize,
    part_size: usize,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore").field("backend", &self.inner.to_string()).finish()
    }
}

impl FileStore {
    /// Files under `<data_dir>/storage`, created if missing. Emptied record folders are removed
    /// after deletes, as PocketBase's local driver does.
    pub fn local(data_dir: &std::path::Path) -> Result<Self, FileError> {
        let root = data_dir.join("storage");
        std::fs::create_dir_all(&root).map_err(FileError::Io)?;
        let fs = LocalFileSystem::new_with_prefix(&root)?.with_automatic_cleanup(true);
        Ok(Self::new(Arc::new(fs), false))
    }

    /// An S3-compatible bucket. Nothing is contacted until the first call.
    pub fn s3(cfg: &S3Config) -> Result<Self, FileError> {
        if cfg.bucket.is_empty() {
            return Err(FileError::Config("the S3 bucket is empty".into()));
        }
        let region = if cfg.region.is_empty() { "us-east-1" } else { cfg.region.as_str() };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(region)
            .with_access_key_id(&cfg.access_key)
            .with_secret_access_key(&cfg.secret)
            .with_virtual_hosted_style_request(!cfg.force_path_style);
        if !cfg.endpoint.is_empty() {
            let (endpoint, http) = s3_endpoint(cfg)?;
            builder = builder.with_endpoint(endpoint).with_allow_http(http);
        }
        let s3 = builder.build().map_err(|e| FileError::Config(e.to_string()))?;
        Ok(Self::new(Arc::new(s3), true))
    }

    /// Any `object_store` backend (tests use the in-memory one). `attributes`: whether it keeps
    /// a content type per object.
    pub fn new(inner: Arc<dyn ObjectStore>, attributes: bool) -> Self {
        FileStore {
            inner,
            attributes,
            multipart_threshold: DEFAULT_PART_SIZE,
            part_size: DEFAULT_PART_SIZE,
        }
    }

    /// Changes when uploads switch to multipart and the part size (tests use small values;
    /// S3 refuses parts under 5 MiB except the last).
    pub fn with_multipart(mut self, threshold: usize, part_size: usize) -> Self {
        self.multipart_threshold = threshold.max(1);
        self.part_size = part_size.max(1);
        self
    }

    /// Uploads a stream of chunks to `key`, replacing any object there. Memory stays bounded by
    /// the multipart threshold and part size, not by the upload's size. On any error nothing is
    /// left at `key` (a started multipart upload is aborted).
    pub async fn put_stream<S>(
        &self,
        key: &FileKey,
        mut stream: S,
        content_type: Option<&str>,
    ) -> Result<PutInfo, FileError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin,
    {
        let mut head: Vec<Bytes> = Vec::new();
        let mut buffered = 0usize;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(FileError::Source)?;
            buffered += chunk.len();
            head.push(chunk);
            if buffered >= self.multipart_threshold {
                return self.put_multipart(key, head, stream, content_type).await;
            }
        }
        let opts =
            PutOptions { attributes: self.attributes_for(content_type), ..Default::default() };
        let payload: PutPayload = head.into_iter().collect();
        let res = self.inner.put_opts(key.path(), payload, opts).await?;
        Ok(PutInfo { size: buffered as u64, e_tag: res.e_tag, multipart: false })
    }

    /// Uploads bytes already in memory.
    pub async fn put_bytes(
        &self,
        key: &FileKey,
        bytes: Bytes,
        content_type: Option<&str>,
    ) -> Result<PutInfo, FileError> {
        self.put_stream(key, futures_util::stream::iter([Ok(bytes)]), content_type).await
    }

    /// Uploads a local file (a spooled upload) without reading it into memory.
    pub async fn put_file(
        &self,
        key: &FileKey,
        path: &std::path::Path,
        content_type: Option<&str>,
    ) -> Result<PutInfo, FileError> {
        let file = tokio::fs::File::open(path).await.map_err(FileError::Source)?;
        self.put_stream(key, Box::pin(file_chunks(file)), content_type).await
    }

    /// Opens `key`, all of it or `range` (end exclusive, already resolved against the size;
    /// see `http::ranges`). A range that starts past the end is `RangeNotSatisfiable`.
    pub async fn get(
        &self,
        key: &FileKey,
        range: Option<Range<u64>>,
    ) -> Result<Download, FileError> {
        if range.as_ref().is_some_and(|r| r.start >= r.end) {
            return Err(FileError::RangeNotSatisfiable);
        }
        let opts = GetOptions { range: range.map(GetRange::Bounded), ..Default::default() };
        let res = self.inner.get_opts(key.path(), opts).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => FileError::NotFound,
            // The stores report an unsatisfiable range as a generic error; the object exists.
            e if e.to_string().to_ascii_lowercase().contains("range") => {
                FileError::RangeNotSatisfiable
            }
            e => FileError::Store(e),
        })?;
        let meta = meta_of(&res.meta, &res.attributes);
        let range = res.range.clone();
        let stream = match res.payload {
            // object_store reads local files 8 KiB per blocking task: 13 thread hops for a
            // 100 KB download, which made local downloads slower than PocketBase's.
            object_store::GetResultPayload::File(file, _) => {
                Self::local_stream(file, range.clone())
            }
            object_store::GetResultPayload::Stream(s) => s.map_err(FileError::from).boxed(),
        };
        Ok(Download { meta, range, stream })
    }

    /// The bytes `range` of a local file, read `READ_CHUNK` at a time on the blocking pool.
    fn local_stream(
        file: std::fs::File,
        range: Range<u64>,
    ) -> BoxStream<'static, Result<Bytes, FileError>> {
        use std::io::{Read, Seek, SeekFrom};
        let state = (Some(file), range.start, range.end - range.start);
        futures_util::stream::try_unfold(state, |(file, start, remaining)| async move {
            let Some(mut file) = file else { return Ok(None) };
            if remaining == 0 {
                return Ok(None);
            }
            let (file, chunk) = tokio::task::spawn_blocking(move || {
                if start > 0 {
                    file.seek(SeekFrom::Start(start))?;
                }
                let want = remaining.min(READ_CHUNK as u64);
                let mut buf = Vec::with_capacity(usize::try_from(want).unwrap_or(READ_CHUNK));
                (&mut file).take(want).read_to_end(&mut buf)?;
                Ok::<_, std::io::Error>((file, buf))
            })
            .await
            .map_err(|e| FileError::Task(e.to_string()))?
            .map_err(FileError::Io)?;
            if chunk.is_empty() {
                // The file shrank under us: end here rather than loop.
                return Ok(None);
            }
            let left = remaining - chunk.len() as u64;
            Ok(Some((Bytes::from(chunk), (Some(file), 0, left))))
        })
        .boxed()
    }

    /// Reads a whole object into memory; for small ones (thumbnail sources are bounded by the
    /// field's `maxSize`).
    pub async fn read_all(&self, key: &FileKey) -> Result<Bytes, FileError> {
        let res = self.inner.get_opts(key.path(), GetOptions::default()).await?;
        Ok(res.bytes().await?)
    }

    /// Metadata without the bytes.
    pub async fn head(&self, key: &FileKey) -> Result<FileMeta, FileError> {
        // A HEAD through `get_opts` also returns the attributes (`head()` drops them).
        let opts = GetOptions { head: true, ..Default::default() };
        let res = self.inner.get_opts(key.path(), opts).await?;
        Ok(meta_of(&res.meta, &res.attributes))
    }

    pub async fn exists(&self, key: &FileKey) -> Result<bool, FileError> {
        match self.inner.head(key.path()).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(FileError::Store(e)),
        }
    }

    /// The content type of a stored object from its first bytes (for backends without
    /// attributes, and for objects written before types were recorded).
    pub async fn detect_type(&self, key: &FileKey, size: u64) -> Result<Detected, FileError> {
        let n = size.min(mime::SNIFF_LEN as u64);
        if n == 0 {
            return Ok(mime::detect(&[]));
        }
        let head = self.inner.get_range(key.path(), 0..n).await?;
        Ok(mime::detect(&head))
    }

    /// Deletes one object. Deleting what is not there succeeds, so a retried clean-up is safe.
    pub async fn delete(&self, key: &FileKey) -> Result<(), FileError> {
        match self.inner.delete(key.path()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(FileError::Store(e)),
        }
    }

    /// Deletes every object under `prefix` (a record's files and thumbnails, or one file's
    /// thumbnails); returns how many were deleted.
    pub async fn delete_prefix(&self, prefix: &KeyPrefix) -> Result<usize, FileError> {
        let locations = self.inner.list(Some(prefix.path())).map_ok(|m| m.location).boxed();
        let deleted: Vec<_> = self.inner.delete_stream(locations).collect().await;
        let mut n = 0;
        for d in deleted {
            match d {
                Ok(_) => n += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(FileError::Store(e)),
            }
        }
        Ok(n)
    }

    /// Every key in the store, sorted (tests and checks: it lists the whole bucket).
    pub async fn list_all(&self) -> Result<Vec<String>, FileError> {
        self.list(None).await
    }

    /// The keys under `prefix` (every key without one), sorted.
    pub async fn list(&self, prefix: Option<&KeyPrefix>) -> Result<Vec<String>, FileError> {
        let metas: Vec<_> = self.inner.list(prefix.map(KeyPrefix::path)).try_collect().await?;
        let mut keys: Vec<String> = metas.into_iter().map(|m| m.location.to_string()).collect();
        keys.sort();
        Ok(keys)
    }

    fn attributes_for(&self, content_type: Option<&str>) -> Attributes {
        let mut attrs = Attributes::new();
        if let (true, Some(ct)) = (self.attributes, content_type) {
            attrs.insert(Attribute::ContentType, ct.to_string().into());
        }
        attrs
    }

    async fn put_multipart<S>(
        &self,
        key: &FileKey,
        head: Vec<Bytes>,
        mut rest: S,
        content_type: Option<&str>,
    ) -> Result<PutInfo, FileError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin,
    {
        let opts = PutMultipartOptions {
            attributes: self.attributes_for(content_type),
            ..Default::default()
        };
        let upload = self.inner.put_multipart_opts(key.path(), opts).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_size);
        let mut size = 0u64;
        for chunk in head {
            size += chunk.len() as u64;
            writer.put(chunk);
        }
        let fed: Result<(), FileError> = async {
            while let Some(chunk) = rest.next().await {
                let chunk = chunk.map_err(FileError::Source)?;
                // Back-pressure: wait for a part to finish before buffering more.
                writer.wait_for_capacity(MAX_PARTS_IN_FLIGHT).await?;
                size += chunk.len() as u64;
                writer.put(chunk);
            }
            Ok(())
        }
        .await;
        if let Err(e) = fed {
            // Best effort: the error that matters is the one that stopped the upload.
            let _ = writer.abort().await;
            return Err(e);
        }
        let res = writer.finish().await?;
        Ok(PutInfo { size, e_tag: res.e_tag, multipart: true })
    }
}

fn meta_of(meta: &object_store::ObjectMeta, attributes: &Attributes) -> FileMeta {
    FileMeta {
        size: meta.size,
        last_modified: meta.last_modified,
        e_tag: meta.e_tag.clone(),
        content_type: attributes.get(&Attribute::ContentType).map(|v| v.to_string()),
    }
}

/// The endpoint URL `object_store` wants and whether it is plain HTTP. For virtual-hosted
/// requests the bucket goes into the host (`https://bucket.host`), as PocketBase's client does.
fn s3_endpoint(cfg: &S3Config) -> Result<(String, bool), FileError> {
    let raw = if cfg.endpoint.contains("://") {
        cfg.endpoint.clone()
    } else {
        format!("https://{}", cfg.endpoint)
    };
    let mut url = url::Url::parse(&raw)
        .map_err(|e| FileError::Config(format!("the S3 endpoint is not a URL: {e}")))?;
    let http = match url.scheme() {
        "http" => true,
        "https" => false,
        other => {
            return Err(FileError::Config(format!("unsupported S3 endpoint scheme {other:?}")))
        }
    };
    if !cfg.force_path_style {
        let host = url.host_str().unwrap_or_default().to_string();
        if !host.starts_with(&format!("{}.", cfg.bucket)) {
            url.set_host(Some(&format!("{}.{host}", cfg.bucket)))
                .map_err(|e| FileError::Config(format!("bad S3 endpoint host: {e}")))?;
        }
    }
    Ok((url.as_str().trim_end_matches('/').to_string(), http))
}

fn file_chunks(file: tokio::fs::File) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    use tokio::io::AsyncReadExt;
    futures_util::stream::try_unfold(file, |mut file| async move {
        let mut buf = bytes::BytesMut::with_capacity(READ_CHUNK);
        let n = file.read_buf(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        Ok(Some((buf.freeze(), file)))
    })
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
