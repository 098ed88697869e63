//! Records' files: uploads checked against their file field (`maxSelect` through the value
//! validation, `maxSize` with PocketBase's 5 MiB default, `mimeTypes` from the detected content,
//! names that must be the record's own), stored before the record commits and removed again if
//! it does not, files a write drops deleted after the commit, downloads (`protected` fields need
//! a file token and the view rule) and file tokens.
//!
//! Must not: know HTTP. Files go through `files::FileStore` only, under checked keys.

use std::collections::HashSet;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::files::cache::CachedFile;
use crate::files::thumbs::{self, ThumbPlan};
use crate::files::{mime, FileKey, FileMeta, FileStore, KeyPrefix, UploadedFile};
use crate::model::collection::{Collection, Schema, TokenKind};
use crate::model::field::{Field, FieldKind};
use crate::model::policy::{Action, Decision, Policy};
use crate::model::request::{AuthRecord, RequestInfo};
use crate::model::value;
use crate::model::ErrorCode;
use crate::service::{Result, Service, ServiceError};
use crate::store::changes::{Action as ChangeAction, Change};
use crate::store::jobs::NewJob;
use crate::store::Row;

/// The job kinds of file clean-up (run by `jobs::builtin_handlers`).
pub const FILES_DELETE: &str = "files.delete";
pub const FILES_SWEEP: &str = "files.sweep";

/// A file clean-up job: retried for a while (a passing storage outage), then dead for an
/// operator to see.
fn file_job(kind: &str, payload: Value) -> NewJob {
    NewJob {
        id: crate::util::random_from(b"abcdefghijklmnopqrstuvwxyz0123456789", 15),
        queue: "default".into(),
        kind: kind.into(),
        payload,
        priority: 0,
        run_at: chrono::Utc::now().timestamp_millis(),
        max_attempts: 10,
        unique_key: None,
    }
}

/// PocketBase's `maxSize` when a file field leaves it at 0 (5 MiB).
pub const DEFAULT_MAX_FILE_SIZE: i64 = 5 << 20;
/// Seconds a file token is valid when the collection does not say (PocketBase's default
/// `fileToken.duration`, probed: 180).
pub const FILE_TOKEN_SECONDS: i64 = 180;

/// The uploads of one write, each with the name it will be stored under.
#[derive(Debug, Default)]
pub(crate) struct Uploads(Vec<(String, String, UploadedFile)>);

/// A file ready to serve: which object, under which name, with which type and metadata.
#[derive(Debug)]
pub struct ServedFile {
    pub key: FileKey,
    /// The name for `Content-Disposition` (`100x100_<name>` for a thumbnail).
    pub name: String,
    pub content_type: String,
    pub meta: FileMeta,
    /// The whole object when the cache holds it (small, hot files); else read it from the store.
    pub bytes: Option<bytes::Bytes>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FileClaims {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "collectionId")]
    collection_id: String,
    exp: i64,
}

impl Uploads {
    /// Puts every upload sent under a file field (`f`, `f+` or `+f`) into `body` as its stored
    /// name, after the names sent as values under the same key (PocketBase merges the two).
    /// Uploads under any other key are dropped: nothing is stored for them.
    pub(crate) fn merge(
        coll: &Collection,
        body: &mut Map<String, Value>,
        files: Vec<UploadedFile>,
    ) -> Uploads {
        let mut out = Vec::new();
        for file in files {
            let key = file.field.clone();
            let base = key.strip_suffix('+').or_else(|| key.strip_prefix('+')).unwrap_or(&key);
            let Some(field) = coll.field(base) else { continue };
            if !matches!(field.kind, FieldKind::File { .. }) {
                continue;
            }
            let name = file.stored_name();
            let mut names = match body.remove(&key) {
                Some(Value::Array(items)) => items,
                Some(Value::String(s)) if s.is_empty() => Vec::new(),
                Some(Value::Null) | None => Vec::new(),
                Some(other) => vec![other],
            };
            names.push(Value::String(name.clone()));
            body.insert(key, Value::Array(names));
            out.push((name, field.name.clone(), file));
        }
        Uploads(out)
    }

    fn get(&self, field: &str, name: &str) -> Option<&UploadedFile> {
        self.0.iter().find(|(n, f, _)| n == name && f == field).map(|(_, _, u)| u)
    }

