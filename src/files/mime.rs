//! Content types from the bytes, never from the client's header: `infer`'s magic numbers for
//! binary formats, then a few text formats PocketBase's detector (gabriel-vasile/mimetype)
//! also names (SVG, HTML, XML, JSON, CSV), then `text/plain; charset=utf-8` for text and
//! `application/octet-stream` for the rest. The names follow that detector (`audio/wav`, not
//! `audio/x-wav`), because a field's `mimeTypes` list is written against them. Also the
//! content-type tables PocketBase's file server uses (what may be thumbnailed, what is served
//! inline, extensions whose type is forced). Pure.

/// How many leading bytes detection looks at (mimetype's default read limit).
pub const SNIFF_LEN: usize = 3072;

pub const OCTET_STREAM: &str = "application/octet-stream";
pub const TEXT_PLAIN_UTF8: &str = "text/plain; charset=utf-8";

/// A detected content type and the extension (with its dot, or empty) it implies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detected {
    pub mime: &'static str,
    pub extension: &'static str,
}

/// Detects the type of a file from its first bytes (pass up to [`SNIFF_LEN`]).
pub fn detect(head: &[u8]) -> Detected {
    let head = &head[..head.len().min(SNIFF_LEN)];
    if head.is_empty() {
        // mimetype calls an empty input plain text, without a charset (probed: a 0-byte upload
        // is stored as `text/plain`, extension `.txt`).
        return Detected { mime: "text/plain", extension: ".txt" };
    }
    if let Some(kind) = infer::get(head) {
        if let Some(d) = from_infer(kind.mime_type()) {
            return d;
        }
    }
    if looks_like_text(head) {
        return detect_text(head);
    }
    Detected { mime: OCTET_STREAM, extension: "" }
}

/// Whether a detected type satisfies a field's `mimeTypes` list, as PocketBase's
/// `UploadedFileMimeType` does with mimetype's `Is`: parameters (`; charset=…`) are ignored on both
/// sides and the comparison is case-insensitive, otherwise exact. There is no family matching:
/// `image/*` matches nothing and `image/jpg` does not accept a JPEG, which is `image/jpeg`
/// (probed on 0.40.6: a real JPEG into `mimeTypes: ["image/jpg"]` is refused).
pub fn matches(detected: &str, allowed: &[String]) -> bool {
    let found = essence(detected);
    allowed.iter().any(|a| essence(a) == found)
}

/// Image types PocketBase makes thumbnails of (`apis/file.go`, `imageContentTypes`).
pub fn is_thumbable(content_type: &str) -> bool {
    matches!(
        essence(content_type).as_str(),
        "image/png" | "image/jpg" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

/// Types served with `Content-Disposition: inline` (`filesystem.go`, `inlineServeContentTypes`);
/// everything else is an attachment, so an uploaded HTML or SVG file never renders on our origin.
pub fn serves_inline(content_type: &str) -> bool {
    const INLINE: &[&str] = &[
        "image/png",
        "image/jpg",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/x-icon",
        "image/bmp",
        "video/webm",
        "video/mp4",
        "video/3gpp",
        "video/quicktime",
        "video/x-ms-wmv",
        "audio/basic",
        "audio/aiff",
        "audio/mpeg",
        "audio/midi",
        "audio/mp3",
        "audio/wave",
        "audio/wav",
        "audio/x-wav",
        "audio/x-mpeg",
        "audio/x-m4a",
        "audio/aac",
        "application/pdf",
        "application/x-pdf",
    ];
    // PocketBase compares the whole stored type, so `text/plain; charset=utf-8` is no match;
    // none of the inline types carries parameters.
    INLINE.contains(&content_type)
}

/// The `Content-Type` to send for a stored file: the detected type, except for the extensions
/// PocketBase forces (`manualExtensionContentTypes`: `.svg`, `.css`, `.js`, `.mjs`, and the
/// OOXML documents that detect as zip).
pub fn serving_content_type<'a>(detected: &'a str, file_name: &str) -> &'a str {
    let ext = file_name.rfind('.').map(|i| &file_name[i..]).unwrap_or_default();
    match ext {
        ".svg" => "image/svg+xml",
        ".css" => "text/css",
        ".js" | ".mjs" => "text/javascript",
        ".xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ".docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ".pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        _ => detected,
    }
}

/// `Type/Sub; a=b` → `type/sub`.
fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// `infer`'s names, renamed where mimetype says otherwise. A type infer knows that neither table
/// lists falls through to the text/binary decision rather than get a made-up name.
fn from_infer(mime: &str) -> Option<Detected> {
    const RENAMED: &[(&str, &str, &str)] = &[
        ("image/vnd.microsoft.icon", "image/x-icon", ".ico"),
        ("audio/x-wav", "audio/wav", ".wav"),
        ("audio/x-flac", "audio/flac", ".flac"),
        ("audio/x-aiff", "audio/aiff", ".aiff"),
        ("audio/m4a", "audio/x-m4a", ".m4a"),
        ("application/x-ole-storage", "application/x-ole-storage", ""),
        ("application/vnd.rar", "application/x-rar-compressed", ".rar"),
        ("application/x-shockwave-flash", "application/x-shockwave-flash", ".swf"),
        ("application/x-executable", "application/x-elf", ""),
    ];
    if let Some((_, to, ext)) = RENAMED.iter().find(|(from, _, _)| *from == mime) {
        return Some(Detected { mime: to, extension: ext });
    }
    KNOWN.iter().find(|(m, _)| *m == mime).map(|(m, e)| Detected { mime: m, extension: e })
}

