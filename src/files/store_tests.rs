//! `FileStore` tests: the local disk in a temp dir (always), and a real S3-compatible server when
//! `BASALT_TEST_S3` says which: an `http://host:port` URL of a running server that accepts
//! unsigned bucket creation (moto), or the path of a `moto_server` executable that the test
//! starts on a free loopback port. Without it the S3 test prints SKIPPED, appends its name to
//! `BASALT_SKIP_LOG` and passes.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use super::*;

fn key(name: &str) -> FileKey {
    FileKey::file("pbc_1", "rec1", name).expect("key")
}

async fn read(store: &FileStore, k: &FileKey, range: Option<Range<u64>>) -> Vec<u8> {
    let d = store.get(k, range).await.expect("get");
    let mut out = Vec::new();
    let mut s = d.stream;
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.expect("chunk"));
    }
    out
}

fn chunks(data: &[u8], size: usize) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
    let parts: Vec<_> = data.chunks(size).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    futures_util::stream::iter(parts)
}

/// The behaviour every backend must share.
async fn exercise(store: &FileStore) {
    let k = key("a_0123456789.txt");
    assert!(!store.exists(&k).await.expect("exists"));
    assert!(matches!(store.head(&k).await, Err(FileError::NotFound)));
    assert!(matches!(store.get(&k, None).await, Err(FileError::NotFound)));

    let info = store.put_bytes(&k, Bytes::from_static(b"hello world"), Some("text/plain")).await;
    let info = info.expect("put");
    assert_eq!((info.size, info.multipart), (11, false));
    assert!(store.exists(&k).await.expect("exists"));
    let meta = store.head(&k).await.expect("head");
    assert_eq!(meta.size, 11);
    assert!(meta.e_tag.is_some());
    assert_eq!(read(store, &k, None).await, b"hello world");
    assert_eq!(read(store, &k, Some(6..11)).await, b"world");
    let d = store.get(&k, Some(0..5)).await.expect("range");
    assert_eq!((d.range.clone(), d.meta.size), (0..5, 11));
    assert!(matches!(store.get(&k, Some(20..30)).await, Err(FileError::RangeNotSatisfiable)));
    assert!(matches!(store.get(&k, Some(3..3)).await, Err(FileError::RangeNotSatisfiable)));
    assert_eq!(store.detect_type(&k, meta.size).await.expect("sniff").mime, mime::TEXT_PLAIN_UTF8);

    // A multipart upload: 3.5 parts of a small part size, in uneven chunks.
    let big: Vec<u8> = (0..(350 * 1024u32)).map(|i| (i % 251) as u8).collect();
    let kb = key("big_0123456789.bin");
    let info = store.put_stream(&kb, chunks(&big, 7_777), None).await.expect("multipart");
    assert_eq!((info.size, info.multipart), (big.len() as u64, true));
    assert_eq!(read(store, &kb, None).await, big);
    assert_eq!(read(store, &kb, Some(100_000..100_010)).await, &big[100_000..100_010]);

    // A failing source leaves nothing behind, multipart or not.
    for (k, pre) in [(key("fail_small.bin"), 10usize), (key("fail_big.bin"), 200 * 1024)] {
        let mut items: Vec<Result<Bytes, std::io::Error>> = vec![Ok(Bytes::from(vec![1u8; pre]))];
        items.push(Err(std::io::Error::other("client went away")));
        let res = store.put_stream(&k, futures_util::stream::iter(items), None).await;
        assert!(matches!(res, Err(FileError::Source(_))), "{res:?}");
        assert!(!store.exists(&k).await.expect("exists"), "{k} left behind");
    }

    // Thumbs and the prefix delete.
    let thumb = FileKey::thumb("pbc_1", "rec1", "a_0123456789.txt", "10x10").expect("thumb key");
    store.put_bytes(&thumb, Bytes::from_static(b"t"), None).await.expect("thumb");
    let other = FileKey::file("pbc_1", "rec2", "keep_0123456789.txt").expect("key");
    store.put_bytes(&other, Bytes::from_static(b"keep"), None).await.expect("other");
    let thumbs = KeyPrefix::thumbs("pbc_1", "rec1", "a_0123456789.txt").expect("prefix");
    assert_eq!(store.delete_prefix(&thumbs).await.expect("thumbs"), 1);
    assert!(store.exists(&k).await.expect("exists"), "the original stays");
    store.delete(&k).await.expect("delete");
    store.delete(&k).await.expect("deleting twice is fine");
    assert!(!store.exists(&k).await.expect("exists"));
    let rec1 = KeyPrefix::record("pbc_1", "rec1").expect("prefix");
    assert_eq!(store.delete_prefix(&rec1).await.expect("record"), 1);
    assert!(!store.exists(&kb).await.expect("exists"));
    assert!(store.exists(&other).await.expect("exists"), "rec2 is not under rec1");
    assert_eq!(store.delete_prefix(&rec1).await.expect("again"), 0);
}

