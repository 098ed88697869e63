//! Stored file names, mangled as PocketBase 0.40.6 does (`tools/filesystem/file.go`,
//! `normalizeName`): a snake_cased ASCII base (at most 100 bytes, padded with 10 random chars when
//! shorter than 3), `_`, 10 random `[a-z0-9]` chars, and the cleaned extension (double extensions
//! such as `.tar.gz` kept, case kept, at most 20 chars; detected from the content when the name
//! has none). The result only ever holds `[a-z0-9_]` plus `[A-Za-z0-9_.*+=#-]` in the extension,
//! so no client name can reach a storage key with a separator, `..`, `%` or NUL in it.
//! Pure: no I/O.

use crate::files::mime;
use crate::util::random_from;

const RANDOM_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A name longer than this (in bytes) is cut to its last 300 bytes before anything else.
const MAX_ORIGINAL_LEN: usize = 300;
/// The base is cut to this many bytes (it is ASCII by then).
const MAX_BASE_LEN: usize = 100;
/// The extension, dot included, is cut to its last 20 bytes.
const MAX_EXT_LEN: usize = 20;
/// A base shorter than this gets a random filler.
const MIN_BASE_LEN: usize = 3;

/// The name a new upload is stored under. `head` is the start of the content (see
/// [`mime::SNIFF_LEN`]); it only matters when `original` has no usable extension.
pub fn stored_name(original: &str, head: &[u8]) -> String {
    stored_name_with(original, head, &mut |n| random_from(RANDOM_ALPHABET, n))
}

/// The last path segment of a client's file name, as Go's `multipart.Part.FileName` keeps it
/// (`filepath.Base` on Unix: only `/` separates; an all-slash name is `/`). An empty name stays
/// empty (the part is then a plain value, not a file).
pub fn base_name(raw: &str) -> &str {
    if raw.is_empty() {
        return raw;
    }
    let trimmed = raw.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/";
    }
    match trimmed.rfind('/') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    }
}

/// [`stored_name`] with the random source given, so tests can pin it.
pub fn stored_name_with(
    original: &str,
    head: &[u8],
    random: &mut dyn FnMut(usize) -> String,
) -> String {
    // Cut by bytes like PocketBase (not char safe there either); a char split in two becomes
    // U+FFFD, which is no word character and so disappears below, as in Go's regexps.
    let bytes = original.as_bytes();
    let name = if bytes.len() > MAX_ORIGINAL_LEN {
        String::from_utf8_lossy(&bytes[bytes.len() - MAX_ORIGINAL_LEN..]).into_owned()
    } else {
        original.to_string()
    };

    let original_ext = extract_extension(&name);
    let kept: String = original_ext.chars().filter(|c| is_ext_char(*c)).collect();
    let mut clean_ext = format!(".{}", kept.trim_matches('.'));
    if clean_ext == "." {
        clean_ext = mime::detect(head).extension.to_string();
    }
    if clean_ext.len() > MAX_EXT_LEN {
        // ASCII only at this point, so any byte index is a char boundary.
        let tail = &clean_ext[clean_ext.len() - MAX_EXT_LEN..];
        clean_ext = format!(".{}", tail.trim_matches('.'));
    }

    let stem = name.strip_suffix(original_ext.as_str()).unwrap_or(&name);
    let mut base = snake_case(stem.trim_matches('.'));
    if base.len() < MIN_BASE_LEN {
        base.push_str(&random(10));
    } else if base.len() > MAX_BASE_LEN {
        base.truncate(MAX_BASE_LEN);
    }
    format!("{base}_{}{clean_ext}", random(10))
}

/// The extension with its dot, double extensions included: `a.tar.gz` → `.tar.gz`,
/// `a.b.c.png` → `.c.png`, `abc` → ``.
fn extract_extension(name: &str) -> String {
    let Some(primary) = name.rfind('.') else { return String::new() };
    match name[..primary].rfind('.') {
        Some(secondary) => name[secondary..].to_string(),
        None => name[primary..].to_string(),
    }
}

/// Go's `\w` is ASCII only; the extension keeps `\w . * - + = #`.
fn is_ext_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '*' | '-' | '+' | '=' | '#')
}