    /// Checks the file fields `body` sets (modifiers already resolved): every name is either
    /// the record's own already or a new upload of that field, and every new upload kept
    /// passes `maxSize` and `mimeTypes`. Returns the field errors (PocketBase's codes).
    pub(crate) fn check(
        &self,
        coll: &Collection,
        existing: Option<&Row>,
        body: &Map<String, Value>,
    ) -> Map<String, Value> {
        let mut errors = Map::new();
        for f in &coll.fields {
            let FieldKind::File { max_size, mime_types, .. } = &f.kind else { continue };
            let Some(input) = body.get(&f.name) else { continue };
            let names = names_of(&value::coerce(f, input));
            let old = existing.map(|r| names_of_field(r, f)).unwrap_or_default();
            let invalid: Vec<&String> = names
                .iter()
                .filter(|n| !old.contains(*n) && self.get(&f.name, n).is_none())
                .collect();
            if !invalid.is_empty() {
                let list = invalid.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ");
                errors.insert(
                    f.name.clone(),
                    json!({"code": ErrorCode::InvalidFile,
                           "message": format!("Invalid new files: [{list}]."),
                           "params": {"invalidFiles": invalid}}),
                );
                continue;
            }
            let max = if *max_size > 0 { *max_size } else { DEFAULT_MAX_FILE_SIZE };
            for name in &names {
                let Some(upload) = self.get(&f.name, name) else { continue };
                if upload.size > max as u64 {
                    errors.insert(
                        f.name.clone(),
                        json!({"code": ErrorCode::FileSizeLimit,
                               "message": format!("Failed to upload {} - the maximum allowed file size is {max} bytes.", upload.original_name),
                               "params": {"file": upload.original_name, "maxSize": max}}),
                    );
                    break;
                }
                if !mime_types.is_empty() && !mime::matches(upload.detected.mime, mime_types) {
                    errors.insert(
                        f.name.clone(),
                        json!({"code": ErrorCode::InvalidMimeType,
                               "message": format!("{name:?} mime type must be one of: {}.", mime_types.join(", "))}),
                    );
                    break;
                }
            }
        }
        errors
    }

    /// The uploads `row` keeps, with their keys.
    fn kept<'a>(
        &'a self,
        coll: &'a Collection,
        row: &'a Row,
    ) -> impl Iterator<Item = (&'a str, &'a UploadedFile)> + 'a {
        self.0.iter().filter_map(move |(name, field, upload)| {
            let f = coll.field(field)?;
            names_of_field(row, f).contains(name).then_some((name.as_str(), upload))
        })
    }
}

impl Service {
    /// How many bytes a record write to `coll` may add to the usual body limit for its files:
    /// `maxSize × maxSelect` of every file field (PocketBase's rule); 0 for an unknown one.
    pub fn upload_allowance(&self, coll: &str) -> u64 {
        let Ok((_, coll)) = self.collection(coll) else { return 0 };
        coll.fields
            .iter()
            .map(|f| match f.kind {
                FieldKind::File { max_size, max_select, .. } => {
                    let size = if max_size > 0 { max_size } else { DEFAULT_MAX_FILE_SIZE };
                    (size.max(0) as u64).saturating_mul(max_select.max(1) as u64)
                }
                _ => 0,
            })
            .fold(0u64, u64::saturating_add)
    }

    /// The store of uploaded files.
    pub fn files(&self) -> &FileStore {
        &self.files
    }

    /// Stores the uploads `row` keeps under the record's folder; on any failure removes what
    /// was stored and fails. Returns the keys written.
    pub(crate) async fn store_uploads(
        &self,
        coll: &Collection,
        row: &Row,
        uploads: &Uploads,
    ) -> Result<Vec<FileKey>> {
        let id = row.get("id").and_then(Value::as_str).unwrap_or_default();
        let mut written = Vec::new();
        for (name, upload) in uploads.kept(coll, row) {
            let stored = match FileKey::file(&coll.id, id, name) {
                Ok(key) => upload.store(&self.files, &key).await.map(|_| key),
                Err(e) => Err(e),
            };
            match stored {
                Ok(key) => written.push(key),
                Err(e) => {
                    self.remove_now(&written).await;
                    return Err(ServiceError::Internal(format!("storing an upload failed: {e}")));
                }
            }
        }
        Ok(written)
    }

