//! Files through the API: multipart record writes (values, several files per field, `f+`/`+f`/
//! `f-`, clearing), the file field options (maxSelect, maxSize and its default, mimeTypes from
//! the content), downloads (headers, validators, ranges, thumbs), protected files and file
//! tokens, the lifecycle (a failed write stores nothing, dropped and deleted records' files go),
//! and hostile bodies and names. What is stored is checked through the app's own `FileStore`
//! (the local disk, or S3 with `BASALT_TEST_S3`).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{
    eventually, spawn_app, spawn_app_on, spawn_app_sharing_files, TestApp, TestDb,
};
use crate::pg_test_server;

const BOUNDARY: &str = "basaltTestBoundary7MA4YWxkTrZu0gW";

/// One part of a hand-made multipart body: `(name, Some(filename), bytes)` is a file.
pub(crate) struct Part<'a> {
    name: &'a str,
    file: Option<&'a str>,
    bytes: Vec<u8>,
}

pub(crate) fn value<'a>(name: &'a str, v: &str) -> Part<'a> {
    Part { name, file: None, bytes: v.as_bytes().to_vec() }
}

pub(crate) fn file<'a>(name: &'a str, filename: &'a str, bytes: &[u8]) -> Part<'a> {
    Part { name, file: Some(filename), bytes: bytes.to_vec() }
}

fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match p.file {
            Some(f) => out.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                    p.name
                )
                .as_bytes(),
            ),
            None => out.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{}\"\r\n\r\n", p.name).as_bytes(),
            ),
        }
        out.extend_from_slice(&p.bytes);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

/// A valid 8×8 RGB PNG.
fn png() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(8, 8, image::Rgb([200, 10, 10]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).expect("png");
    out.into_inner()
}