/// Types `infer` reports that keep their name, with the extension mimetype gives them.
const KNOWN: &[(&str, &str)] = &[
    ("image/png", ".png"),
    ("image/jpeg", ".jpg"),
    ("image/gif", ".gif"),
    ("image/webp", ".webp"),
    ("image/bmp", ".bmp"),
    ("image/tiff", ".tiff"),
    ("image/avif", ".avif"),
    ("image/heif", ".heif"),
    ("image/heic", ".heic"),
    ("image/jxl", ".jxl"),
    ("image/vnd.adobe.photoshop", ".psd"),
    ("image/vnd.djvu", ".djvu"),
    ("video/mp4", ".mp4"),
    ("video/webm", ".webm"),
    ("video/quicktime", ".mov"),
    ("video/x-msvideo", ".avi"),
    ("video/x-matroska", ".mkv"),
    ("video/mpeg", ".mpeg"),
    ("video/x-flv", ".flv"),
    ("video/x-ms-wmv", ".wmv"),
    ("video/3gpp", ".3gp"),
    ("audio/mpeg", ".mp3"),
    ("audio/ogg", ".ogg"),
    ("audio/aac", ".aac"),
    ("audio/midi", ".midi"),
    ("audio/amr", ".amr"),
    ("audio/opus", ".opus"),
    ("application/pdf", ".pdf"),
    ("application/zip", ".zip"),
    ("application/gzip", ".gz"),
    ("application/x-bzip2", ".bz2"),
    ("application/x-7z-compressed", ".7z"),
    ("application/x-tar", ".tar"),
    ("application/x-xz", ".xz"),
    ("application/zstd", ".zst"),
    ("application/wasm", ".wasm"),
    ("application/x-sqlite3", ".sqlite"),
    ("application/epub+zip", ".epub"),
    ("application/rtf", ".rtf"),
    ("application/postscript", ".ps"),
    ("application/msword", ".doc"),
    ("application/vnd.ms-excel", ".xls"),
    ("application/vnd.ms-powerpoint", ".ppt"),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx"),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"),
    ("application/vnd.openxmlformats-officedocument.presentationml.presentation", ".pptx"),
    ("application/vnd.oasis.opendocument.text", ".odt"),
    ("application/vnd.oasis.opendocument.spreadsheet", ".ods"),
    ("application/vnd.oasis.opendocument.presentation", ".odp"),
    ("application/vnd.microsoft.portable-executable", ".exe"),
    ("application/x-msdownload", ".exe"),
    ("font/woff", ".woff"),
    ("font/woff2", ".woff2"),
    ("font/ttf", ".ttf"),
    ("font/otf", ".otf"),
];

/// Text as mimetype sees it: no byte that only binary files hold (NUL and most C0 controls),
/// and valid UTF-8 except possibly a char cut at the end of the sniffed window.
fn looks_like_text(head: &[u8]) -> bool {
    if head.iter().any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b)) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        // `error_len() == None`: the input ended inside a char, which a cut window may do.
        Err(e) => e.error_len().is_none(),
    }
}

fn detect_text(head: &[u8]) -> Detected {
    let text = String::from_utf8_lossy(head);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let lower: String = trimmed.chars().take(512).collect::<String>().to_ascii_lowercase();
    if lower.starts_with("<svg") || (lower.starts_with("<?xml") && lower.contains("<svg")) {
        return Detected { mime: "image/svg+xml", extension: ".svg" };
    }
    if lower.starts_with("<?xml") {
        return Detected { mime: "text/xml; charset=utf-8", extension: ".xml" };
    }
    const HTML: &[&str] = &[
        "<!doctype html",
        "<html",
        "<head",
        "<script",
        "<iframe",
        "<h1",
        "<div",
        "<font",
        "<table",
        "<a ",
        "<style",
        "<title",
        "<b>",
        "<body",
        "<br",
        "<p>",
        "<!--",
    ];
    if HTML.iter().any(|tag| lower.starts_with(tag)) {
        return Detected { mime: "text/html; charset=utf-8", extension: ".html" };
    }
    let is_whole = head.len() < SNIFF_LEN;
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && is_whole
        && serde_json::from_str::<serde_json::Value>(trimmed).is_ok()
    {
        return Detected { mime: "application/json", extension: ".json" };
    }
    if looks_like_csv(trimmed) {
        return Detected { mime: "text/csv", extension: ".csv" };
    }
    Detected { mime: TEXT_PLAIN_UTF8, extension: ".txt" }
}