    /// Deletes files written for a write that did not commit.
    pub(crate) async fn remove_now(&self, keys: &[FileKey]) {
        for key in keys {
            if let Err(e) = self.files.delete(key).await {
                tracing::warn!(key = %key, error = %e, "removing an upload of a failed write failed");
            }
        }
    }

    /// The job that deletes, after an update commits, the files of `old` that `new` no longer
    /// holds (with their thumbnails); `None` if it dropped none. It goes into the update's own
    /// unit of work, so the deletion is as durable as the update.
    pub(crate) fn dropped_files_job(
        &self,
        coll: &Collection,
        old: &Row,
        new: &Row,
    ) -> Option<NewJob> {
        let dropped: Vec<String> = coll
            .fields
            .iter()
            .filter(|f| matches!(f.kind, FieldKind::File { .. }))
            .flat_map(|f| {
                let kept = names_of_field(new, f);
                names_of_field(old, f).into_iter().filter(move |n| !kept.contains(n))
            })
            .collect();
        if dropped.is_empty() {
            return None;
        }
        let id = new.get("id").and_then(Value::as_str).unwrap_or_default();
        Some(file_job(FILES_DELETE, json!({"collection": coll.id, "record": id, "names": dropped})))
    }

    /// After a delete committed: queues the removal of the folder of every record it removed
    /// (cascades included) that had file fields. Queued after the commit (the cascade is only
    /// known then): a crash in between leaves the files behind.
    pub(crate) async fn delete_records_files(&self, schema: &Schema, changes: &[Change]) {
        let jobs: Vec<NewJob> = changes
            .iter()
            .filter(|c| c.action == ChangeAction::Delete)
            .filter(|c| {
                schema.by_id(&c.collection_id).is_some_and(|coll| {
                    coll.fields.iter().any(|f| matches!(f.kind, FieldKind::File { .. }))
                })
            })
            .map(|c| {
                file_job(
                    FILES_DELETE,
                    json!({"collection": c.collection_id, "record": c.record_id}),
                )
            })
            .collect();
        self.enqueue_after_commit(jobs).await;
    }

    /// After a collection was truncated or deleted: queues the removal of the folders under
    /// `<collection_id>/` of records that do not exist (a record created since keeps its files).
    pub(crate) async fn sweep_collection_files(&self, collection_id: &str) {
        self.enqueue_after_commit(vec![file_job(
            FILES_SWEEP,
            json!({"collection": collection_id}),
        )])
        .await;
    }

    async fn enqueue_after_commit(&self, jobs: Vec<NewJob>) {
        if jobs.is_empty() {
            return;
        }
        let mut work = self.store.work();
        for job in jobs {
            work.enqueue_job(job);
        }
        match self.store.commit(work).await {
            Ok(_) => self.jobs_ready().notify_one(),
            Err(e) => tracing::warn!(error = %e, "queueing file deletions failed; files stay"),
        }
    }

