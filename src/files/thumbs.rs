//! Thumbnails as PocketBase makes them (`tools/filesystem/filesystem.go` `CreateThumb`,
//! `apis/file.go`): `?thumb=` specs (`WxH` crop from the center, `WxHt` from the top, `WxHb` from
//! the bottom, `WxHf` fit inside, `0xH`/`Wx0` keep the aspect), allowed only when the field lists
//! them or they are PocketBase's default `100x100` (for every file field, not only avatars);
//! rendering with the `image` crate (first frame, EXIF orientation applied, linear filter,
//! upscaling allowed except for `f`), encoded as JPEG or GIF for those sources and PNG for the
//! rest (WebP included, as PocketBase does). Sources are refused by their header dimensions
//! before any pixel is decoded, and the decoder runs under `image::Limits`. `Thumbnailer` renders
//! on `spawn_blocking`, at most a few at once, and once per key however many requests race.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use tokio::sync::{OnceCell, Semaphore};

use crate::files::{FileError, FileKey, FileStore};

/// The sizes PocketBase serves for any file field, declared or not (`defaultThumbSizes`).
pub const DEFAULT_THUMB_SIZES: &[&str] = &["100x100"];

/// How a thumbnail fits its box.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ThumbMode {
    /// `WxH`: fill the box, crop what overflows around the center.
    Center,
    /// `WxHt`: fill, keep the top.
    Top,
    /// `WxHb`: fill, keep the bottom.
    Bottom,
    /// `WxHf`: fit inside the box, no crop, never larger than the source.
    Fit,
}

/// A parsed `?thumb=` spec; `spec()` is the text as requested, which names the stored thumb.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ThumbSize {
    spec: String,
    pub width: u32,
    pub height: u32,
    pub mode: ThumbMode,
}

impl ThumbSize {
    /// Parses `^(\d+)x(\d+)(t|b|f)?$` with at least one side non-zero (PocketBase's
    /// `ThumbSizeRegex` plus its `0x0` check). Numbers beyond `u32` are refused (Go reads them as 0).
    pub fn parse(spec: &str) -> Option<ThumbSize> {
        let (w, rest) = spec.split_once('x')?;
        let (h, mode) = match rest.as_bytes().last()? {
            b't' => (&rest[..rest.len() - 1], ThumbMode::Top),
            b'b' => (&rest[..rest.len() - 1], ThumbMode::Bottom),
            b'f' => (&rest[..rest.len() - 1], ThumbMode::Fit),
            _ => (rest, ThumbMode::Center),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(w) || !digits(h) {
            return None;
        }
        let (width, height) = (w.parse::<u32>().ok()?, h.parse::<u32>().ok()?);
        if width == 0 && height == 0 {
            return None;
        }
        Some(ThumbSize { spec: spec.to_string(), width, height, mode })
    }

    pub fn spec(&self) -> &str {
        &self.spec
    }
}

/// The size to serve for `?thumb=requested`, if the field allows it: PocketBase compares the
/// raw text against its defaults and the field's `thumbs` list, then parses it.
pub fn allowed(requested: &str, field_thumbs: &[String]) -> Option<ThumbSize> {
    let listed =
        DEFAULT_THUMB_SIZES.contains(&requested) || field_thumbs.iter().any(|t| t == requested);
    if listed {
        ThumbSize::parse(requested)
    } else {
        None
    }
}

/// Guards against decompression bombs and absurd thumbnail sizes.
#[derive(Clone, Copy, Debug)]
pub struct ThumbLimits {
    /// Refuse sources wider or taller than this (read from the header).
    pub max_source_side: u32,
    /// Refuse sources with more pixels than this (read from the header).
    pub max_source_pixels: u64,
    /// The decoder's allocation cap.
    pub max_alloc: u64,
    /// Refuse thumbnails wider or taller than this.
    pub max_thumb_side: u32,
    /// Do not even read sources larger than this (they are read whole into memory).
    pub max_source_bytes: u64,
}

impl Default for ThumbLimits {
    fn default() -> Self {
        ThumbLimits {
            max_source_side: 16_384,
            // 50 megapixels: a 8660×5774 photo. RGBA at that size is 200 MB of memory.
            max_source_pixels: 50_000_000,
            max_alloc: 512 * 1024 * 1024,
            max_thumb_side: 4_096,
            max_source_bytes: 64 << 20,
        }
    }
}

/// A rendered thumbnail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thumb {
    pub bytes: Bytes,
    pub content_type: &'static str,
}

