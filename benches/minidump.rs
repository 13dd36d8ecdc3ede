//! Minidump processing (criterion; `cargo bench --bench minidump`), on
//! `fixtures/minidump/out/c_threads20.dmp` (20 threads, 4 modules; the program's binary
//! uploaded, libc not):
//!
//! - `tracemap_http_warm`: the real binary (`tracemap serve` on loopback), one multipart
//!   `POST …/symbolicate/minidump` after the caches are warm: receive, walk every thread with
//!   CFI, symbolicate with inlines, JSON. Warm processing reads no debug file (the CFI and
//!   symbol caches are in memory; `tests/api/minidump.rs` proves it by deleting the blobs).
//! - `tracemap_walk_only`: `native::walk` in-process with the module's CFI and SymCache
//!   already parsed: the stack walker alone.
//! - `minidump_stackwalk`: rust-minidump's own CLI (`cargo install minidump-stackwalk`) on
//!   the same dump with Breakpad symbols made by `dump_syms --inlines` (JSON to /dev/null).
//!   It has no warm mode: each run starts a process and parses the `.sym` file, which is how
//!   it is used.
//!
//! Tools: `MINIDUMP_STACKWALK` and `DUMP_SYMS` name the binaries, else they are looked up on
//! `PATH`, `~/.cargo/bin` and `/tmp/mdsw/bin`. A missing tool fails the bench.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use tracemap::native::{build_cache, build_cfi, BuildInput, CfiFile, ModuleData};

fn fixture(rel: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/minidump/out")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn tool(env: &str, name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env) {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(PathBuf::from)
        .collect();
    dirs.push(Path::new(&home).join(".cargo/bin"));
    dirs.push(PathBuf::from("/tmp/mdsw/bin"));
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found: set {env} or `cargo install {name}`"))
}

/// `dump_syms --inlines` of the program, laid out as `name/ID/name.sym`.
fn breakpad_symbols(dir: &Path) {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/minidump/out/c_threads20");
    let out = Command::new(tool("DUMP_SYMS", "dump_syms"))
        .arg("--inlines")
        .arg(&bin)
        .output()
        .expect("dump_syms runs");
    assert!(out.status.success(), "dump_syms failed");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let id = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(3))
        .expect("MODULE line");
    let d = dir.join("c_threads20").join(id);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("c_threads20.sym"), text).unwrap();
}

fn bench(c: &mut Criterion) {
    let dump = fixture("c_threads20.dmp");
    let binary = fixture("c_threads20");
    let mut group = c.benchmark_group("minidump");
    group.sample_size(30);

    // The walker alone.
    let header = tracemap::native::read_modules(&dump).expect("dump");
    let main = header
        .modules
        .iter()
        .find(|m| m.code_file.ends_with("/c_threads20"))
        .expect("program module");
    let cfi = CfiFile::parse(&build_cfi(&binary, 0).unwrap()).unwrap();
    let symcache = build_cache(&BuildInput::new(&binary)).unwrap();
    let mut modules = HashMap::new();
    modules.insert(
        main.base,
        ModuleData {
            cfi: Some(Arc::new(cfi)),
            symbols: Some(Arc::new(symcache)),
        },
    );
    group.bench_function("tracemap_walk_only", |b| {
        b.iter(|| tracemap::native::walk(&dump, &modules).expect("walk"))
    });

    // The service, warm, over HTTP.
    let server = common::start(&[]);
    let base = server.base.clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    rt.block_on(async {
        client
            .post(format!(
                "{base}/api/v1/projects/app/debug-files?name=c_threads20"
            ))
            .body(binary.clone())
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    });
    let post = || async {
        let form = reqwest::multipart::Form::new().part(
            "upload_file_minidump",
            reqwest::multipart::Part::bytes(dump.clone()).file_name("c.dmp"),
        );
        let v: serde_json::Value = client
            .post(format!("{base}/api/v1/projects/app/symbolicate/minidump"))
            .multipart(form)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["stacktraces"].as_array().map(Vec::len), Some(20));
    };
    rt.block_on(post());
    group.bench_function("tracemap_http_warm", |b| b.iter(|| rt.block_on(post())));

    // rust-minidump's CLI with dump_syms symbols.
    let syms = tempfile::tempdir().unwrap();
    breakpad_symbols(syms.path());
    let dump_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/minidump/out/c_threads20.dmp");
    let stackwalk = tool("MINIDUMP_STACKWALK", "minidump-stackwalk");
    group.bench_function("minidump_stackwalk", |b| {
        b.iter(|| {
            let out = Command::new(&stackwalk)
                .arg("--json")
                .arg("--symbols-path")
                .arg(syms.path())
                .arg(&dump_path)
                .output()
                .expect("minidump-stackwalk runs");
            assert!(out.status.success());
        })
    });
    group.finish();
    println!(
        "tracemap RSS after the warm runs: {} KiB",
        common::rss_kib(server.child.id())
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