#[tokio::test]
async fn local_store_under_data_dir_storage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FileStore::local(dir.path()).expect("local").with_multipart(64 * 1024, 100 * 1024);
    exercise(&store).await;

    // The bytes sit where PocketBase puts them.
    let k = key("x_0123456789.png");
    store
        .put_bytes(&k, Bytes::from_static(b"\x89PNG\r\n\x1a\n"), Some("image/png"))
        .await
        .expect("put");
    let on_disk = dir.path().join("storage/pbc_1/rec1/x_0123456789.png");
    assert_eq!(std::fs::read(&on_disk).expect("on disk"), b"\x89PNG\r\n\x1a\n");
    // The local disk keeps no content type; detection reads the bytes.
    let meta = store.head(&k).await.expect("head");
    assert_eq!(meta.content_type, None);
    assert_eq!(store.detect_type(&k, meta.size).await.expect("sniff").mime, "image/png");

    // A spooled upload streams from its file.
    let mut spool = tempfile::NamedTempFile::new().expect("spool");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 13) as u8).collect();
    spool.write_all(&data).expect("write");
    let kf = key("spooled_0123456789.bin");
    let info = store.put_file(&kf, spool.path(), None).await.expect("put_file");
    assert_eq!((info.size, info.multipart), (300_000, true));
    assert_eq!(read(&store, &kf, None).await, data);

    // Deleting a record's last file removes its folder too.
    store.delete_prefix(&KeyPrefix::record("pbc_1", "rec1").expect("p")).await.expect("delete");
    assert!(!dir.path().join("storage/pbc_1/rec1").exists());
}

#[tokio::test]
async fn in_memory_store_keeps_content_types() {
    let store = FileStore::new(Arc::new(object_store::memory::InMemory::new()), true)
        .with_multipart(64 * 1024, 100 * 1024);
    exercise(&store).await;
    let k = key("y_0123456789.png");
    store.put_bytes(&k, Bytes::from_static(b"x"), Some("image/png")).await.expect("put");
    assert_eq!(store.head(&k).await.expect("head").content_type.as_deref(), Some("image/png"));
}

#[test]
fn s3_config_hides_the_secret_and_reads_pocketbase_settings() {
    let cfg: S3Config = serde_json::from_value(serde_json::json!({
        "enabled": true, "bucket": "b", "region": "eu-west-1", "endpoint": "https://s3.example.com",
        "accessKey": "AKIA", "secret": "top-secret-value", "forcePathStyle": true
    }))
    .expect("settings");
    assert_eq!(cfg.access_key, "AKIA");
    assert!(cfg.force_path_style);
    let shown = format!("{cfg:?}");
    assert!(!shown.contains("top-secret-value") && shown.contains("[redacted]"), "{shown}");
    let store = FileStore::s3(&cfg).expect("builds without contacting anything");
    assert!(!format!("{store:?}").contains("top-secret-value"));
}

#[test]
fn s3_endpoints() {
    let cfg = |endpoint: &str, force_path_style| S3Config {
        endpoint: endpoint.into(),
        bucket: "bkt".into(),
        force_path_style,
        ..Default::default()
    };
    let ep = |c: &S3Config| s3_endpoint(c).expect("endpoint");
    assert_eq!(ep(&cfg("http://127.0.0.1:9000", true)), ("http://127.0.0.1:9000".into(), true));
    assert_eq!(
        ep(&cfg("https://s3.eu-central-1.amazonaws.com", false)),
        ("https://bkt.s3.eu-central-1.amazonaws.com".into(), false)
    );
    assert_eq!(ep(&cfg("https://bkt.r2.dev/", false)), ("https://bkt.r2.dev".into(), false));
    assert_eq!(ep(&cfg("minio.local:9000", true)), ("https://minio.local:9000".into(), false));
    assert!(s3_endpoint(&cfg("ftp://x", true)).is_err());
    assert!(FileStore::s3(&S3Config::default()).is_err(), "no bucket");
}