/// A PNG whose header claims `side`×`side` pixels over a tiny body (a decompression bomb for a
/// decoder that trusts the header).
fn png_claiming(side: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for b in bytes {
            c ^= u32::from(*b);
            for _ in 0..8 {
                c = if c & 1 == 1 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }
    let mut out = png();
    // IHDR's data starts at 16 (8 signature + 4 length + 4 type); its CRC follows the 13 bytes.
    out[16..20].copy_from_slice(&side.to_be_bytes());
    out[20..24].copy_from_slice(&side.to_be_bytes());
    let crc = crc32(&out[12..29]);
    out[29..33].copy_from_slice(&crc.to_be_bytes());
    out
}

impl TestApp {
    async fn send_form(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
        content_type: &str,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.url))
            .header("Content-Type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.header("Authorization", t);
        }
        let res = req.send().await.expect("sent");
        let status = res.status();
        let bytes = res.bytes().await.expect("body");
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    pub(crate) async fn post_form(
        &self,
        path: &str,
        token: Option<&str>,
        parts: &[Part<'_>],
    ) -> (StatusCode, Value) {
        let ct = format!("multipart/form-data; boundary={BOUNDARY}");
        self.send_form(reqwest::Method::POST, path, token, multipart(parts), &ct).await
    }

    pub(crate) async fn patch_form(
        &self,
        path: &str,
        token: Option<&str>,
        parts: &[Part<'_>],
    ) -> (StatusCode, Value) {
        let ct = format!("multipart/form-data; boundary={BOUNDARY}");
        self.send_form(reqwest::Method::PATCH, path, token, multipart(parts), &ct).await
    }

    async fn stored(&self) -> Vec<String> {
        self.svc.files().list_all().await.expect("list the file store")
    }

    async fn raw_get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.client.get(format!("{}{path}", self.url));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("sent")
    }
}

/// `docs`: public rules, a single file, a multi file field with types and thumbs, a small
/// one and a protected one.
async fn docs(app: &TestApp, su: &str) -> Value {
    app.create_collection(
        su,
        json!({"name": "docs", "type": "base",
        "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": "",
        "fields": [
            {"name": "title", "type": "text"},
            {"name": "n", "type": "number"},
            {"name": "one", "type": "file", "maxSelect": 1},
            {"name": "many", "type": "file", "maxSelect": 3,
             "mimeTypes": ["image/png", "text/plain"], "thumbs": ["50x50"]},
            {"name": "tiny", "type": "file", "maxSelect": 1, "maxSize": 10},
            {"name": "prot", "type": "file", "maxSelect": 1, "protected": true}
        ]}),
    )
    .await
}

fn names(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().filter_map(Value::as_str).map(String::from).collect(),
        Value::String(s) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn upload_then_download_with_pocketbase_s_headers() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let coll = docs(&app, &su).await;
    let cid = coll["id"].as_str().expect("id").to_string();
    let img = png();
    let (status, rec) = app
        .post_form(
            "/api/collections/docs/records",
            None,
            &[
                value("title", "hello"),
                value("n", "5"),
                file("one", "My Photo.png", &img),
                file("many", "a.txt", b"alpha"),
                file("many", "b.png", &img),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    assert_eq!(rec["title"], "hello");
    assert_eq!(rec["n"], 5, "form values are typed by their field");
    let one = rec["one"].as_str().expect("one").to_string();
    assert!(one.starts_with("my_photo_") && one.ends_with(".png") && one.len() == 23, "{one}");
    let many = names(&rec["many"]);
    assert_eq!(many.len(), 2);
    assert!(many[0].starts_with('a') && many[0].ends_with(".txt"), "{many:?}");
    let id = rec["id"].as_str().expect("id").to_string();
    let mut expected: Vec<String> =
        [&one, &many[0], &many[1]].iter().map(|n| format!("{cid}/{id}/{n}")).collect();
    expected.sort();
    assert_eq!(app.stored().await, expected);

    let url = format!("/api/files/docs/{id}/{one}");
    let res = app.raw_get(&url, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["content-disposition"], format!("inline; filename=\"{one}\""));
    assert_eq!(h["cache-control"], "max-age=2592000, stale-while-revalidate=86400");
    assert_eq!(h["accept-ranges"], "bytes");
    assert!(h["content-security-policy"].to_str().expect("csp").contains("sandbox"));
    assert_eq!(res.bytes().await.expect("body").to_vec(), img);
    let etag = h["etag"].to_str().expect("etag").to_string();
    let lm = h["last-modified"].to_str().expect("lm").to_string();
    let res = app.raw_get(&url, &[("If-None-Match", &etag)]).await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    let res = app.raw_get(&url, &[("If-Modified-Since", &lm)]).await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    let res = app.raw_get(&url, &[("Range", "bytes=0-3")]).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.headers()["content-range"], format!("bytes 0-3/{}", img.len()));
    assert_eq!(res.bytes().await.expect("body").to_vec(), img[..4].to_vec());
    let res = app.raw_get(&url, &[("Range", "bytes=999999-")]).await;
    assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let res = app.raw_get(&format!("{url}?download=1"), &[]).await;
    assert_eq!(res.headers()["content-disposition"], format!("attachment; filename=\"{one}\""));
    // A text file is served as text, not rendered as anything else.
    let res = app.raw_get(&format!("/api/files/docs/{id}/{}", many[0]), &[]).await;
    assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(res.text().await.expect("text"), "alpha");

    // Thumbs: the default 100x100 and the field's own sizes; others serve the original.
    let res = app.raw_get(&format!("{url}?thumb=100x100"), &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-disposition"], format!("inline; filename=\"100x100_{one}\""));
    let thumb = res.bytes().await.expect("thumb");
    let decoded = image::load_from_memory(&thumb).expect("a thumbnail image");
    assert_eq!((decoded.width(), decoded.height()), (100, 100));
    // Served again from memory: the same bytes and headers, and ranges of it.
    let res = app.raw_get(&format!("{url}?thumb=100x100"), &[("Range", "bytes=1-3")]).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.bytes().await.expect("part").to_vec(), thumb[1..4].to_vec());
    let res = app.raw_get(&format!("/api/files/docs/{id}/{}?thumb=50x50", many[1]), &[]).await;
    let decoded = image::load_from_memory(&res.bytes().await.expect("b")).expect("img");
    assert_eq!((decoded.width(), decoded.height()), (50, 50));
    let res = app.raw_get(&format!("{url}?thumb=13x13"), &[]).await;
    assert_eq!(res.bytes().await.expect("b").to_vec(), img, "undeclared size: the original");
    assert!(app.stored().await.iter().any(|k| k.ends_with(&format!("thumbs_{one}/100x100_{one}"))));

    // Unknown collection, record, file, or a name that is not a file of the record: 404.
    for path in [
        format!("/api/files/nope/{id}/{one}"),
        format!("/api/files/docs/aaaaaaaaaaaaaaa/{one}"),
        format!("/api/files/docs/{id}/nothere.png"),
        format!("/api/files/docs/{id}/..%2F..%2Fdata.db"),
        format!("/api/files/docs/{id}/%2e%2e"),
        format!("/api/files/docs/{id}/thumbs_{one}"),
    ] {
        let res = app.raw_get(&path, &[]).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = res.json().await.expect("json envelope");
        assert_eq!(body["status"], 404, "{path}");
    }
}

