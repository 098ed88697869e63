//! Thumbnail tests: spec parsing and the allow-list, PocketBase's crop semantics on synthetic
//! images, output formats, decompression bombs refused from the header, and the single flight.

use std::sync::atomic::{AtomicUsize, Ordering};

use image::{Rgba, RgbaImage};

use super::*;

const RED: Rgba<u8> = Rgba([255, 0, 0, 255]);
const BLUE: Rgba<u8> = Rgba([0, 0, 255, 255]);

/// `w`×`h`, the top half red and the bottom half blue.
fn top_red(w: u32, h: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |_, y| if y < h / 2 { RED } else { BLUE })
}

fn encoded(img: &RgbaImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    match format {
        ImageFormat::Jpeg => DynamicImage::ImageRgba8(img.clone())
            .to_rgb8()
            .write_to(&mut out, format)
            .expect("encode"),
        ImageFormat::WebP => {
            let enc = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
            img.write_with_encoder(enc).expect("webp")
        }
        _ => img.write_to(&mut out, format).expect("encode"),
    }
    out.into_inner()
}

fn size(spec: &str) -> ThumbSize {
    ThumbSize::parse(spec).expect("spec")
}

fn thumb(source: &[u8], spec: &str) -> (Thumb, DynamicImage) {
    let t = render(source, &size(spec), &ThumbLimits::default()).expect("render");
    let img = image::load_from_memory(&t.bytes).expect("decode thumb");
    (t, img)
}

fn near(px: Rgba<u8>, want: Rgba<u8>) -> bool {
    px.0.iter().zip(want.0.iter()).all(|(a, b)| a.abs_diff(*b) < 40)
}

#[test]
fn specs_parse_like_pocketbase() {
    let ok = [
        ("100x100", 100, 100, ThumbMode::Center),
        ("100x300t", 100, 300, ThumbMode::Top),
        ("100x300b", 100, 300, ThumbMode::Bottom),
        ("100x300f", 100, 300, ThumbMode::Fit),
        ("0x300", 0, 300, ThumbMode::Center),
        ("100x0", 100, 0, ThumbMode::Center),
        ("0x50t", 0, 50, ThumbMode::Top),
        ("007x8", 7, 8, ThumbMode::Center),
    ];
    for (spec, w, h, mode) in ok {
        let s = size(spec);
        assert_eq!((s.width, s.height, s.mode, s.spec()), (w, h, mode, spec), "{spec}");
    }
    let bad = [
        "",
        "x",
        "100",
        "100x",
        "x100",
        "0x0",
        "0x0f",
        "100X100",
        "100x100c",
        "100x100tt",
        " 1x1",
        "1x1 ",
        "-1x5",
        "1.5x2",
        "1x2\0",
        "../1x1",
        "99999999999x1",
        "1x1/..",
        "１x1",
    ];
    for spec in bad {
        assert!(ThumbSize::parse(spec).is_none(), "{spec:?} accepted");
    }
}

/// Only listed sizes, plus `100x100` for any field (probed: `30x30` on a field listing `50x50`
/// serves the original; `100x100` is rendered).
#[test]
fn only_declared_sizes_and_the_default() {
    let field = vec!["50x50".to_string(), "20x0".to_string(), "0x0".to_string()];
    assert!(allowed("50x50", &field).is_some());
    assert!(allowed("20x0", &field).is_some());
    assert!(allowed("100x100", &field).is_some());
    assert!(allowed("100x100", &[]).is_some());
    assert!(allowed("30x30", &field).is_none());
    assert!(allowed("50x50t", &field).is_none());
    assert!(allowed("0x0", &field).is_none(), "listed but invalid");
}

#[test]
fn sizes_match_pocketbase_probes() {
    // Probed on 0.40.6 with a 64x32 source: 50x50 → 50x50, 100x100 → 100x100 (upscaled),
    // 20x0 → 20x10.
    let src = encoded(&top_red(64, 32), ImageFormat::Png);
    for (spec, dims) in [
        ("50x50", (50, 50)),
        ("100x100", (100, 100)),
        ("20x0", (20, 10)),
        ("0x20", (40, 20)),
        ("50x50f", (50, 25)),
        ("100x100f", (64, 32)),
        ("10x40t", (10, 40)),
    ] {
        let (_, img) = thumb(&src, spec);
        assert_eq!((img.width(), img.height()), dims, "{spec}");
    }
}

