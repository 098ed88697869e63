//! Architecture invariants, checked on the source text of every file under `src/`: module docs,
//! where SQL and the database/web crates may appear, and the allowed `crate::` dependencies
//! between layers (`docs/architecture.md`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

struct Source {
    /// Path relative to `src/`, with `/` separators.
    rel: String,
    text: String,
    /// The text with comments removed (strings kept).
    code: String,
    /// The text with comments and string/char literals removed.
    bare: String,
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<Source> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&src, &mut files);
    files.sort();
    assert!(files.len() > 10, "found only {} files under {}", files.len(), src.display());
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read");
            let rel = p.strip_prefix(&src).expect("under src").to_string_lossy().replace('\\', "/");
            let (code, bare) = strip(&text);
            Source { rel, text, code, bare }
        })
        .collect()
}

/// Removes comments (→ `code`) and additionally string and char literals (→ `bare`).
/// Newlines are kept so line numbers survive.
fn strip(text: &str) -> (String, String) {
    let chars: Vec<char> = text.chars().collect();
    let (mut code, mut bare) = (String::new(), String::new());
    let mut i = 0;
    let push_both = |c: char, code: &mut String, bare: &mut String| {
        code.push(c);
        bare.push(c);
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        push_both('\n', &mut code, &mut bare);
                    }
                    i += 1;
                }
            }
            continue;
        }
        // Raw strings: r"…", r#"…"#, br"…".
        let raw_start = if c == 'r' && matches!(next, Some('"' | '#')) {
            Some(i + 1)
        } else if c == 'b' && next == Some('r') && matches!(chars.get(i + 2), Some('"' | '#')) {
            Some(i + 2)
        } else {
            None
        };
        let ident_before = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if let (Some(mut j), false) = (raw_start, ident_before) {
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) == Some(&'"') {
                code.extend(&chars[i..=j]);
                j += 1;
                while j < chars.len() {
                    if chars[j] == '"' && (0..hashes).all(|h| chars.get(j + 1 + h) == Some(&'#')) {
                        break;
                    }
                    code.push(chars[j]);
                    if chars[j] == '\n' {
                        bare.push('\n');
                    }
                    j += 1;
                }
                code.push('"');
                code.extend(std::iter::repeat_n('#', hashes));
                bare.push_str("\"\"");
                i = j + 1 + hashes;
                continue;
            }
        }
        if c == '"' {
            code.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    code.push(chars[i]);
                    i += 1;
                }
                if let Some(&ch) = chars.get(i) {
                    code.push(ch);
                    if ch == '\n' {
                        bare.push('\n');
                    }
                }
                i += 1;
            }
            code.push('"');
            bare.push_str("\"\"");
            i += 1;
            continue;
        }
        if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') rather than a lifetime ('a).
            let is_char = next == Some('\\') || chars.get(i + 2) == Some(&'\'');
            if is_char {
                let mut j = i + 1;
                if chars.get(j) == Some(&'\\') {
                    j += 1;
                }
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
                code.extend(&chars[i..=j.min(chars.len() - 1)]);
                bare.push_str("' '");
                i = j + 1;
                continue;
            }
        }
        push_both(c, &mut code, &mut bare);
        i += 1;
    }
    (code, bare)
}

fn top_module(rel: &str) -> String {
    let first = rel.split('/').next().unwrap_or(rel);
    first.trim_end_matches(".rs").to_string()
}

/// The module path of a file (`service/records.rs` → [service, records]; `mod.rs` → its dir).
fn module_path(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    let last = parts.pop().unwrap_or_default();
    if last != "mod.rs" && last != "lib.rs" && last != "main.rs" {
        parts.push(last.trim_end_matches(".rs").to_string());
    }
    parts
}

/// Top-level modules a file refers to through `crate::…` (incl. `crate::{a, b}`) and
/// `super::` chains that climb out of its own top module.
fn crate_edges(src: &Source) -> BTreeSet<(String, usize)> {
    let mut out = BTreeSet::new();
    let bare = &src.bare;
    for (line_no, line) in bare.lines().enumerate() {
        let mut rest = line;
        while let Some(pos) = rest.find("crate::") {
            let before = rest[..pos].chars().last();
            let after = &rest[pos + "crate::".len()..];
            rest = after;
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // e.g. `mycrate::`
            }
            let after = after.trim_start();
            if let Some(group) = after.strip_prefix('{') {
                let mut depth = 0;
                let mut item = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            push_ident(&item, line_no, &mut out);
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
                push_ident(&item, line_no, &mut out);
            } else {
                push_ident(after, line_no, &mut out);
            }
        }
        let mut rest = line;
        while let Some(pos) = rest.find("super::") {
            let before = rest[..pos].chars().last();
            let tail = &rest[pos..];
            rest = &rest[pos + "super::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue; // counted with the first `super::` of the chain
            }
            let mut ups = 0;
            let mut t = tail;
            while let Some(r) = t.strip_prefix("super::") {
                ups += 1;
                t = r;
            }
            let here = module_path(&src.rel);
            if ups >= here.len() {
                push_ident(t, line_no, &mut out);
            }
        }
    }
    out
}