/// A moto server this test started; killed (by its own pid) when dropped.
struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The S3 endpoint to test against, or `None` after reporting the skip.
fn s3_server() -> Option<(String, Option<Moto>)> {
    let Some(spec) = std::env::var("BASALT_TEST_S3").ok().filter(|v| !v.trim().is_empty()) else {
        let test = std::thread::current().name().unwrap_or("(unnamed test)").to_string();
        eprintln!("SKIPPED: {test}: S3 storage (BASALT_TEST_S3 is not set)");
        if let Ok(log) = std::env::var("BASALT_SKIP_LOG") {
            let appended = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .and_then(|mut f| f.write_all(format!("{test}\tS3 storage\n").as_bytes()));
            if let Err(e) = appended {
                eprintln!("warning: cannot append to BASALT_SKIP_LOG {log}: {e}");
            }
        }
        return None;
    };
    if spec.starts_with("http://") || spec.starts_with("https://") {
        return Some((spec.trim_end_matches('/').to_string(), None));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(&spec)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("BASALT_TEST_S3={spec}: cannot start moto_server: {e}"));
    let moto = Moto(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "moto_server did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some((format!("http://127.0.0.1:{port}"), Some(moto)))
}

#[tokio::test]
async fn s3_store_against_a_real_server() {
    let Some((endpoint, _moto)) = s3_server() else { return };
    let bucket = format!("basalt-{}", crate::util::new_record_id());
    // moto creates buckets from an unsigned request; a real S3 would need the bucket to exist.
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .expect("create bucket");
    assert!(created.status().is_success(), "create bucket: {}", created.status());
    let cfg = S3Config {
        endpoint: endpoint.clone(),
        bucket,
        region: "us-east-1".into(),
        access_key: "test".into(),
        secret: "test".into(),
        force_path_style: true,
    };
    // Small thresholds for the shared checks, then one real multipart upload with S3's minimum
    // part size.
    let store = FileStore::s3(&cfg).expect("s3").with_multipart(64 * 1024, 100 * 1024);
    exercise_s3_small(&store).await;
    let store = FileStore::s3(&cfg).expect("s3");
    let big: Vec<u8> = (0..(11 * 1024 * 1024u32)).map(|i| (i % 253) as u8).collect();
    let k = key("big_0123456789.bin");
    let info =
        store.put_stream(&k, chunks(&big, 64 * 1024), Some("application/octet-stream")).await;
    let info = info.expect("multipart put");
    assert_eq!((info.size, info.multipart), (big.len() as u64, true));
    let meta = store.head(&k).await.expect("head");
    assert_eq!(meta.size, big.len() as u64);
    assert_eq!(meta.content_type.as_deref(), Some("application/octet-stream"));
    assert_eq!(read(&store, &k, Some(5_000_000..5_000_100)).await, &big[5_000_000..5_000_100]);
    assert_eq!(read(&store, &k, None).await.len(), big.len());
    store.delete(&k).await.expect("delete");
}

/// The shared checks, minus the multipart part (S3 refuses parts under 5 MiB).
async fn exercise_s3_small(store: &FileStore) {
    let k = key("a_0123456789.txt");
    assert!(!store.exists(&k).await.expect("exists"));
    assert!(matches!(store.get(&k, None).await, Err(FileError::NotFound)));
    store.put_bytes(&k, Bytes::from_static(b"hello world"), Some("text/plain")).await.expect("put");
    let meta = store.head(&k).await.expect("head");
    assert_eq!((meta.size, meta.content_type.as_deref()), (11, Some("text/plain")));
    assert_eq!(read(store, &k, Some(6..11)).await, b"world");
    assert!(matches!(store.get(&k, Some(20..30)).await, Err(FileError::RangeNotSatisfiable)));
    let thumb = FileKey::thumb("pbc_1", "rec1", "a_0123456789.txt", "10x10").expect("thumb key");
    store.put_bytes(&thumb, Bytes::from_static(b"t"), None).await.expect("thumb");
    let rec1 = KeyPrefix::record("pbc_1", "rec1").expect("prefix");
    assert_eq!(store.delete_prefix(&rec1).await.expect("record"), 2);
    assert!(!store.exists(&k).await.expect("exists"));
}

/// Memory must not grow with the upload's size: 256 MiB streamed in fresh 64 KiB chunks raise
/// the peak RSS by far less than the file (about 13 MiB measured: the 5 MiB head and the parts
/// in flight). Measured in a process of its own (this test binary, running only
/// `upload_peak_probe`): the peak of this process is shared with every test running beside it,
/// which made the bound flaky. It fails if uploads start buffering whole files.
#[cfg(target_os = "linux")]
#[test]
fn uploads_do_not_buffer_whole_files() {
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args(["--exact", "files::store::tests::upload_peak_probe", "--ignored", "--nocapture"])
        .env("BASALT_UPLOAD_PROBE", "1")
        .output()
        .expect("run the probe");
    let text = String::from_utf8_lossy(&out.stdout);
    let grown: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("PEAK_GROWTH_MIB="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("the probe printed no figure: {text}"));
    assert!(grown < 64, "peak RSS grew by {grown} MiB for a 256 MiB upload");
}

/// The measurement behind `uploads_do_not_buffer_whole_files` (run only by it).
#[cfg(target_os = "linux")]
#[tokio::test]
#[ignore = "run by uploads_do_not_buffer_whole_files in a process of its own"]
async fn upload_peak_probe() {
    if std::env::var_os("BASALT_UPLOAD_PROBE").is_none() {
        return;
    }
    fn peak_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        let line = status.lines().find(|l| l.starts_with("VmHWM")).expect("VmHWM");
        line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("KiB")
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FileStore::local(dir.path()).expect("local");
    let before = peak_kib();
    let chunks = (0..4096u32).map(|i| Ok(Bytes::from(vec![i as u8; 64 * 1024])));
    let info = store.put_stream(&key("big.bin"), futures_util::stream::iter(chunks), None).await;
    assert_eq!(info.expect("put").size, 256 << 20);
    // The parent test reads this line (the probe's whole purpose is to print it).
    #[allow(clippy::print_stdout)]
    {
        println!("PEAK_GROWTH_MIB={}", peak_kib().saturating_sub(before) / 1024);
    }
}