#[test]
fn crops_keep_the_center_top_or_bottom() {
    let src = encoded(&top_red(20, 40), ImageFormat::Png);
    let (_, top) = thumb(&src, "10x10t");
    let (_, bottom) = thumb(&src, "10x10b");
    let (_, center) = thumb(&src, "10x10");
    let px = |img: &DynamicImage, x, y| img.to_rgba8().get_pixel(x, y).to_owned();
    assert!(near(px(&top, 0, 0), RED) && near(px(&top, 9, 9), RED), "top keeps the red top");
    assert!(near(px(&bottom, 0, 0), BLUE) && near(px(&bottom, 9, 9), BLUE), "bottom keeps blue");
    assert!(near(px(&center, 5, 0), RED) && near(px(&center, 5, 9), BLUE), "center has both");
}

#[test]
fn output_format_follows_the_source_and_webp_becomes_png() {
    let img = top_red(32, 32);
    for (format, ct, out) in [
        (ImageFormat::Png, "image/png", ImageFormat::Png),
        (ImageFormat::Jpeg, "image/jpeg", ImageFormat::Jpeg),
        (ImageFormat::Gif, "image/gif", ImageFormat::Gif),
        (ImageFormat::WebP, "image/png", ImageFormat::Png),
    ] {
        let (t, _) = thumb(&encoded(&img, format), "16x16");
        assert_eq!(t.content_type, ct, "{format:?}");
        assert_eq!(image::guess_format(&t.bytes).expect("format"), out, "{format:?}");
    }
}

/// A PNG whose header claims `w`×`h` with almost no data behind it.
fn png_header_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&ihdr);
    out.extend_from_slice(&crc32fast::hash(&ihdr).to_be_bytes());
    // An empty IDAT and the end: the decoder reads up to the first data chunk for its header.
    for chunk in [&b"IDAT"[..], b"IEND"] {
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(&crc32fast::hash(chunk).to_be_bytes());
    }
    out
}

#[test]
fn decompression_bombs_are_refused_from_the_header() {
    for (w, h) in [(100_000, 100_000), (20_000, 10), (10_000, 10_000), (u32::MAX >> 1, 1)] {
        let bomb = png_header_claiming(w, h);
        let t = std::time::Instant::now();
        let res = render(&bomb, &size("100x100"), &ThumbLimits::default());
        // Refused from the header: by our pixel/side limits, or by the reader's memory limit.
        assert!(
            matches!(res, Err(FileError::Image(ref m)) if m.contains("too large") || m.contains("limit")),
            "{w}x{h}: {res:?}"
        );
        assert!(t.elapsed() < Duration::from_secs(1));
    }
    // A real (small) image over tightened limits is refused too, and the alloc cap holds.
    let src = encoded(&top_red(64, 64), ImageFormat::Png);
    let tight = ThumbLimits { max_source_pixels: 1000, ..ThumbLimits::default() };
    assert!(render(&src, &size("10x10"), &tight).is_err());
    let no_mem = ThumbLimits { max_alloc: 1024, ..ThumbLimits::default() };
    assert!(render(&src, &size("10x10"), &no_mem).is_err());
    let huge_thumb = ThumbSize::parse("100000x100000").expect("parses");
    assert!(render(&src, &huge_thumb, &ThumbLimits::default()).is_err());
}

#[test]
fn non_images_and_broken_images_are_errors_not_panics() {
    let mut truncated = encoded(&top_red(64, 64), ImageFormat::Png);
    truncated.truncate(truncated.len() / 2);
    let bmp = b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0".to_vec();
    for src in [&b"not an image"[..], b"", b"\x89PNG\r\n\x1a\n", &truncated, &bmp, b"GIF89a"] {
        assert!(
            render(src, &size("10x10"), &ThumbLimits::default()).is_err(),
            "{:?}",
            &src[..4.min(src.len())]
        );
    }
}

