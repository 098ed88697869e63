//! Multipart parsing tests: PocketBase's value typing and `@jsonPayload` merge (probed on
//! 0.40.6), file parts in memory and spooled, and hostile bodies (no name, broken boundaries,
//! too many parts, too large, NUL).

use serde_json::json;

use super::*;
use bytes::Bytes;

use crate::files::{FileKey, FileStore};

const B: &str = "XyZzy";
const CT: &str = "multipart/form-data; boundary=XyZzy";

fn value(name: &str, v: &str) -> Vec<u8> {
    format!("--{B}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{v}\r\n").into_bytes()
}

fn file(name: &str, filename: &str, ctype: &str, content: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "--{B}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(content);
    out.extend_from_slice(b"\r\n");
    out
}

fn body(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = parts.concat();
    out.extend_from_slice(format!("--{B}--\r\n").as_bytes());
    out
}

async fn parse_bytes(bytes: Vec<u8>, limits: &MultipartLimits) -> Result<MultipartForm, ApiError> {
    parse(CT, Body::from(bytes), limits).await
}

async fn ok(parts: &[Vec<u8>]) -> MultipartForm {
    parse_bytes(body(parts), &MultipartLimits::default()).await.expect("parses")
}

async fn err(bytes: Vec<u8>) -> ApiError {
    parse_bytes(bytes, &MultipartLimits::default()).await.expect_err("refused")
}

#[test]
fn values_are_typed_like_pocketbase_infer_value() {
    let cases = [
        ("", json!("")),
        ("true", json!(true)),
        ("false", json!(false)),
        ("True", json!("True")),
        ("5", json!(5.0)),
        ("-1.5", json!(-1.5)),
        ("0.1", json!(0.1)),
        ("007", json!("007")),
        ("1e3", json!("1e3")),
        ("1.0", json!("1.0")),
        ("1.", json!("1.")),
        (".5", json!(".5")),
        ("-", json!("-")),
        ("1-2", json!("1-2")),
        ("NaN", json!("NaN")),
        ("abc", json!("abc")),
        ("99999999999999999999", json!("99999999999999999999")),
    ];
    for (raw, want) in cases {
        assert_eq!(infer_value(raw), want, "{raw:?}");
    }
}