#[tokio::test]
async fn append_prepend_remove_clear_and_old_files_go_after_commit() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let cid = docs(&app, &su).await["id"].as_str().expect("id").to_string();
    let (status, rec) = app
        .post_form(
            "/api/collections/docs/records",
            None,
            &[file("many", "a.txt", b"a"), file("one", "first.txt", b"first")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    let id = rec["id"].as_str().expect("id").to_string();
    let path = format!("/api/collections/docs/records/{id}");
    let a = names(&rec["many"])[0].clone();
    let first = rec["one"].as_str().expect("one").to_string();

    let (status, rec) = app.patch_form(&path, None, &[file("many+", "b.txt", b"b")]).await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    let after_append = names(&rec["many"]);
    assert_eq!(after_append.len(), 2);
    assert_eq!(after_append[0], a);
    let (status, rec) = app.patch_form(&path, None, &[file("+many", "c.txt", b"c")]).await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    let three = names(&rec["many"]);
    assert!(three[0].starts_with('c') && three[1] == a, "{three:?}");
    // A fourth file is one too many.
    let (status, body) = app.patch_form(&path, None, &[file("many+", "d.txt", b"d")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["data"]["many"]["code"], "validation_too_many_files");
    // Remove by name (JSON), then replace the single file (multipart). A file downloaded (so
    // held in memory) before is a 404 once the record no longer holds it.
    let url_a = format!("/api/files/docs/{id}/{a}");
    assert_eq!(app.raw_get(&url_a, &[]).await.text().await.expect("a"), "a");
    let (status, rec) = app.patch(&path, None, json!({"many-": [a.clone()]})).await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    assert_eq!(names(&rec["many"]).len(), 2);
    assert_eq!(app.raw_get(&url_a, &[]).await.status(), StatusCode::NOT_FOUND);
    let (status, rec) = app.patch_form(&path, None, &[file("one", "second.txt", b"2")]).await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    let second = rec["one"].as_str().expect("one").to_string();
    assert!(second.starts_with("second_"), "{second}");
    // Names the record does not hold are refused (another record's file, made-up names).
    let (status, body) = app.patch(&path, None, json!({"one": "nope_0123456789.txt"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["data"]["one"]["code"], "validation_invalid_file");
    // Keeping a name it holds is fine.
    let (status, _) = app.patch(&path, None, json!({"one": second.clone()})).await;
    assert_eq!(status, StatusCode::OK);

    let key = |n: &str| format!("{cid}/{id}/{n}");
    let gone = eventually(Duration::from_secs(5), || async {
        let s = app.stored().await;
        !s.contains(&key(&a)) && !s.contains(&key(&first))
    })
    .await;
    assert!(gone, "removed and replaced files are deleted: {:?}", app.stored().await);
    assert!(app.stored().await.contains(&key(&second)));
    // By jobs of the queue, committed with the updates that dropped the files.
    let su = app.su_token().await;
    let ran = eventually(Duration::from_secs(5), || async {
        let (_, jobs) = app.get("/api/jobs?kind=files.delete", Some(&su)).await;
        let items = jobs["items"].as_array().cloned().unwrap_or_default();
        items.len() >= 2 && items.iter().all(|j| j["state"] == "succeeded")
    })
    .await;
    assert!(ran, "{}", app.get("/api/jobs?kind=files.delete", Some(&su)).await.1);

    // Clearing with "" (multipart) and [] (JSON).
    let (status, rec) = app.patch_form(&path, None, &[value("many", "")]).await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    assert_eq!(rec["many"], json!([]));
    let (status, rec) = app.patch(&path, None, json!({"one": []})).await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    assert_eq!(rec["one"], "");
    let empty =
        eventually(Duration::from_secs(5), || async { app.stored().await.is_empty() }).await;
    assert!(empty, "every file of the record went: {:?}", app.stored().await);
}

#[tokio::test]
async fn deleting_records_removes_their_files_cascades_included() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let parent = app
        .create_collection(
            &su,
            json!({"name": "parents", "type": "base", "createRule": "", "deleteRule": "",
                "fields": [{"name": "doc", "type": "file", "maxSelect": 1}]}),
        )
        .await;
    let pid = parent["id"].as_str().expect("id").to_string();
    app.create_collection(
        &su,
        json!({"name": "kids", "type": "base", "createRule": "",
            "fields": [{"name": "doc", "type": "file", "maxSelect": 1},
                       {"name": "parent", "type": "relation", "collectionId": pid,
                        "maxSelect": 1, "cascadeDelete": true}]}),
    )
    .await;
    let (_, p) = app
        .post_form("/api/collections/parents/records", None, &[file("doc", "p.txt", b"p")])
        .await;
    let p_id = p["id"].as_str().expect("id").to_string();
    let (status, k) = app
        .post_form(
            "/api/collections/kids/records",
            None,
            &[file("doc", "k.txt", b"k"), value("parent", &p_id)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{k}");
    assert_eq!(app.stored().await.len(), 2);
    let (status, _) = app.delete(&format!("/api/collections/parents/records/{p_id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let empty =
        eventually(Duration::from_secs(5), || async { app.stored().await.is_empty() }).await;
    assert!(empty, "the parent's and the cascaded kid's files: {:?}", app.stored().await);

    // Truncating a collection and deleting one remove their records' files too.
    for _ in 0..2 {
        let (status, _) = app
            .post_form("/api/collections/parents/records", None, &[file("doc", "p.txt", b"p")])
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = app.delete("/api/collections/parents/truncate", Some(&su)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let empty =
        eventually(Duration::from_secs(5), || async { app.stored().await.is_empty() }).await;
    assert!(empty, "truncate: {:?}", app.stored().await);
    let (status, _) =
        app.post_form("/api/collections/kids/records", None, &[file("doc", "k.txt", b"k")]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.delete("/api/collections/kids", Some(&su)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let empty =
        eventually(Duration::from_secs(5), || async { app.stored().await.is_empty() }).await;
    assert!(empty, "collection delete: {:?}", app.stored().await);

    // A collection an import with `deleteMissing` removes takes its files along.
    app.create_collection(
        &su,
        json!({"name": "extra", "type": "base", "createRule": "",
            "fields": [{"name": "doc", "type": "file", "maxSelect": 1}]}),
    )
    .await;
    let (status, _) =
        app.post_form("/api/collections/extra/records", None, &[file("doc", "e.txt", b"e")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.stored().await.len(), 1);
    let (_, parents) = app.get("/api/collections/parents", Some(&su)).await;
    let import = json!({"collections": [parents], "deleteMissing": true});
    let (status, body) =
        app.send(Method::PUT, "/api/collections/import", Some(&su), Some(import)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let empty =
        eventually(Duration::from_secs(5), || async { app.stored().await.is_empty() }).await;
    assert!(empty, "import with deleteMissing: {:?}", app.stored().await);
}

#[tokio::test]
async fn field_options_refuse_bad_uploads_and_store_nothing() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    docs(&app, &su).await;
    let create = "/api/collections/docs/records";
    let (status, body) =
        app.post_form(create, None, &[file("tiny", "x.txt", b"01234567890")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["data"]["tiny"],
        json!({"code": "validation_file_size_limit",
               "message": "Failed to upload x.txt - the maximum allowed file size is 10 bytes.",
               "params": {"file": "x.txt", "maxSize": 10}})
    );
    // PocketBase's default maxSize: 5 MiB.
    let big = vec![0u8; (5 << 20) + 1];
    let (status, body) = app.post_form(create, None, &[file("one", "big.bin", &big)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["data"]["one"]["params"]["maxSize"], 5 << 20);
    // A file claiming to be a PNG that is not (a NUL makes it binary, not text).
    let (status, body) =
        app.post_form(create, None, &[file("many", "evil.png", b"\x00\x01not a png")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["data"]["many"]["code"], "validation_invalid_mime_type");
    // Too many files, and 1000 files in one request.
    let parts: Vec<Part<'_>> = (0..4).map(|_| file("many", "x.txt", b"x")).collect();
    let (status, body) = app.post_form(create, None, &parts).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["data"]["many"]["code"], "validation_too_many_files");
    let parts: Vec<Part<'_>> = (0..1000).map(|_| file("many", "x.txt", b"x")).collect();
    let (status, body) = app.post_form(create, None, &parts).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["data"]["many"]["code"], "validation_too_many_files");
    let parts: Vec<Part<'_>> = (0..1001).map(|_| file("many", "x.txt", b"x")).collect();
    let (status, _) = app.post_form(create, None, &parts).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "more parts than the limit");
    // A name in JSON on create is not an upload.
    let (status, body) = app.post(create, None, json!({"one": "x_0123456789.txt"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["data"]["one"]["code"], "validation_invalid_file");
    assert!(app.stored().await.is_empty(), "{:?}", app.stored().await);
}

#[tokio::test]
async fn hostile_bodies_and_names() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let coll = docs(&app, &su).await;
    let cid = coll["id"].as_str().expect("id").to_string();
    let create = "/api/collections/docs/records";
    let mp = format!("multipart/form-data; boundary={BOUNDARY}");
    // A broken boundary, a body that never ends, a part without a name.
    let (status, body) =
        app.send_form(reqwest::Method::POST, create, None, b"--other\r\nfoo".to_vec(), &mp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["status"], 400);
    let cut = multipart(&[file("one", "a.txt", b"abc")]);
    let cut = cut[..cut.len() - 10].to_vec();
    let (status, _) = app.send_form(reqwest::Method::POST, create, None, cut, &mp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let noname = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; filename=\"a.txt\"\r\n\r\nhi\r\n--{BOUNDARY}--\r\n"
    );
    let (status, body) =
        app.send_form(reqwest::Method::POST, create, None, noname.into_bytes(), &mp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = app
        .send_form(reqwest::Method::POST, create, None, b"x".to_vec(), "multipart/form-data")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no boundary at all");
    assert!(app.stored().await.is_empty());

    // Traversal and odd names end up as safe names inside the record's folder.
    for hostile in
        ["../../etc/passwd", "..%2f..%2fdata.db", "/abs/path.txt", "..", "C:\\x\\..\\y.txt"]
    {
        let (status, rec) = app.post_form(create, None, &[file("one", hostile, b"x")]).await;
        assert_eq!(status, StatusCode::OK, "{hostile}: {rec}");
        let name = rec["one"].as_str().expect("name").to_string();
        let id = rec["id"].as_str().expect("id");
        assert!(!name.contains('/') && !name.contains("..") && !name.starts_with('.'), "{name}");
        assert!(app.stored().await.contains(&format!("{cid}/{id}/{name}")), "{hostile}");
    }
    let nul = multipart(&[file("one", "a\0b.txt", b"x")]);
    let (status, _) = app.send_form(reqwest::Method::POST, create, None, nul, &mp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "NUL in a file name");
    // A 0-byte file is a file (PocketBase accepts it); it downloads empty.
    let (status, rec) = app.post_form(create, None, &[file("one", "empty.txt", b"")]).await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    let res = app
        .raw_get(
            &format!(
                "/api/files/docs/{}/{}",
                rec["id"].as_str().expect("id"),
                rec["one"].as_str().expect("n")
            ),
            &[],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.bytes().await.expect("b").is_empty());
    // A decompression bomb: a valid upload (it is a PNG), but no thumbnail is made of it; the
    // original is served instead.
    let bomb = png_claiming(100_000);
    let (status, rec) = app.post_form(create, None, &[file("many", "bomb.png", &bomb)]).await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    let name = names(&rec["many"])[0].clone();
    let url = format!("/api/files/docs/{}/{name}?thumb=100x100", rec["id"].as_str().expect("id"));
    let res = app.raw_get(&url, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-disposition"], format!("inline; filename=\"{name}\""));
    assert_eq!(res.bytes().await.expect("b").to_vec(), bomb);
    assert!(!app.stored().await.iter().any(|k| k.contains("thumbs_")), "no thumb stored");
    // Uploads under non-file keys or unknown keys store nothing.
    let before = app.stored().await.len();
    let (status, rec) = app
        .post_form(create, None, &[file("title", "t.txt", b"t"), file("nofield", "n.txt", b"n")])
        .await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    assert_eq!(app.stored().await.len(), before);
}

#[tokio::test]
async fn protected_files_need_a_file_token_and_the_view_rule() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    let (alice, alice_token) = app.create_user("alice@example.com", "password123").await;
    let (_, bob_token) = app.create_user("bob@example.com", "password123").await;
    app.create_collection(
        &su,
        json!({"name": "vault", "type": "base",
            "createRule": "@request.auth.id != ''", "viewRule": "owner = @request.auth.id",
            "fields": [
                {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
                {"name": "secret", "type": "file", "maxSelect": 1, "protected": true},
                {"name": "open", "type": "file", "maxSelect": 1}
            ]}),
    )
    .await;
    let (status, rec) = app
        .post_form(
            "/api/collections/vault/records",
            Some(&alice_token),
            &[
                value("owner", &alice),
                file("secret", "s.txt", b"top secret"),
                file("open", "o.txt", b"open"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    let id = rec["id"].as_str().expect("id");
    let url = format!("/api/files/vault/{id}/{}", rec["secret"].as_str().expect("name"));

    let (status, body) = app.post("/api/files/token", None, json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = app.post("/api/files/token", Some(&alice_token), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let alice_file = body["token"].as_str().expect("token").to_string();
    let (_, body) = app.post("/api/files/token", Some(&bob_token), json!({})).await;
    let bob_file = body["token"].as_str().expect("token").to_string();
    let (_, body) = app.post("/api/files/token", Some(&su), json!({})).await;
    let su_file = body["token"].as_str().expect("token").to_string();
    // PocketBase's claims: id, collectionId, type "file", exp 180 s ahead.
    let mut insecure = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    insecure.insecure_disable_signature_validation();
    let claims = jsonwebtoken::decode::<Value>(
        &alice_file,
        &jsonwebtoken::DecodingKey::from_secret(&[]),
        &insecure,
    )
    .expect("a JWT")
    .claims;
    assert_eq!(claims["type"], "file");
    assert_eq!(claims["id"], alice.as_str());
    assert_eq!(claims["collectionId"], "_pb_users_auth_");
    let ttl = claims["exp"].as_i64().expect("exp") - chrono::Utc::now().timestamp();
    assert!((170..=181).contains(&ttl), "{ttl}");

    for (who, query, headers) in [
        ("anonymous", String::new(), vec![]),
        ("alice's auth header only", String::new(), vec![("Authorization", alice_token.as_str())]),
        ("alice's auth token as ?token", format!("?token={alice_token}"), vec![]),
        ("bob's file token", format!("?token={bob_file}"), vec![]),
        ("a forged token", "?token=eyJhbGciOiJub25lIn0.e30.".to_string(), vec![]),
    ] {
        let res = app.raw_get(&format!("{url}{query}"), &headers).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{who}");
        assert!(!res.text().await.expect("t").contains("top secret"), "{who}");
    }
    for (who, token) in [("alice", &alice_file), ("a superuser", &su_file)] {
        let res = app.raw_get(&format!("{url}?token={token}"), &[]).await;
        assert_eq!(res.status(), StatusCode::OK, "{who}");
        assert_eq!(res.text().await.expect("t"), "top secret");
    }
    // Unprotected files are served to anyone who knows the name (PocketBase: the names are
    // unguessable; `<img src>` sends no token).
    let open = format!("/api/files/vault/{id}/{}", rec["open"].as_str().expect("name"));
    assert_eq!(app.raw_get(&open, &[]).await.status(), StatusCode::OK);

    // The collection's `fileToken` options: the duration is checked as PocketBase checks it
    // and used; the secret is write-only, and changing it revokes every file token (and no
    // auth token).
    for (body, key, code) in [
        (
            json!({"fileToken": {"duration": 9}}),
            "duration",
            "validation_min_greater_equal_than_required",
        ),
        (
            json!({"fileToken": {"duration": 94_670_857}}),
            "duration",
            "validation_max_less_equal_than_required",
        ),
        (json!({"fileToken": {"secret": "short"}}), "secret", "validation_length_out_of_range"),
    ] {
        let (status, res) = app.patch("/api/collections/users", Some(&su), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
        assert_eq!(res["data"]["fileToken"][key]["code"], code, "{res}");
    }
    let (status, res) = app
        .patch("/api/collections/users", Some(&su), json!({"fileToken": {"duration": 60}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(res["fileToken"], json!({"duration": 60}), "no secret is shown");
    let (_, body) = app.post("/api/files/token", Some(&alice_token), json!({})).await;
    let short = body["token"].as_str().expect("token").to_string();
    let claims = jsonwebtoken::decode::<Value>(
        &short,
        &jsonwebtoken::DecodingKey::from_secret(&[]),
        &insecure,
    )
    .expect("a JWT")
    .claims;
    let ttl = claims["exp"].as_i64().expect("exp") - chrono::Utc::now().timestamp();
    assert!((50..=61).contains(&ttl), "{ttl}");
    assert_eq!(app.raw_get(&format!("{url}?token={short}"), &[]).await.status(), StatusCode::OK);
    let rotated = json!({"fileToken": {"secret": "abcdefghijabcdefghijabcdefghij-rotated"}});
    let (status, res) = app.patch("/api/collections/users", Some(&su), rotated).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    let res = app.raw_get(&format!("{url}?token={short}"), &[]).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "a file token signed with the old secret");
    let (status, _) = app.post("/api/files/token", Some(&alice_token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "alice's auth token still works");
}

#[tokio::test]
async fn multipart_bodies_work_on_every_endpoint_and_failed_writes_store_nothing() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    // A FormData login, as pocketbase-typegen does.
    let (status, body) = app
        .post_form(
            "/api/collections/_superusers/auth-with-password",
            None,
            &[
                value("identity", crate::helpers::SU_EMAIL),
                value("password", crate::helpers::SU_PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["token"].is_string());
    app.create_collection(
        &su,
        json!({"name": "uniq", "type": "base", "createRule": "",
            "fields": [{"name": "title", "type": "text"}, {"name": "doc", "type": "file", "maxSelect": 1}],
            "indexes": ["CREATE UNIQUE INDEX idx_uniq_title ON uniq (title)"]}),
    )
    .await;
    let create = "/api/collections/uniq/records";
    let (status, first) =
        app.post_form(create, None, &[value("title", "same"), file("doc", "a.txt", b"a")]).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(app.stored().await.len(), 1);
    let (status, body) =
        app.post_form(create, None, &[value("title", "same"), file("doc", "b.txt", b"b")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["data"]["title"]["code"], "validation_not_unique");
    assert_eq!(app.stored().await.len(), 1, "the failed write's upload was removed");
    // @jsonPayload merges over the form values.
    let (status, rec) = app
        .post_form(
            create,
            None,
            &[value("title", "x"), value("@jsonPayload", r#"{"title":"from json"}"#)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    assert_eq!(rec["title"], "from json");
}

/// Two instances on one PostgreSQL database and one storage (a bucket, or a shared directory):
/// a file uploaded through one downloads from the other, and a delete through the other
/// removes it for both.
#[tokio::test]
async fn two_instances_share_uploads() {
    let Some(server) = pg_test_server::server("files across instances on one PostgreSQL database")
    else {
        return;
    };
    let db = TestDb::create(&server).await;
    let a = spawn_app_on(&db.url()).await;
    let b = spawn_app_sharing_files(&db.url(), &a).await;
    let su = a.su_token().await;
    docs(&a, &su).await;
    let seen = eventually(Duration::from_secs(10), || async {
        b.get("/api/collections/docs/records", None).await.0 == StatusCode::OK
    })
    .await;
    assert!(seen, "B never saw the collection");
    let (status, rec) = a
        .post_form("/api/collections/docs/records", None, &[file("one", "shared.txt", b"from A")])
        .await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    let id = rec["id"].as_str().expect("id");
    let res =
        b.raw_get(&format!("/api/files/docs/{id}/{}", rec["one"].as_str().expect("n")), &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.expect("t"), "from A");
    let (status, _) = b.delete(&format!("/api/collections/docs/records/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let gone = eventually(Duration::from_secs(5), || async { a.stored().await.is_empty() }).await;
    assert!(gone, "{:?}", a.stored().await);
}

/// A record write may carry more than the usual 32 MiB when its file fields allow it (32 MiB
/// plus `maxSize × maxSelect` of each, as PocketBase); other bodies keep the limit.
#[tokio::test]
async fn file_fields_raise_the_body_limit_of_record_writes() {
    let app = spawn_app().await;
    let su = app.su_token().await;
    app.create_collection(
        &su,
        json!({"name": "videos", "type": "base", "createRule": "", "viewRule": "",
            "fields": [{"name": "clip", "type": "file", "maxSelect": 1, "maxSize": 40 << 20}]}),
    )
    .await;
    docs(&app, &su).await;
    let big: Vec<u8> = (0..(33u32 << 20)).map(|i| (i % 251) as u8).collect();
    let (status, rec) = app
        .post_form("/api/collections/videos/records", None, &[file("clip", "v.bin", &big)])
        .await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    let url = format!(
        "/api/files/videos/{}/{}",
        rec["id"].as_str().expect("id"),
        rec["clip"].as_str().expect("n")
    );
    let res = app.raw_get(&url, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-length"], big.len().to_string().as_str());
    assert!(res.bytes().await.expect("body").as_ref() == big.as_slice(), "the same bytes back");
    // `docs` allows 32 MiB + 25 MiB + 10 bytes (one 5 MiB, many 3 × 5 MiB, tiny, prot 5 MiB).
    let huge = vec![b'x'; 90 << 20];
    let (status, _) =
        app.post_form("/api/collections/docs/records", None, &[file("one", "h.txt", &huge)]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // A JSON body keeps the usual limit.
    let (status, _) = app
        .send_form(
            reqwest::Method::POST,
            "/api/collections/videos/records",
            None,
            vec![b' '; 33 << 20],
            "application/json",
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let stored = app.stored().await;
    assert_eq!(stored.len(), 1, "{stored:?}");
}