/// Renders one thumbnail. CPU-bound: call it from `spawn_blocking` (see [`render_blocking`]).
pub fn render(source: &[u8], size: &ThumbSize, limits: &ThumbLimits) -> Result<Thumb, FileError> {
    let bad = |e: image::ImageError| FileError::Image(e.to_string());
    if size.width > limits.max_thumb_side || size.height > limits.max_thumb_side {
        return Err(FileError::Image(format!("thumb size {} is too large", size.spec)));
    }
    let reader = || -> Result<ImageReader<Cursor<&[u8]>>, FileError> {
        let r =
            ImageReader::new(Cursor::new(source)).with_guessed_format().map_err(FileError::Io)?;
        match r.format() {
            Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP) => {
                Ok(r)
            }
            other => Err(FileError::Image(format!("unsupported image format {other:?}"))),
        }
    };
    // The header alone says how big the decoded image would be: refuse bombs before decoding.
    let (w, h) = reader()?.into_dimensions().map_err(bad)?;
    if w == 0 || h == 0 {
        return Err(FileError::Image("the image is empty".into()));
    }
    if w > limits.max_source_side
        || h > limits.max_source_side
        || u64::from(w) * u64::from(h) > limits.max_source_pixels
    {
        return Err(FileError::Image(format!("the image is too large ({w}x{h})")));
    }
    let mut reader = reader()?;
    let format = reader.format();
    let mut decoder_limits = Limits::default();
    decoder_limits.max_image_width = Some(limits.max_source_side);
    decoder_limits.max_image_height = Some(limits.max_source_side);
    decoder_limits.max_alloc = Some(limits.max_alloc);
    reader.limits(decoder_limits);
    let mut decoder = reader.into_decoder().map_err(bad)?;
    // `from_decoder` does not charge the decoded buffer against the limits; do it here.
    if decoder.total_bytes() > limits.max_alloc {
        return Err(FileError::Image("decoding the image would need too much memory".into()));
    }
    let orientation = decoder.orientation().map_err(bad)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(bad)?;
    img.apply_orientation(orientation);

    let out = resize(&img, size);
    encode(&out, format)
}

/// [`render`] on the blocking pool, so the async threads keep serving.
pub async fn render_blocking(
    source: Bytes,
    size: ThumbSize,
    limits: ThumbLimits,
) -> Result<Thumb, FileError> {
    tokio::task::spawn_blocking(move || render(&source, &size, &limits))
        .await
        .map_err(|e| FileError::Task(e.to_string()))?
}

/// imaging's `Resize`, `Fit` and `Fill` with the linear (triangle) filter.
fn resize(img: &DynamicImage, size: &ThumbSize) -> DynamicImage {
    let (sw, sh) = (img.width(), img.height());
    let (tw, th) = (size.width, size.height);
    let filter = FilterType::Triangle;
    if tw == 0 || th == 0 {
        let (w, h) = keep_aspect(sw, sh, tw, th);
        return img.resize_exact(w, h, filter);
    }
    if size.mode == ThumbMode::Fit {
        if sw <= tw && sh <= th {
            return img.clone();
        }
        let src_aspect = f64::from(sw) / f64::from(sh);
        let box_aspect = f64::from(tw) / f64::from(th);
        let (w, h) = if src_aspect > box_aspect {
            (tw, ((f64::from(tw) / src_aspect).round() as u32).max(1))
        } else {
            (((f64::from(th) * src_aspect).round() as u32).max(1), th)
        };
        return img.resize_exact(w, h, filter);
    }
    if (sw, sh) == (tw, th) {
        return img.clone();
    }
    // Scale so the box is covered, then crop at the anchor.
    let (w, h) = if u64::from(sw) * u64::from(th) < u64::from(tw) * u64::from(sh) {
        keep_aspect(sw, sh, tw, 0)
    } else {
        keep_aspect(sw, sh, 0, th)
    };
    let scaled = img.resize_exact(w.max(tw), h.max(th), filter);
    let x = (scaled.width() - tw) / 2;
    let y = match size.mode {
        ThumbMode::Top => 0,
        ThumbMode::Bottom => scaled.height() - th,
        _ => (scaled.height() - th) / 2,
    };
    scaled.crop_imm(x, y, tw, th)
}