fn push_ident(s: &str, line_no: usize, out: &mut BTreeSet<(String, usize)>) {
    let ident: String = s.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    if !ident.is_empty() && ident != "self" {
        out.insert((ident, line_no + 1));
    }
}

#[test]
fn every_source_file_starts_with_a_module_doc() {
    let missing: Vec<String> = sources()
        .iter()
        .filter(|s| !s.text.trim_start().starts_with("//!"))
        .map(|s| s.rel.clone())
        .collect();
    assert!(missing.is_empty(), "files without a leading `//!` doc comment: {missing:?}");
}

#[test]
fn sql_and_database_crates_only_in_store() {
    let needles = [
        "rusqlite",
        "sqlx",
        "SELECT ",
        "INSERT INTO",
        "DELETE FROM",
        "UPDATE ",
        "CREATE TABLE",
        "ALTER TABLE",
        "DROP TABLE",
        "PRAGMA ",
        "sqlite_master",
    ];
    let mut bad = Vec::new();
    for s in sources() {
        if s.rel.starts_with("store/") {
            continue;
        }
        for (n, line) in s.code.lines().enumerate() {
            for needle in needles {
                if line.contains(needle) {
                    bad.push(format!("src/{}:{}: `{needle}` in {:?}", s.rel, n + 1, line.trim()));
                }
            }
        }
    }
    assert!(bad.is_empty(), "SQL outside src/store/:\n{}", bad.join("\n"));
}