/// At least two lines and the same number (more than one) of comma-separated fields in each
/// complete line. Quoted fields are not parsed: a quoted comma makes it plain text, the safe side.
fn looks_like_csv(text: &str) -> bool {
    let mut lines: Vec<&str> = text.lines().collect();
    if !text.ends_with('\n') && text.len() >= SNIFF_LEN {
        lines.pop(); // the last line may be cut by the window
    }
    let lines: Vec<&str> = lines.into_iter().filter(|l| !l.is_empty()).collect();
    if lines.len() < 2 {
        return false;
    }
    let fields = lines[0].split(',').count();
    fields > 1 && lines.iter().all(|l| l.split(',').count() == fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0";
    const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0";
    const GIF: &[u8] = b"GIF89a\x01\0\x01\0\0\0\0";
    const WEBP: &[u8] = b"RIFF\x1a\0\0\0WEBPVP8L\x0d\0\0\0";
    const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";

    #[test]
    fn binary_formats_by_magic() {
        for (bytes, mime, ext) in [
            (PNG, "image/png", ".png"),
            (JPEG, "image/jpeg", ".jpg"),
            (GIF, "image/gif", ".gif"),
            (WEBP, "image/webp", ".webp"),
            (PDF, "application/pdf", ".pdf"),
        ] {
            assert_eq!(detect(bytes), Detected { mime, extension: ext }, "{mime}");
        }
    }

    /// The values below were probed on PocketBase 0.40.6 (the stored `.attrs` content types).
    #[test]
    fn text_formats_like_pocketbase() {
        let cases: &[(&[u8], &str, &str)] = &[
            (b"", "text/plain", ".txt"),
            (b"abc", TEXT_PLAIN_UTF8, ".txt"),
            (b"caf\xc3\xa9 \xf0\x9f\x98\x80\n", TEXT_PLAIN_UTF8, ".txt"),
            (b"<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>", "image/svg+xml", ".svg"),
            (b"<?xml version=\"1.0\"?><svg></svg>", "image/svg+xml", ".svg"),
            (b"{\"a\":1}", "application/json", ".json"),
            (b"<html><body>x</body></html>", "text/html; charset=utf-8", ".html"),
            (b"<?xml version=\"1.0\"?><a/>", "text/xml; charset=utf-8", ".xml"),
            (b"a,b\n1,2\n", "text/csv", ".csv"),
            (b"hello\0world", OCTET_STREAM, ""),
            (b"\x00\x01\x02\xff", OCTET_STREAM, ""),
            (b"\xff\xfe\xfd not utf8", OCTET_STREAM, ""),
        ];
        for (bytes, mime, ext) in cases {
            assert_eq!(detect(bytes), Detected { mime, extension: ext }, "{bytes:?}");
        }
    }

    /// A file that claims to be an image by name or header is whatever its bytes are.
    #[test]
    fn a_fake_png_is_text() {
        assert_eq!(detect(b"this is not a png").mime, TEXT_PLAIN_UTF8);
        assert_eq!(detect(b"\x89PNX\r\n").mime, OCTET_STREAM);
    }

    #[test]
    fn a_char_cut_by_the_window_is_still_text() {
        let mut text = "é".repeat(SNIFF_LEN / 2 - 1).into_bytes();
        text.push(b'a');
        text.push(0xc3); // the first byte of another `é`, cut by the window
        assert_eq!(text.len(), SNIFF_LEN);
        assert_eq!(detect(&text).mime, TEXT_PLAIN_UTF8);
        // Only the first SNIFF_LEN bytes count.
        let mut long = vec![b'a'; SNIFF_LEN];
        long.extend_from_slice(&[0u8; 10]);
        assert_eq!(detect(&long).mime, TEXT_PLAIN_UTF8);
    }

    #[test]
    fn mime_types_match_exactly_without_parameters() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(matches("image/jpeg", &list(&["image/png", "image/jpeg"])));
        assert!(!matches("image/jpeg", &list(&["image/jpg"])));
        assert!(!matches("image/jpeg", &list(&["image/*"])));
        assert!(!matches("image/jpeg", &list(&[])));
        assert!(matches("text/plain; charset=utf-8", &list(&["text/plain"])));
        assert!(matches("text/plain", &list(&["TEXT/PLAIN; charset=utf-8"])));
        assert!(!matches("application/json", &list(&["text/plain"])));
    }

    #[test]
    fn serving_tables() {
        assert!(is_thumbable("image/webp") && is_thumbable("image/jpg"));
        assert!(!is_thumbable("image/svg+xml") && !is_thumbable("image/bmp"));
        assert!(serves_inline("image/png") && serves_inline("application/pdf"));
        assert!(!serves_inline("image/svg+xml") && !serves_inline("text/html; charset=utf-8"));
        assert!(!serves_inline(TEXT_PLAIN_UTF8));
        assert_eq!(serving_content_type(TEXT_PLAIN_UTF8, "a_x.svg"), "image/svg+xml");
        assert_eq!(serving_content_type("application/zip", "a_x.docx").len(), 71);
        assert_eq!(serving_content_type("image/png", "a_x.png"), "image/png");
        assert_eq!(serving_content_type("image/png", "noext"), "image/png");
    }
}