/// The missing side of `tw`×`th` (one of them 0) from the source's aspect, at least 1.
fn keep_aspect(sw: u32, sh: u32, tw: u32, th: u32) -> (u32, u32) {
    if tw == 0 {
        let w = (f64::from(sw) * f64::from(th) / f64::from(sh)).round() as u32;
        (w.max(1), th)
    } else {
        let h = (f64::from(sh) * f64::from(tw) / f64::from(sw)).round() as u32;
        (tw, h.max(1))
    }
}

fn encode(img: &DynamicImage, source: Option<ImageFormat>) -> Result<Thumb, FileError> {
    let bad = |e: image::ImageError| FileError::Image(e.to_string());
    let mut out = Cursor::new(Vec::new());
    let content_type = match source {
        Some(ImageFormat::Jpeg) => {
            // imaging's default JPEG quality.
            let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95);
            img.to_rgb8().write_with_encoder(enc).map_err(bad)?;
            "image/jpeg"
        }
        Some(ImageFormat::Gif) => {
            let mut enc = image::codecs::gif::GifEncoder::new(&mut out);
            enc.encode_frame(image::Frame::new(img.to_rgba8())).map_err(bad)?;
            drop(enc);
            "image/gif"
        }
        // PNG, and WebP: PocketBase writes WebP thumbnails as PNG (`image/png`).
        _ => {
            img.write_to(&mut out, ImageFormat::Png).map_err(bad)?;
            "image/png"
        }
    };
    Ok(Thumb { bytes: Bytes::from(out.into_inner()), content_type })
}

/// Creates thumbnails in the store, once per key: concurrent first requests for the same thumb
/// wait for one rendering, and at most `workers` render at a time (PocketBase: CPUs + 2, a wait
/// of at most 60 s for a slot).
pub struct Thumbnailer {
    store: FileStore,
    limits: ThumbLimits,
    permits: Semaphore,
    max_wait: Duration,
    flights: SingleFlight<String, Result<(), String>>,
}

impl Thumbnailer {
    pub fn new(store: FileStore, limits: ThumbLimits) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Thumbnailer {
            store,
            limits,
            permits: Semaphore::new(cpus + 2),
            max_wait: Duration::from_secs(60),
            flights: SingleFlight::default(),
        }
    }

    /// Makes sure `thumb` exists, rendering it from `original` if needed. On an error the caller
    /// serves the original instead, as PocketBase does; the next request tries again.
    pub async fn ensure(
        &self,
        original: &FileKey,
        thumb: &FileKey,
        size: &ThumbSize,
    ) -> Result<(), FileError> {
        if self.store.exists(thumb).await? {
            return Ok(());
        }
        let res = self
            .flights
            .run(thumb.as_str().to_string(), || async {
                self.create(original, thumb, size).await.map_err(|e| e.to_string())
            })
            .await;
        res.map_err(FileError::Image)
    }

    async fn create(
        &self,
        original: &FileKey,
        thumb: &FileKey,
        size: &ThumbSize,
    ) -> Result<(), FileError> {
        // A request that lost the race to an earlier flight finds the thumb already there.
        if self.store.exists(thumb).await? {
            return Ok(());
        }
        let _permit = tokio::time::timeout(self.max_wait, self.permits.acquire())
            .await
            .map_err(|_| FileError::Task("timed out waiting for a thumbnail worker".into()))?
            .map_err(|e| FileError::Task(e.to_string()))?;
        let bytes = self.store.head(original).await?.size;
        if bytes > self.limits.max_source_bytes {
            return Err(FileError::Image(format!("the image is too large ({bytes} bytes)")));
        }
        let source = self.store.read_all(original).await?;
        let rendered = render_blocking(source, size.clone(), self.limits).await?;
        self.store.put_bytes(thumb, rendered.bytes, Some(rendered.content_type)).await?;
        Ok(())
    }
}