/// Inside `store/`, the database drivers belong to the engine directories: the algorithms
/// (`ddl.rs`, `work.rs`, `cascade.rs`, `stored.rs`, `query.rs`, …) are written once over
/// `engine::Tx` and `Dialect`, so a new store method needs one implementation.
#[test]
fn driver_crates_only_in_engine_directories() {
    // `migrate.rs` applies each engine's embedded migration files; `pg_test_db.rs` is test
    // scaffolding that creates databases.
    let allowed = ["store/sqlite/", "store/postgres/", "store/migrate.rs", "store/pg_test_db.rs"];
    let mut bad = Vec::new();
    for s in sources() {
        if !s.rel.starts_with("store/") || allowed.iter().any(|a| s.rel.starts_with(a)) {
            continue;
        }
        for (n, line) in s.code.lines().enumerate() {
            if line.contains("rusqlite") || line.contains("sqlx::") || line.contains("use sqlx") {
                bad.push(format!("src/{}:{}: {:?}", s.rel, n + 1, line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "database drivers outside the engine directories:\n{}", bad.join("\n"));
}

#[test]
fn axum_only_in_http_and_app() {
    let mut bad = Vec::new();
    for s in sources() {
        if s.rel.starts_with("http/") || s.rel == "app.rs" {
            continue;
        }
        for (n, line) in s.code.lines().enumerate() {
            if line.contains("axum") || line.contains("tower_http") || line.contains("hyper::") {
                bad.push(format!("src/{}:{}: {:?}", s.rel, n + 1, line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "web framework outside src/http and src/app.rs:\n{}", bad.join("\n"));
}

/// The process environment is one of the configuration's sources: only `config/` reads it
/// (plus test code choosing its test servers: `pg_test_server.rs`, `*_tests.rs`), so no
/// setting is a hidden input.
#[test]
fn only_config_reads_the_environment() {
    let mut bad = Vec::new();
    for s in sources() {
        let test_code = s.rel == "store/pg_test_server.rs" || s.rel.ends_with("_tests.rs");
        if s.rel.starts_with("config/") || test_code {
            continue;
        }
        for (n, line) in s.bare.lines().enumerate() {
            if line.contains("env::var") || line.contains("env::vars") {
                bad.push(format!("src/{}:{}: {:?}", s.rel, n + 1, line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "environment read outside src/config/:\n{}", bad.join("\n"));
}

#[test]
fn layer_dependencies_point_inwards() {
    let allowed: &[(&str, &[&str])] = &[
        ("model", &["model", "util"]),
        ("store", &["store", "model", "util", "config"]),
        ("service", &["service", "store", "files", "model", "util"]),
        ("realtime", &["realtime", "service", "store", "model", "util"]),
        ("jobs", &["jobs", "service", "store", "model", "util"]),
        ("http", &["http", "realtime", "service", "files", "model", "util"]),
        ("files", &["files", "util"]),
        ("util", &["util"]),
        ("config", &["config", "util"]),
        ("cli", &["cli", "app", "config", "service", "store", "util"]),
        (
            "app",
            &["app", "config", "http", "realtime", "jobs", "service", "store", "files", "util"],
        ),
    ];
    let mut bad = Vec::new();
    let mut seen = 0;
    for s in sources() {
        let module = top_module(&s.rel);
        let Some((_, ok)) = allowed.iter().find(|(m, _)| *m == module) else { continue };
        for (target, line) in crate_edges(&s) {
            seen += 1;
            if !ok.contains(&target.as_str()) {
                bad.push(format!("src/{}:{line}: {module} → {target}", s.rel));
            }
        }
    }
    assert!(seen > 20, "parsed only {seen} crate:: edges; the parser is broken");
    assert!(bad.is_empty(), "forbidden dependencies:\n{}", bad.join("\n"));
}

/// `main.rs` only starts the CLI: it names no module of the library but `cli`.
#[test]
fn main_only_calls_the_cli() {
    let main = sources().into_iter().find(|s| s.rel == "main.rs").expect("src/main.rs");
    let mut named: Vec<&str> = main
        .bare
        .match_indices("basalt::")
        .map(|(i, _)| i)
        .map(|i| {
            let rest = &main.bare[i + "basalt::".len()..];
            let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();
    named.sort_unstable();
    named.dedup();
    assert_eq!(named, ["cli"], "main.rs reaches past the CLI");
}

/// Inside `service`, use-case modules do not import each other in a circle (shared pieces such
/// as passwords and request parameters live in their own modules); `mod.rs` is the hub.
#[test]
fn service_modules_form_no_cycle() {
    let mut edges: BTreeSet<(String, String)> = BTreeSet::new();
    for s in sources() {
        let Some(name) = s.rel.strip_prefix("service/").and_then(|r| r.strip_suffix(".rs")) else {
            continue;
        };
        if name == "mod" {
            continue;
        }
        for (i, _) in s.bare.match_indices("crate::service::") {
            let rest = &s.bare[i + "crate::service::".len()..];
            let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
            let target = &rest[..end];
            // Items of `service/mod.rs` (`Service`, `Result`, …) start with a capital or are
            // helpers of the hub; only sibling modules count.
            if target != name && sources().iter().any(|x| x.rel == format!("service/{target}.rs")) {
                edges.insert((name.to_string(), target.to_string()));
            }
        }
    }
    assert!(edges.len() > 3, "parsed only {edges:?}; the parser is broken");
    fn reaches(
        edges: &BTreeSet<(String, String)>,
        from: &str,
        to: &str,
        seen: &mut Vec<String>,
    ) -> bool {
        for (_, b) in edges.iter().filter(|(a, _)| a == from) {
            if b == to {
                return true;
            }
            if !seen.contains(b) {
                seen.push(b.clone());
                if reaches(edges, b, to, seen) {
                    return true;
                }
            }
        }
        false
    }
    let cycles: Vec<String> = edges
        .iter()
        .filter(|(a, b)| reaches(&edges, b, a, &mut Vec::new()))
        .map(|(a, b)| format!("service/{a} → service/{b}"))
        .collect();
    assert!(
        cycles.is_empty(),
        "service modules import each other in a circle:\n{}",
        cycles.join("\n")
    );
}

/// The checks above must be able to fail: run them on known-bad snippets.
#[test]
fn the_checkers_catch_violations() {
    let (code, bare) = strip("//! doc\nuse crate::{store::Store, model};\nfn f() { crate::http::x(); let s = \"// not a comment SELECT \"; } // SELECT in comment\n/* crate::cli */");
    assert!(code.contains("SELECT \""), "strings survive in code: {code}");
    assert!(
        !code.contains("in comment") && !code.contains("crate::cli"),
        "comments removed: {code}"
    );
    assert!(!bare.contains("not a comment"), "strings removed in bare: {bare}");
    let src = Source { rel: "model/x.rs".into(), text: String::new(), code, bare };
    let edges: Vec<String> = crate_edges(&src).into_iter().map(|(m, _)| m).collect();
    assert_eq!(edges, ["http", "model", "store"]);
    let (_, bare) = strip("fn f() { super::super::store::x(); super::y(); }");
    let src = Source { rel: "model/a.rs".into(), text: String::new(), code: String::new(), bare };
    let edges: Vec<String> = crate_edges(&src).into_iter().map(|(m, _)| m).collect();
    assert_eq!(edges, ["store"], "super:: climbing out of model");
    let (_, bare) =
        strip("let c = 'a'; let l: &'static str = r#\"crate::http\"#; crate::util::x();");
    let src = Source { rel: "util/mod.rs".into(), text: String::new(), code: String::new(), bare };
    let edges: Vec<String> = crate_edges(&src).into_iter().map(|(m, _)| m).collect();
    assert_eq!(edges, ["util"]);
}