/// PocketBase's `inflector.Snakecase`: split at every run of non-`[A-Za-z0-9]` chars (so any
/// non-ASCII char separates words), join with `_`, put `_` before an uppercase letter that follows
/// a non-uppercase one (`myTestDB` → `my_test_db`), lowercase.
fn snake_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push('_');
        }
        let mut prev_upper = false;
        for (i, c) in word.chars().enumerate() {
            let upper = c.is_ascii_uppercase();
            if upper && i > 0 && !prev_upper {
                out.push('_');
            }
            prev_upper = upper;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random parts are `R` repeated, so expectations are exact strings.
    fn name(original: &str, head: &[u8]) -> String {
        stored_name_with(original, head, &mut |n| "R".repeat(n))
    }

    const R10: &str = "RRRRRRRRRR";

    /// PocketBase's own table (`TestFileNameNormalizations`) with content "abc".
    #[test]
    fn pocketbase_normalization_table() {
        let cases: &[(&str, String)] = &[
            ("", format!("{R10}_{R10}.txt")),
            (".png", format!("{R10}_{R10}.png")),
            (".tar.gz", format!("{R10}_{R10}.tar.gz")),
            ("a.tar.gz", format!("a{R10}_{R10}.tar.gz")),
            ("....abc", format!("{R10}_{R10}.abc")),
            ("a.b.c.?.?.?.2", format!("a_b_c_{R10}.2")),
            ("a.b.c.d.tar.gz", format!("a_b_c_d_{R10}.tar.gz")),
            ("abcd", format!("abcd_{R10}.txt")),
            (".abcd.123.", format!("abcd_{R10}.123")),
            ("a  b! c d  . 456", format!("a_b_c_d_{R10}.456")),
            ("image_!@ special", format!("image_special_{R10}.txt")),
        ];
        for (original, expected) in cases {
            assert_eq!(&name(original, b"abc"), expected, "{original:?}");
        }
    }

    #[test]
    fn lengths_are_cut_like_pocketbase() {
        let long = format!("{}.{}", "a".repeat(101), "b".repeat(21));
        assert_eq!(name(&long, b"abc"), format!("{}_{R10}.{}", "a".repeat(100), "b".repeat(20)));
        let total = format!("abc{}.{}", "d".repeat(290), "b".repeat(9));
        assert_eq!(name(&total, b"abc"), format!("{}_{R10}.{}", "d".repeat(100), "b".repeat(9)));
    }

    /// Probed on PocketBase 0.40.6: the extension keeps its case, the base is lowercased.
    #[test]
    fn case_and_camel_case() {
        assert_eq!(name("Photo.JPG", b""), format!("photo_{R10}.JPG"));
        assert_eq!(name("myTestDB.png", b""), format!("my_test_db_{R10}.png"));
        assert_eq!(name("My Pic.PNG", b""), format!("my_pic_{R10}.PNG"));
    }

    /// Probed: non-ASCII letters separate words (`café ünï.txt` → `caf_n_…`).
    #[test]
    fn unicode_letters_separate_words() {
        assert_eq!(name("café ünï.txt", b""), format!("caf_n_{R10}.txt"));
        assert_eq!(name("日本語.png", b""), format!("{R10}_{R10}.png"));
        assert_eq!(name("😀😀😀", b"abc"), format!("{R10}_{R10}.txt"));
    }

    #[test]
    fn hostile_names_never_leave_a_separator_or_dot_dot() {
        let hostile = [
            "../../etc/passwd",
            "..\\..\\windows\\system32",
            "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
            "..%2f..%2fx.webp",
            "a\0b.txt",
            "/abs/olute.png",
            "C:\\dir\\win.png",
            "....",
            "..",
            ".",
            "...png",
            ".htaccess",
            &"x".repeat(10_000),
            &format!("{}.{}", "é".repeat(400), "ü".repeat(400)),
            "name.\0\0\0",
            "a/../../b.png",
            "con.png",
            "\u{202e}gnp.exe",
        ];
        for h in hostile {
            for head in [&b"abc"[..], b"\x89PNG\r\n\x1a\n", b"", b"\xff\xfe\x00"] {
                let n = stored_name(h, head);
                assert!(!n.contains('/') && !n.contains('\\') && !n.contains('\0'), "{h:?} → {n}");
                assert!(
                    !n.contains("..") && !n.starts_with('.') && !n.contains('%'),
                    "{h:?} → {n}"
                );
                assert!((14..=132).contains(&n.len()), "{h:?} → {n} ({} bytes)", n.len());
                assert!(
                    n.chars().all(|c| c.is_ascii_alphanumeric() || "_.*+=#-".contains(c)),
                    "{h:?} → {n}"
                );
                assert!(crate::files::keys::validate_segment(&n).is_ok(), "{h:?} → {n}");
            }
        }
    }

    /// Probed: `..%2f..%2fx.webp` is stored as `2f<random>_<random>.2fx.webp`.
    #[test]
    fn percent_encoded_traversal_is_just_text() {
        assert_eq!(name("..%2f..%2fx.webp", b""), format!("2f{R10}_{R10}.2fx.webp"));
        assert_eq!(
            name("%2e%2e%2fetc%2fpasswd", b"abc"),
            format!("2e_2e_2fetc_2fpasswd_{R10}.txt")
        );
    }

    #[test]
    fn missing_extension_comes_from_the_content() {
        assert_eq!(name("photo", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), format!("photo_{R10}.png"));
        assert_eq!(name("....", b"GIF89a"), format!("{R10}_{R10}.gif"));
        // Unknown binary content has no extension.
        assert_eq!(name("blob", b"\x00\x01\x02\xff"), format!("blob_{R10}"));
        // An empty file is text.
        assert_eq!(name("noext", b""), format!("noext_{R10}.txt"));
    }

    #[test]
    fn random_parts_are_lowercase_alphanumerics() {
        let n = stored_name("report.pdf", b"%PDF-1.4");
        let (base, rest) = n.split_once('_').expect("underscore");
        assert_eq!(base, "report");
        let random = rest.strip_suffix(".pdf").expect("ext");
        assert_eq!(random.len(), 10);
        assert!(random.bytes().all(|b| RANDOM_ALPHABET.contains(&b)));
        assert_ne!(stored_name("report.pdf", b""), stored_name("report.pdf", b""));
    }

    #[test]
    fn base_name_is_go_filepath_base() {
        assert_eq!(base_name("../../etc/passwd"), "passwd");
        assert_eq!(base_name("/abs/path/ok.png"), "ok.png");
        assert_eq!(base_name("dir/"), "dir");
        assert_eq!(base_name("///"), "/");
        assert_eq!(base_name(""), "");
        assert_eq!(base_name("C:\\dir\\win.png"), "C:\\dir\\win.png");
        assert_eq!(base_name(".."), "..");
    }
}