/// What a download sends: the file itself or one of its thumbnails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    pub key: FileKey,
    /// The name for `Content-Disposition` (`100x100_<name>` for a thumb, as PocketBase).
    pub name: String,
    /// Why a requested thumb is not served (for the log; the client gets the original).
    pub thumb_error: Option<String>,
}

/// Which thumbnail a `?thumb=` request asks for, decided without touching the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ThumbPlan {
    /// No thumb asked for: serve the original.
    Original,
    /// A thumb that may not be served (size not allowed, format not thumbnailable): serve the
    /// original; the text says why (for the log).
    Refused(String),
    /// This thumb, created on first use.
    Thumb(FileKey, ThumbSize),
}

/// PocketBase's choice for `GET /api/files/…?thumb=`: a thumb when the size is allowed for the
/// field and the original is a thumbnailable image (by its stored or detected type).
pub fn plan(
    original: &FileKey,
    original_type: &str,
    requested: Option<&str>,
    field_thumbs: &[String],
) -> ThumbPlan {
    let Some(requested) = requested.filter(|r| !r.is_empty()) else { return ThumbPlan::Original };
    let unsupported = || {
        ThumbPlan::Refused(format!(
            "the thumb size {requested:?} or the original file format are not supported"
        ))
    };
    let Some(size) = allowed(requested, field_thumbs) else { return unsupported() };
    if !crate::files::mime::is_thumbable(original_type) {
        return unsupported();
    }
    match original.thumb_of(size.spec()) {
        Ok(k) => ThumbPlan::Thumb(k, size),
        Err(e) => ThumbPlan::Refused(e.to_string()),
    }
}

impl Thumbnailer {
    /// [`plan`] then [`Thumbnailer::ensure`]: the thumb to serve, or the original when none
    /// may be served or creating it fails.
    pub async fn choose(
        &self,
        original: &FileKey,
        original_type: &str,
        requested: Option<&str>,
        field_thumbs: &[String],
    ) -> Served {
        let plain = |thumb_error: Option<String>| Served {
            key: original.clone(),
            name: original.file_name().to_string(),
            thumb_error,
        };
        match plan(original, original_type, requested, field_thumbs) {
            ThumbPlan::Original => plain(None),
            ThumbPlan::Refused(why) => plain(Some(why)),
            ThumbPlan::Thumb(thumb, size) => match self.ensure(original, &thumb, &size).await {
                Ok(()) => {
                    Served { name: thumb.file_name().to_string(), key: thumb, thumb_error: None }
                }
                Err(e) => plain(Some(e.to_string())),
            },
        }
    }
}

/// Runs one future per key at a time; callers that arrive while it runs share its result. The
/// entry is dropped when the flight ends, so a later call runs again (and finds, say, the thumb
/// already stored). If the running caller is cancelled, a waiting one takes over.
pub struct SingleFlight<K, V> {
    inflight: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K, V> Default for SingleFlight<K, V> {
    fn default() -> Self {
        SingleFlight { inflight: Mutex::new(HashMap::new()) }
    }
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone> SingleFlight<K, V> {
    pub async fn run<F, Fut>(&self, key: K, f: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = V>,
    {
        let cell = {
            let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(key.clone()).or_default().clone()
        };
        let value = cell.get_or_init(f).await.clone();
        let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            map.remove(&key);
        }
        value
    }

    /// Flights running now.
    pub fn len(&self) -> usize {
        self.inflight.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[path = "thumbs_tests.rs"]
mod tests;