    /// The `files.delete` job: `{collection, record, names?}`. With `names`, deletes those files
    /// (and thumbnails) unless the record holds them again; without, the record's whole folder
    /// unless the record exists. An error fails the attempt (the queue retries).
    pub async fn run_files_delete(&self, payload: &Value) -> std::result::Result<(), String> {
        let text = |k: &str| payload.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let (collection_id, record_id) = (text("collection"), text("record"));
        let schema = self.schema();
        let coll = schema.by_id(&collection_id).cloned();
        let current = match &coll {
            Some(coll) => self
                .store
                .get_record(&schema, coll, &RequestInfo::default(), &record_id, None)
                .await
                .map_err(|e| e.to_string())?,
            None => None,
        };
        match payload.get("names").and_then(Value::as_array) {
            Some(names) => {
                // NOTE: a concurrent update may have committed the old names again (two
                // writers that both read the old record); the record as stored now decides.
                let still: HashSet<String> = match (&coll, &current) {
                    (Some(coll), Some(row)) => coll
                        .fields
                        .iter()
                        .filter(|f| matches!(f.kind, FieldKind::File { .. }))
                        .flat_map(|f| names_of_field(row, f))
                        .collect(),
                    _ => HashSet::new(),
                };
                for name in names.iter().filter_map(Value::as_str).filter(|n| !still.contains(*n)) {
                    self.delete_file(&collection_id, &record_id, name).await?;
                }
            }
            None if current.is_some() => {}
            None => {
                let prefix =
                    KeyPrefix::record(&collection_id, &record_id).map_err(|e| e.to_string())?;
                self.file_cache.remove_prefix(&prefix);
                self.files.delete_prefix(&prefix).await.map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// The `files.sweep` job: `{collection}`; removes the folders of records that do not exist.
    pub async fn run_files_sweep(&self, payload: &Value) -> std::result::Result<(), String> {
        let collection_id =
            payload.get("collection").and_then(Value::as_str).unwrap_or_default().to_string();
        let prefix = KeyPrefix::collection(&collection_id).map_err(|e| e.to_string())?;
        let keys = self.files.list(Some(&prefix)).await.map_err(|e| e.to_string())?;
        let mut ids: Vec<String> =
            keys.iter().filter_map(|k| k.split('/').nth(1)).map(String::from).collect();
        ids.dedup();
        let schema = self.schema();
        let existing = match schema.by_id(&collection_id) {
            Some(coll) => self.store.existing_ids(coll, &ids).await.map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        for id in ids.iter().filter(|id| !existing.contains(id)) {
            let Ok(prefix) = KeyPrefix::record(&collection_id, id) else { continue };
            self.file_cache.remove_prefix(&prefix);
            self.files.delete_prefix(&prefix).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn delete_file(
        &self,
        collection_id: &str,
        record_id: &str,
        name: &str,
    ) -> std::result::Result<(), String> {
        if let Ok(key) = FileKey::file(collection_id, record_id, name) {
            self.file_cache.remove(&key);
            self.files.delete(&key).await.map_err(|e| e.to_string())?;
        }
        if let Ok(prefix) = KeyPrefix::thumbs(collection_id, record_id, name) {
            self.file_cache.remove_prefix(&prefix);
            self.files.delete_prefix(&prefix).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// `GET /api/files/{collection}/{recordId}/{filename}`: the file (or its `thumb`) of a
    /// record. A `protected` field's files need `token` (a file token) and the collection's view
    /// rule for its record; other files are served to anyone who knows their name, as in
    /// PocketBase. Anything unknown or refused is the same 404.
    pub async fn open_file(
        &self,
        coll: &str,
        record_id: &str,
        filename: &str,
        thumb: Option<&str>,
        token: Option<&str>,
    ) -> Result<ServedFile> {
        let (schema, coll) = self
            .collection(coll)
            .map_err(|_| ServiceError::NotFound("Missing or invalid collection context.".into()))?;
        let key =
            FileKey::file(&coll.id, record_id, filename).map_err(|_| ServiceError::not_found())?;
        let row = self
            .store
            .get_record(&schema, &coll, &RequestInfo::default(), record_id, None)
            .await?
            .ok_or_else(ServiceError::not_found)?;
        let field = coll
            .fields
            .iter()
            .find(|f| {
                matches!(f.kind, FieldKind::File { .. })
                    && names_of_field(&row, f).iter().any(|n| n == filename)
            })
            .ok_or_else(ServiceError::not_found)?;
        let FieldKind::File { protected, thumbs, .. } = &field.kind else {
            return Err(ServiceError::not_found());
        };
        if *protected {
            let auth = match token {
                Some(t) => self.verify_file_token(t).await?,
                None => None,
            };
            let info = RequestInfo { auth, ..RequestInfo::default() };
            let allowed = match Policy::new(&info).decide(&coll, Action::View) {
                Decision::All => true,
                Decision::Denied => false,
                Decision::Filter(rule) => self
                    .store
                    .get_record(&schema, &coll, &info, record_id, Some(&rule))
                    .await?
                    .is_some(),
            };
            if !allowed {
                return Err(ServiceError::not_found());
            }
        }
        let original = self.object_info(&key).await?;
        let served =
            |key: FileKey, name: String, info: &CachedFile, content_type: String| ServedFile {
                key,
                name,
                content_type,
                meta: info.meta.clone(),
                bytes: info.bytes.clone(),
            };
        let plain = || {
            let ct = mime::serving_content_type(&original.content_type, filename).to_string();
            Ok(served(key.clone(), filename.to_string(), &original, ct))
        };
        let (thumb, size) = match thumbs::plan(&key, &original.content_type, thumb, thumbs) {
            ThumbPlan::Original => return plain(),
            ThumbPlan::Refused(why) => {
                tracing::debug!(key = %key, why, "serving the original instead of a thumb");
                return plain();
            }
            ThumbPlan::Thumb(thumb, size) => (thumb, size),
        };
        // A thumb in the cache exists (objects are never rewritten), so no store round trip.
        let info = match self.file_cache.get(&thumb) {
            Some(info) => info,
            None => {
                let made = match self.thumbs.ensure(&key, &thumb, &size).await {
                    Ok(()) => self.object_info(&thumb).await,
                    Err(e) => Err(file_error(e)),
                };
                match made {
                    Ok(info) => info,
                    Err(e) => {
                        tracing::debug!(key = %key, error = %e, "serving the original instead of a thumb");
                        return plain();
                    }
                }
            }
        };
        let name = thumb.file_name().to_string();
        let ct = info.content_type.clone();
        Ok(served(thumb, name, &info, ct))
    }

    /// What the store holds under `key` (metadata, content type, and the bytes of a small
    /// object), from the cache when it is there.
    async fn object_info(&self, key: &FileKey) -> Result<Arc<CachedFile>> {
        if let Some(info) = self.file_cache.get(key) {
            return Ok(info);
        }
        let meta = self.files.head(key).await.map_err(file_error)?;
        let (content_type, bytes) = if self.file_cache.keeps_bytes(meta.size) {
            let bytes = self.files.read_all(key).await.map_err(file_error)?;
            let ct = match &meta.content_type {
                Some(ct) => ct.clone(),
                None => mime::detect(&bytes).mime.to_string(),
            };
            // Objects are never rewritten; a size that differs from the head is a store that
            // broke that promise, so the bytes are not kept.
            (ct, (bytes.len() as u64 == meta.size).then_some(bytes))
        } else {
            (self.content_type_of(key, &meta).await?, None)
        };
        let info = Arc::new(CachedFile { meta, content_type, bytes });
        self.file_cache.insert(key, info.clone());
        Ok(info)
    }

    async fn content_type_of(&self, key: &FileKey, meta: &FileMeta) -> Result<String> {
        match &meta.content_type {
            Some(ct) => Ok(ct.clone()),
            None => {
                Ok(self.files.detect_type(key, meta.size).await.map_err(file_error)?.mime.into())
            }
        }
    }

    /// `POST /api/files/token`: a short-lived token for the caller's protected files (any
    /// auth record, superusers included); 401 for guests.
    pub fn file_token(&self, info: &RequestInfo) -> Result<String> {
        let Some(auth) = &info.auth else {
            return Err(ServiceError::Unauthorized(
                "The request requires valid record authorization token.".into(),
            ));
        };
        let claims = FileClaims {
            id: auth.record.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
            kind: "file".into(),
            collection_id: auth.collection.id.clone(),
            exp: chrono::Utc::now().timestamp()
                + auth
                    .collection
                    .auth
                    .as_ref()
                    .map_or(FILE_TOKEN_SECONDS, |a| a.tokens.get(TokenKind::File).duration),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&file_signing_key(&auth.collection, &auth.record)),
        )
        .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// The auth record a file token names, if it is valid (signature, expiry, `type: file`).
    async fn verify_file_token(&self, token: &str) -> Result<Option<AuthRecord>> {
        self.verify_token(token, "file", file_signing_key).await
    }
}

/// File tokens are signed like auth tokens, with the record's `tokenKey` (a password change
/// revokes them) and the collection's `fileToken` secret (changing it revokes every file token;
/// being another secret than the auth token's, neither kind can stand in for the other even if
/// the `type` claim were ignored).
fn file_signing_key(coll: &Collection, record: &Row) -> Vec<u8> {
    let token_key = record.get("tokenKey").and_then(Value::as_str).unwrap_or_default();
    let secret = coll
        .auth
        .as_ref()
        .map(|a| a.tokens.get(TokenKind::File).secret.as_str())
        .unwrap_or_default();
    format!("{token_key}{secret}").into_bytes()
}

fn file_error(e: crate::files::FileError) -> ServiceError {
    match e {
        crate::files::FileError::NotFound => ServiceError::not_found(),
        e => ServiceError::Internal(format!("file storage: {e}")),
    }
}

/// The names a file field holds in `row`.
fn names_of_field(row: &Row, f: &Field) -> Vec<String> {
    row.get(&f.name).map(names_of).unwrap_or_default()
}

fn names_of(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) if !s.is_empty() => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}