#[tokio::test]
async fn repeated_keys_become_arrays_and_json_payloads_merge_in_order() {
    let form = ok(&[
        value("title", "a"),
        value("title", "b"),
        value("n", "5"),
        value("@jsonPayload", r#"{"tags":[1,2],"n":7}"#),
        value("@jsonPayload", r#"{"title":"z"}"#),
        value("empty", ""),
    ])
    .await;
    // Probed: two payloads both apply, later keys win, form values lose to them.
    assert_eq!(
        Value::Object(form.values),
        json!({"title": "z", "n": 7, "tags": [1, 2], "empty": ""})
    );
    let form = ok(&[value("title", "a"), value("title", "b"), value("n", "1")]).await;
    assert_eq!(Value::Object(form.values), json!({"title": ["a", "b"], "n": 1.0}));
}

#[tokio::test]
async fn a_json_payload_must_be_an_object() {
    // Probed: `@jsonPayload=[1]` and `=notjson` are 400 "Something went wrong…".
    for payload in ["[1]", "notjson", "1", "\"s\"", "null", ""] {
        let e = err(body(&[value("@jsonPayload", payload)])).await;
        assert_eq!((e.status, e.message.as_str()), (StatusCode::BAD_REQUEST, GENERIC_400));
    }
    let e = err(body(&[value("@jsonPayload", r#"{"a":"x\u0000"}"#)])).await;
    assert_eq!(e.status, StatusCode::BAD_REQUEST, "NUL inside the payload");
}

#[tokio::test]
async fn files_are_typed_by_content_and_named_by_their_last_segment() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0";
    let form = ok(&[
        value("title", "t"),
        file("f", "../../etc/My Pic.PNG", "text/plain", png),
        file("f", "fake.png", "image/png", b"not a png at all"),
        file("g", "/abs/olute.bin", "application/octet-stream", b""),
    ])
    .await;
    assert_eq!(Value::Object(form.values.clone()), json!({"title": "t"}));
    let f: Vec<&UploadedFile> = form.files_for("f").collect();
    assert_eq!(f.len(), 2);
    assert_eq!(
        (f[0].original_name.as_str(), f[0].detected.mime, f[0].size),
        ("My Pic.PNG", "image/png", png.len() as u64)
    );
    assert_eq!(f[1].detected.mime, mime::TEXT_PLAIN_UTF8, "the client's image/png is ignored");
    let g = form.files_for("g").next().expect("g");
    assert_eq!((g.original_name.as_str(), g.size, g.detected.mime), ("olute.bin", 0, "text/plain"));
    assert!(matches!(&f[0].content, FileContent::Memory(b) if b.as_ref() == png));
    let stored = f[0].stored_name();
    assert!(stored.starts_with("my_pic_") && stored.ends_with(".PNG"), "{stored}");
}

#[tokio::test]
async fn an_empty_filename_is_a_plain_value_and_filename_star_is_decoded() {
    let mut star = format!(
        "--{B}\r\nContent-Disposition: form-data; name=\"f\"; filename*=UTF-8''caf%C3%A9.txt\r\n\r\n"
    )
    .into_bytes();
    star.extend_from_slice(b"abc\r\n");
    let form = ok(&[file("f", "", "text/plain", b"abc"), star]).await;
    // Probed: `filename=""` makes the part a value (PocketBase then refuses it as a file name).
    assert_eq!(Value::Object(form.values), json!({"f": "abc"}));
    assert_eq!(form.files.len(), 1);
    assert_eq!(form.files[0].original_name, "café.txt");
}

#[tokio::test]
async fn big_files_are_spooled_to_disk_and_stream_into_the_store() {
    let dir = tempfile::tempdir().expect("tmp");
    let limits = MultipartLimits {
        memory_threshold: 64 * 1024,
        max_memory: 90 * 1024,
        spool_dir: Some(dir.path().to_path_buf()),
        ..MultipartLimits::default()
    };
    let big: Vec<u8> = (0..(3 * 1024 * 1024u32)).map(|i| (i % 241) as u8).collect();
    let small = vec![b'a'; 50 * 1024];
    let bytes = body(&[
        file("f", "small1.txt", "x/y", &small),
        file("f", "small2.txt", "x/y", &small),
        file("f", "big.bin", "x/y", &big),
    ]);
    // Fed in small uneven chunks, so boundaries straddle chunk edges.
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        bytes.chunks(1000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let form = parse(CT, Body::from_stream(futures_util::stream::iter(chunks)), &limits)
        .await
        .expect("parses");
    assert!(matches!(form.files[0].content, FileContent::Memory(_)));
    assert!(
        matches!(form.files[1].content, FileContent::Spooled(_)),
        "over the memory budget, even a small file is spooled"
    );
    let FileContent::Spooled(tmp) = &form.files[2].content else { panic!("big file in memory") };
    assert!(tmp.path().starts_with(dir.path()));
    assert_eq!(std::fs::read(tmp.path()).expect("spool"), big);
    assert_eq!(form.files[2].size, big.len() as u64);
    assert_eq!(form.files[2].head.len(), mime::SNIFF_LEN);

    let store_dir = tempfile::tempdir().expect("tmp");
    let store = FileStore::local(store_dir.path()).expect("store");
    let key = FileKey::file("c", "r", &form.files[2].stored_name()).expect("key");
    let info = form.files[2].store(&store, &key).await.expect("store");
    assert_eq!(info.size, big.len() as u64);
    assert_eq!(store.read_all(&key).await.expect("read").as_ref(), big.as_slice());
    let spooled = tmp.path().to_path_buf();
    drop(form);
    assert!(!spooled.exists(), "spooled files go away with the form");
}

#[tokio::test]
async fn a_part_without_a_name_is_a_400() {
    // PocketBase silently drops such parts; the issue asks for a clear 400.
    let no_name = format!(
        "--{B}\r\nContent-Disposition: form-data; filename=\"a.txt\"\r\n\r\nx\r\n--{B}--\r\n"
    );
    let no_disposition = format!("--{B}\r\nContent-Type: text/plain\r\n\r\nx\r\n--{B}--\r\n");
    let empty_name =
        format!("--{B}\r\nContent-Disposition: form-data; name=\"\"\r\n\r\nx\r\n--{B}--\r\n");
    for b in [no_name, no_disposition, empty_name] {
        let e = err(b.into_bytes()).await;
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.message, "A part of the multipart body has no name.");
    }
}

#[tokio::test]
async fn broken_bodies_are_400s() {
    let one = value("title", "x");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (CT, [one.clone(), format!("--{B}").into_bytes()].concat()),
        (CT, one.clone()),
        ("multipart/form-data; boundary=other", body(std::slice::from_ref(&one))),
        ("multipart/form-data", body(std::slice::from_ref(&one))),
        ("multipart/form-data; boundary=", body(std::slice::from_ref(&one))),
        (CT, b"garbage without any boundary".to_vec()),
        (CT, format!("--{B}\r\nContent-Disposition: form-data; name=\"a\"\r\n").into_bytes()),
    ];
    for (ct, bytes) in cases {
        let e = parse(ct, Body::from(bytes), &MultipartLimits::default()).await.expect_err(ct);
        assert_eq!((e.status, e.message.as_str()), (StatusCode::BAD_REQUEST, GENERIC_400), "{ct}");
    }
}

#[tokio::test]
async fn an_empty_body_or_only_the_closing_boundary_is_an_empty_form() {
    let form = parse_bytes(format!("--{B}--\r\n").into_bytes(), &MultipartLimits::default())
        .await
        .expect("closing boundary only");
    assert!(form.values.is_empty() && form.files.is_empty());
}

#[tokio::test]
async fn more_than_1000_parts_is_a_400() {
    // Probed: 1001 parts → 400; 1000 file parts parse (then fail `maxSelect`).
    let parts: Vec<Vec<u8>> = (0..1000).map(|_| file("f", "a.txt", "text/plain", b"abc")).collect();
    assert_eq!(ok(&parts).await.files.len(), 1000);
    let parts: Vec<Vec<u8>> = (0..1001).map(|_| value("t", "x")).collect();
    let e = err(body(&parts)).await;
    assert_eq!(e.status, StatusCode::BAD_REQUEST);
    assert_eq!(e.message, "The multipart body has more than 1000 parts.");
}

#[tokio::test]
async fn limits_are_413s() {
    let small = MultipartLimits { max_body: 10_000, ..MultipartLimits::default() };
    let e = parse_bytes(body(&[file("f", "a.bin", "x/y", &[1u8; 20_000])]), &small).await;
    let e = e.expect_err("too large");
    assert_eq!((e.status, e.message.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE_413));
    let few_values = MultipartLimits { max_values_bytes: 100, ..MultipartLimits::default() };
    let e = parse_bytes(body(&[value("a", &"x".repeat(101))]), &few_values).await;
    assert_eq!(e.expect_err("values").status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn nul_characters_are_refused() {
    let e = err(body(&[value("title", "a\0b")])).await;
    assert_eq!(e.status, StatusCode::BAD_REQUEST);
    assert!(e.message.contains("NUL"), "{}", e.message);
    // In a part's headers a NUL does not even parse (PocketBase: the same generic 400).
    for bytes in
        [body(&[value("ti\0tle", "a")]), body(&[file("f", "a\0b.txt", "text/plain", b"abc")])]
    {
        assert_eq!(err(bytes).await.status, StatusCode::BAD_REQUEST);
    }
    let e = err(body(&[
        b"--XyZzy\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\n\xff\xfe\r\n".to_vec(),
    ]))
    .await;
    assert_eq!(e.status, StatusCode::BAD_REQUEST, "invalid UTF-8 in a value");
}

#[test]
fn multipart_content_types() {
    assert!(is_multipart(CT));
    assert!(is_multipart("Multipart/Form-Data; boundary=x"));
    assert!(!is_multipart("application/json"));
    assert!(!is_multipart("multipart/mixed; boundary=x"));
}