#[tokio::test]
async fn single_flight_runs_once_per_key() {
    let flights: Arc<SingleFlight<String, usize>> = Arc::new(SingleFlight::default());
    let runs = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (flights, runs) = (flights.clone(), runs.clone());
        tasks.push(tokio::spawn(async move {
            flights
                .run("k".to_string(), || async {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    runs.fetch_add(1, Ordering::SeqCst) + 1
                })
                .await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), 1, "every caller shares the one result");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(flights.is_empty(), "finished flights are forgotten");
    // A later call runs again.
    assert_eq!(flights.run("k".to_string(), || async { 7 }).await, 7);
}

#[tokio::test]
async fn single_flight_survives_a_cancelled_leader() {
    let flights: Arc<SingleFlight<String, u8>> = Arc::new(SingleFlight::default());
    let leader = {
        let flights = flights.clone();
        tokio::spawn(async move {
            flights
                .run("k".into(), || async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    1
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let follower = {
        let flights = flights.clone();
        tokio::spawn(async move { flights.run("k".into(), || async { 2 }).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    leader.abort();
    let got = tokio::time::timeout(Duration::from_secs(5), follower).await.expect("no hang");
    assert_eq!(got.expect("task"), 2, "the follower took over");
}

#[tokio::test]
async fn thumbnailer_stores_the_thumb_once_and_next_to_the_original() {
    let store = FileStore::new(Arc::new(object_store::memory::InMemory::new()), true);
    let original = FileKey::file("c", "r", "pic_0123456789.jpg").expect("key");
    let src = encoded(&top_red(64, 32), ImageFormat::Jpeg);
    store.put_bytes(&original, Bytes::from(src), Some("image/jpeg")).await.expect("put");
    let spec = size("50x50");
    let tkey = FileKey::thumb("c", "r", "pic_0123456789.jpg", spec.spec()).expect("thumb key");
    let thumbs = Arc::new(Thumbnailer::new(store.clone(), ThumbLimits::default()));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (thumbs, original, tkey, spec) =
            (thumbs.clone(), original.clone(), tkey.clone(), spec.clone());
        tasks.push(tokio::spawn(async move { thumbs.ensure(&original, &tkey, &spec).await }));
    }
    for t in tasks {
        t.await.expect("task").expect("ensure");
    }
    assert_eq!(tkey.as_str(), "c/r/thumbs_pic_0123456789.jpg/50x50_pic_0123456789.jpg");
    let meta = store.head(&tkey).await.expect("thumb stored");
    assert_eq!(meta.content_type.as_deref(), Some("image/jpeg"));
    let bytes = store.read_all(&tkey).await.expect("read");
    let img = image::load_from_memory(&bytes).expect("decode");
    assert_eq!((img.width(), img.height()), (50, 50));

    // A source that is not an image fails cleanly (the caller serves the original).
    let text = FileKey::file("c", "r", "notes_0123456789.png").expect("key");
    store.put_bytes(&text, Bytes::from_static(b"not a png"), None).await.expect("put");
    let tk = FileKey::thumb("c", "r", "notes_0123456789.png", "100x100").expect("key");
    assert!(thumbs.ensure(&text, &tk, &size("100x100")).await.is_err());
    assert!(!store.exists(&tk).await.expect("exists"));

    // A source over the byte limit is not even read.
    let small = ThumbLimits { max_source_bytes: 100, ..ThumbLimits::default() };
    let picky = Thumbnailer::new(store.clone(), small);
    let tk = FileKey::thumb("c", "r", "pic_0123456789.jpg", "100x100").expect("key");
    let res = picky.ensure(&original, &tk, &size("100x100")).await;
    assert!(matches!(res, Err(FileError::Image(ref m)) if m.contains("bytes")), "{res:?}");
}

#[tokio::test]
async fn choose_serves_the_thumb_only_when_pocketbase_would() {
    let store = FileStore::new(Arc::new(object_store::memory::InMemory::new()), true);
    let thumbs = Thumbnailer::new(store.clone(), ThumbLimits::default());
    let png = FileKey::file("c", "r", "pic_0123456789.png").expect("key");
    store
        .put_bytes(&png, Bytes::from(encoded(&top_red(64, 32), ImageFormat::Png)), None)
        .await
        .expect("put");
    let field = vec!["50x50".to_string()];
    let served = thumbs.choose(&png, "image/png", Some("50x50"), &field).await;
    assert_eq!(served.key.as_str(), "c/r/thumbs_pic_0123456789.png/50x50_pic_0123456789.png");
    assert_eq!((served.name.as_str(), served.thumb_error), ("50x50_pic_0123456789.png", None));
    let served = thumbs.choose(&png, "image/png", Some("100x100"), &field).await;
    assert_eq!(served.name, "100x100_pic_0123456789.png", "the default size");
    for (ct, requested) in [
        ("image/png", Some("30x30")),
        ("image/png", Some("../../x")),
        ("image/svg+xml", Some("50x50")),
        ("application/pdf", Some("100x100")),
    ] {
        let served = thumbs.choose(&png, ct, requested, &field).await;
        assert_eq!(served.key, png, "{ct} {requested:?}");
        assert!(served.thumb_error.is_some());
    }
    let served = thumbs.choose(&png, "image/png", None, &field).await;
    assert_eq!((served.key, served.thumb_error), (png.clone(), None));
    // A broken image falls back to the original.
    let broken = FileKey::file("c", "r", "broken_0123456789.png").expect("key");
    store.put_bytes(&broken, Bytes::from_static(b"\x89PNG\r\n\x1a\nxx"), None).await.expect("put");
    let served = thumbs.choose(&broken, "image/png", Some("50x50"), &field).await;
    assert_eq!(served.key, broken);
    assert!(served.thumb_error.is_some());
}
