//! External symbol sources through HTTP: a real `debuginfod` (Debian's, started here on
//! loopback over fixture binaries), a Microsoft symbol store with CAB-compressed files and a
//! `file.ptr` (fixtures/sources), a Breakpad layout in a local directory, and a scripted
//! symbol server for every failure: 404, 500, slow, oversized, wrong file, unreachable,
//! redirects. Expected frames come from the native fixtures' llvm-symbolizer oracle, and for
//! libc from binutils `addr2line` on this machine's libc6-dbg.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tracemap::config::{Config, SourceConfig};

use crate::common::*;

// ---- a scripted symbol server ----------------------------------------------------------

#[derive(Clone)]
enum Answer {
    File(Vec<u8>),
    Status(u16),
    Slow(Duration, Vec<u8>),
    Redirect(String),
    /// A body of this many bytes, without a Content-Length.
    Endless(usize),
}

#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Script {
    fn set(&self, path: &str, a: Answer) {
        self.answers.lock().unwrap().insert(path.to_owned(), a);
    }
    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
    fn total(&self) -> usize {
        self.hits.lock().unwrap().values().sum()
    }
}

async fn serve(State(s): State<Script>, UrlPath(path): UrlPath<String>) -> Response {
    *s.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let answer = s.answers.lock().unwrap().get(&path).cloned();
    match answer {
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
        Some(Answer::File(b)) => b.into_response(),
        Some(Answer::Status(c)) => axum::http::StatusCode::from_u16(c).unwrap().into_response(),
        Some(Answer::Slow(d, b)) => {
            tokio::time::sleep(d).await;
            b.into_response()
        }
        Some(Answer::Redirect(to)) => (
            axum::http::StatusCode::FOUND,
            [(axum::http::header::LOCATION, to)],
        )
            .into_response(),
        Some(Answer::Endless(n)) => {
            let chunks = futures::stream::iter(
                (0..n / 4096).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; 4096]))),
            );
            axum::body::Body::from_stream(chunks).into_response()
        }
    }
}

/// Starts a scripted server; returns its base URL.
async fn scripted() -> (String, Script) {
    let script = Script::default();
    let app = axum::Router::new()
        .route("/{*path}", axum::routing::get(serve))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, script)
}

// ---- a real debuginfod ---------------------------------------------------------------

struct Debuginfod {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Debuginfod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tool_missing(tool: &str, how: &str) -> bool {
    if std::env::var_os(ALLOW_MISSING_TOOLS).is_some() {
        eprintln!("\n!!!!! {ALLOW_MISSING_TOOLS} is set and {tool} is missing: the test did NOT run ({how})\n");
        return true;
    }
    panic!("{tool} is missing: {how} (.ci/run installs it)");
}

/// Debian's `debuginfod` serving `files` (copied into a fresh directory) on a loopback port,
/// once it has indexed both the executable and the debug info of `ready_id`.
async fn debuginfod(files: &[PathBuf], ready_id: &str) -> Option<Debuginfod> {
    if Command::new("debuginfod")
        .arg("--version")
        .output()
        .is_err()
    {
        tool_missing("debuginfod", "apt-get install debuginfod");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("files");
    std::fs::create_dir_all(&served).unwrap();
    for f in files {
        std::fs::copy(f, served.join(f.file_name().unwrap())).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("debuginfod")
        .arg("-F")
        .arg(&served)
        .args(["-p", &port.to_string(), "-t", "0", "-d"])
        .arg(dir.path().join("db.sqlite"))
        .env_remove("DEBUGINFOD_URLS")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("debuginfod starts");
    let d = Debuginfod {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let client = reqwest::Client::new();
    loop {
        let mut ready = true;
        for what in ["executable", "debuginfo"] {
            let probe = client
                .get(format!("{}/buildid/{ready_id}/{what}", d.url))
                .send()
                .await;
            ready &= probe.is_ok_and(|r| r.status().is_success());
        }
        if ready {
            return Some(d);
        }
        assert!(
            Instant::now() < deadline,
            "debuginfod did not index the files"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---- helpers -------------------------------------------------------------------------

fn source(toml_text: &str) -> SourceConfig {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}\n{toml_text}"))
}

fn app_with(sources: Vec<SourceConfig>, edit: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::with_config(|c| {
        c.sources = sources;
        edit(c);
    })
}

fn native_oracle(name: &str) -> Value {
    serde_json::from_slice(&fixture(&format!("native/oracle/{name}.json"))).unwrap()
}

/// Up to `n` oracle samples inside functions with a line: (address, innermost function, line).
fn samples(oracle: &Value, n: usize) -> Vec<(u64, String, u64)> {
    oracle["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "mid")
        .filter_map(|s| {
            let f = s["llvm_symbolizer"].as_array()?.first()?;
            let addr =
                u64::from_str_radix(s["addr"].as_str()?.trim_start_matches("0x"), 16).ok()?;
            let line = f["line"].as_u64().filter(|&l| l > 0)?;
            Some((addr, f["function"].as_str()?.to_owned(), line))
        })
        .step_by(7)
        .take(n)
        .collect()
}

const IMAGE: u64 = 0x7f00_0000_0000;

/// A native request for one module (`module` without `image_addr`) and these module-relative
/// addresses.
fn event(module: Value, rel: &[u64]) -> Value {
    let mut module = module;
    module["image_addr"] = json!(format!("{IMAGE:#x}"));
    module["image_size"] = json!(0x100000);
    json!({
        "modules": [module],
        "stacktraces": [{"frames": rel.iter().map(|a| json!({
            "instruction_addr": format!("{:#x}", IMAGE + a), "adjust_instruction_addr": false
        })).collect::<Vec<_>>()}]
    })
}

fn assert_frames(v: &Value, expected: &[(u64, String, u64)]) {
    let frames = v["stacktraces"][0]["frames"].as_array().unwrap();
    for (addr, function, line) in expected {
        let innermost = frames
            .iter()
            .find(|f| f["instruction_addr"] == json!(format!("{:#x}", IMAGE + addr)))
            .unwrap_or_else(|| panic!("no frame for {addr:#x}: {v:#}"));
        assert_eq!(innermost["status"], "symbolicated", "{addr:#x}: {v:#}");
        // Names without parameter lists (PDB names carry them, llvm-symbolizer's do not).
        let name = innermost["function"].as_str().unwrap_or("");
        let name = name.split('(').next().unwrap_or(name);
        assert_eq!(name, function.as_str(), "{addr:#x}");
        assert_eq!(innermost["lineno"].as_u64(), Some(*line), "{addr:#x}");
    }
}

fn c_dwarf5_build_id() -> String {
    native_oracle("c_dwarf5")["build_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn c_dwarf5_module() -> Value {
    let o = native_oracle("c_dwarf5");
    json!({"type": "elf", "code_id": o["build_id"], "code_file": "/usr/bin/c_dwarf5", "arch": "x86_64"})
}

fn c_dwarf5_event() -> (Value, Vec<(u64, String, u64)>) {
    let s = samples(&native_oracle("c_dwarf5"), 6);
    let rel: Vec<u64> = s.iter().map(|x| x.0).collect();
    (event(c_dwarf5_module(), &rel), s)
}

fn statuses(v: &Value) -> Vec<(String, String)> {
    v["modules"][0]["candidates"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| {
                    (
                        c["source"].as_str().unwrap().to_owned(),
                        c["status"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

// ---- tests ---------------------------------------------------------------------------

#[tokio::test]
async fn debuginfod_serves_what_nobody_uploaded() {
    let out = fixtures().join("native/out");
    let build_id = c_dwarf5_build_id();
    let Some(d) = debuginfod(
        &[out.join("c_stripped_all"), out.join("c_dwarf5.debug")],
        &build_id,
    )
    .await
    else {
        return;
    };
    let app = app_with(
        vec![source(&format!(
            "id = \"distro\"\ntype = \"debuginfod\"\nurls = [\"{}\"]\nallow_private = true",
            d.url
        ))],
        |_| {},
    );
    let (request, expected) = c_dwarf5_event();
    let v = app.native("app", &request).await;
    assert_frames(&v, &expected);
    let module = &v["modules"][0];
    assert_eq!(module["debug_status"], "found");
    assert!(
        module["diagnostic"]
            .as_str()
            .unwrap()
            .contains("symbol source"),
        "{module}"
    );
    let locations: Vec<&str> = module["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["location"].as_str().unwrap())
        .collect();
    assert!(
        locations
            .iter()
            .any(|l| l.ends_with(&format!("/buildid/{build_id}/debuginfo"))),
        "{locations:?}"
    );
}

/// This machine's libc (stripped, from the distribution) and its debug file from
/// `libc6-dbg`, served by debuginfod; frames at a few exported functions resolve only
/// through it, and agree with binutils `addr2line` on the debug file.
#[tokio::test]
async fn libc_frames_resolve_through_debuginfod() {
    let libc = Path::new("/usr/lib/x86_64-linux-gnu/libc.so.6");
    let bytes = std::fs::read(libc).expect("libc");
    let facts = tracemap::native::describe(&bytes).expect("libc is ELF");
    let code_id = facts[0].code_id.clone().expect("libc has a build ID");
    let id = code_id.as_str().to_owned();
    let debug = PathBuf::from(format!(
        "/usr/lib/debug/.build-id/{}/{}.debug",
        &id[..2],
        &id[2..]
    ));
    if !debug.exists() {
        tool_missing("libc6-dbg", "apt-get install libc6-dbg");
        return;
    }
    // Addresses inside a few functions: their symbol value + 16 (object crate, not ours).
    use object::{Object, ObjectSymbol};
    let elf = object::File::parse(&*bytes).unwrap();
    let mut rel = Vec::new();
    for name in ["getenv", "malloc", "qsort_r", "setenv", "strtok_r", "abort"] {
        let sym = elf
            .dynamic_symbols()
            .find(|s| s.name() == Ok(name) && s.size() > 32)
            .unwrap_or_else(|| panic!("libc exports {name}"));
        rel.push(sym.address() + 16);
    }
    let Some(d) = debuginfod(&[libc.to_path_buf(), debug.clone()], &id).await else {
        return;
    };
    // The oracle: binutils addr2line on the debug file.
    let out = Command::new("addr2line")
        .arg("-e")
        .arg(&debug)
        .args(["-f", "-i", "-C"])
        .args(rel.iter().map(|a| format!("{a:#x}")))
        .output()
        .expect("addr2line runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let app = app_with(
        vec![source(&format!(
            "id = \"distro\"\ntype = \"debuginfod\"\nurl = \"{}\"\nallow_private = true",
            d.url
        ))],
        |_| {},
    );
    let v = app
        .native(
            "app",
            &event(
                json!({"type": "elf", "code_id": id, "code_file": "/usr/lib/x86_64-linux-gnu/libc.so.6", "arch": "x86_64"}),
                &rel,
            ),
        )
        .await;
    let frames = v["stacktraces"][0]["frames"].as_array().unwrap();
    // addr2line prints, per address, its inline chain innermost first (function, file:line).
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    for addr in &rel {
        let ours: Vec<&Value> = frames
            .iter()
            .filter(|f| f["instruction_addr"] == json!(format!("{:#x}", IMAGE + addr)))
            .collect();
        assert!(
            !ours.is_empty() && ours[0]["status"] == "symbolicated",
            "{addr:#x}: {v:#}"
        );
        for f in &ours {
            let (func, loc) = (lines[i], lines[i + 1]);
            i += 2;
            let line: u64 = loc
                .rsplit(':')
                .next()
                .and_then(|l| l.split_whitespace().next())
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            // binutils names the outermost function by its symbol, and glibc's symbol table
            // has the internal alias (`__GI_getenv`) at the same address as DWARF's `getenv`.
            let strip = |n: &str| n.strip_prefix("__GI_").unwrap_or(n).to_owned();
            assert_eq!(
                strip(f["function"].as_str().unwrap()),
                strip(func),
                "{addr:#x}"
            );
            assert_eq!(f["lineno"].as_u64().unwrap_or(0), line, "{addr:#x} {loc}");
        }
    }
    assert_eq!(
        i,
        lines.len(),
        "addr2line has more inline frames than we do:\n{text}"
    );
}

#[tokio::test]
async fn a_microsoft_symbol_store_with_cab_files_and_a_file_ptr() {
    let (base, script) = scripted().await;
    let root = fixtures().join("sources/symstore");
    for entry in walkdir::WalkDir::new(&root).into_iter().flatten() {
        if entry.file_type().is_file() {
            let rel = entry
                .path()
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            script.set(&rel, Answer::File(std::fs::read(entry.path()).unwrap()));
        }
    }
    let app = app_with(
        vec![source(&format!(
            "id = \"msft\"\ntype = \"http\"\nurl = \"{base}/\"\nlayout = \"symstore\"\nallow_private = true"
        ))],
        |_| {},
    );
    let o = native_oracle("c_pe");
    let vmaddr = 0x1_4000_0000u64;
    let s: Vec<(u64, String, u64)> = samples(&o, 6)
        .into_iter()
        .map(|(a, f, l)| (a - vmaddr, f, l))
        .collect();
    let rel: Vec<u64> = s.iter().map(|x| x.0).collect();
    let v = app
        .native(
            "app",
            &event(
                json!({"type": "pe", "code_id": o["code_id"], "debug_id": o["debug_id"],
                       "code_file": "C:\\build\\c_pe.exe", "debug_file": "C:\\build\\c_pe.pdb", "arch": "x86_64"}),
                &rel,
            ),
        )
        .await;
    assert_frames(&v, &s);
    // The PDB came compressed (`c_pe.pd_` after a 404 for `c_pe.pdb`), the executable through
    // its `file.ptr`.
    assert_eq!(
        script.hits("c_pe.pdb/AC26918480ACFBED4C4C44205044422E1/c_pe.pdb"),
        1
    );
    assert_eq!(
        script.hits("c_pe.pdb/AC26918480ACFBED4C4C44205044422E1/c_pe.pd_"),
        1
    );
    assert_eq!(script.hits("files/c_pe.exe"), 1);
    let st = statuses(&v);
    assert!(st.contains(&("msft".into(), "ok".into())), "{st:?}");
}

#[tokio::test]
async fn a_breakpad_layout_in_a_directory_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let sym = fixture("native/out/c_dwarf5.sym");
    let first = String::from_utf8_lossy(&sym[..200]).to_string();
    let id = first.split_whitespace().nth(3).unwrap().to_owned();
    let at = dir.path().join("symbols/c_dwarf5").join(&id);
    std::fs::create_dir_all(&at).unwrap();
    std::fs::write(at.join("c_dwarf5.sym"), &sym).unwrap();
    let app = app_with(
        vec![source(&format!(
            "id = \"bucket\"\ntype = \"filesystem\"\npath = \"{}\"\nprefix = \"symbols\"\nlayout = \"breakpad\"",
            dir.path().display()
        ))],
        |_| {},
    );
    let (mut request, expected) = c_dwarf5_event();
    request["modules"][0]["debug_file"] = json!("c_dwarf5");
    let v = app.native("app", &request).await;
    assert_frames(&v, &expected);
    assert_eq!(statuses(&v), vec![("bucket".to_owned(), "ok".to_owned())]);
}

/// Every way a source can fail, each with its status and reason, and what is remembered.
#[tokio::test]
async fn failures_each_say_what_happened_and_misses_are_remembered() {
    let (base, script) = scripted().await;
    let build_id = c_dwarf5_build_id();
    let debuginfo = format!("{build_id}/debuginfo");
    let executable = format!("{build_id}/executable");
    let http = |id: &str, path: &str, extra: &str| {
        source(&format!(
            "id = \"{id}\"\ntype = \"http\"\nurl = \"{base}/{path}/\"\nlayout = \"debuginfod\"\nallow_private = true\ntimeout = \"1s\"\n{extra}"
        ))
    };
    for (path, answer) in [
        ("e500", Answer::Status(500)),
        (
            "slow",
            Answer::Slow(Duration::from_secs(5), fixture("native/out/c_dwarf5")),
        ),
        ("big", Answer::Endless(1 << 20)),
        ("wrong", Answer::File(fixture("native/out/c_dwarf4"))),
    ] {
        script.set(&format!("{path}/{debuginfo}"), answer.clone());
        script.set(&format!("{path}/{executable}"), answer);
    }
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let sources = vec![
        http("missing", "nothing", ""),
        http("broken", "e500", ""),
        http("slow", "slow", ""),
        http("big", "big", "max_size = \"64KiB\""),
        http("wrong", "wrong", ""),
        source(&format!(
            "id = \"dead\"\ntype = \"debuginfod\"\nurl = \"{dead_url}\"\nallow_private = true"
        )),
    ];
    let app = app_with(sources, |c| {
        c.fetching.request_wait = Duration::from_secs(10);
        // Resolutions are remembered per process for `index_ttl`; the misses below must be
        // remembered by the sources themselves.
        c.cache.index_ttl = Duration::from_millis(50);
    });
    let (request, _) = c_dwarf5_event();
    let v = app.native("app", &request).await;
    let module = &v["modules"][0];
    assert_eq!(module["debug_status"], "fetching_failed", "{module:#}");
    let by_source = |id: &str| -> Vec<Value> {
        module["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["source"] == id)
            .cloned()
            .collect()
    };
    let status_of = |id: &str| -> Vec<String> {
        by_source(id)
            .iter()
            .map(|c| c["status"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(status_of("missing"), ["not_found", "not_found"]);
    assert_eq!(status_of("broken"), ["error", "error"]);
    assert!(by_source("broken")[0]["details"]
        .as_str()
        .unwrap()
        .contains("500"));
    assert_eq!(status_of("slow"), ["timeout", "timeout"]);
    assert_eq!(status_of("big"), ["too_large", "too_large"]);
    assert_eq!(status_of("wrong"), ["invalid", "invalid"]);
    assert!(
        by_source("wrong")[0]["details"]
            .as_str()
            .unwrap()
            .contains("not the module's"),
        "{:?}",
        by_source("wrong")
    );
    assert_eq!(status_of("dead"), ["error", "error"]);
    assert!(module["diagnostic"]
        .as_str()
        .unwrap()
        .contains("missing: not found"));
    // Nothing was cached as found, and every miss is remembered: the same request again
    // asks no source anything (within the TTLs), and says so.
    let before = script.total();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let again = app.native("app", &request).await;
    assert_eq!(script.total(), before, "remembered misses were asked again");
    let c = &again["modules"][0]["candidates"][0];
    assert!(c["details"].as_str().unwrap().contains("remembered"), "{c}");
}

#[tokio::test]
async fn a_slow_source_answers_at_the_deadline_and_finishes_for_the_next_request() {
    let (base, script) = scripted().await;
    let build_id = c_dwarf5_build_id();
    script.set(
        &format!("{build_id}/debuginfo"),
        Answer::Slow(Duration::from_millis(1500), fixture("native/out/c_dwarf5")),
    );
    let app = app_with(
        vec![source(&format!(
            "id = \"slow\"\ntype = \"http\"\nurl = \"{base}\"\nlayout = \"debuginfod\"\nallow_private = true\ntimeout = \"30s\""
        ))],
        |c| c.fetching.request_wait = Duration::from_millis(300),
    );
    let (request, expected) = c_dwarf5_event();
    let started = Instant::now();
    let v = app.native("app", &request).await;
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "waited for the download"
    );
    assert_eq!(v["modules"][0]["debug_status"], "fetching_failed");
    assert_eq!(
        statuses(&v),
        vec![("slow".to_owned(), "pending".to_owned())]
    );
    assert_eq!(v["stacktraces"][0]["frames"][0]["status"], "missing");
    // The download goes on; a later request has it, without downloading again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let v = app.native("app", &request).await;
    assert_frames(&v, &expected);
    assert_eq!(script.hits(&format!("{build_id}/debuginfo")), 1);
}

#[tokio::test]
async fn concurrent_requests_share_one_download() {
    let (base, script) = scripted().await;
    let build_id = c_dwarf5_build_id();
    script.set(
        &format!("{build_id}/debuginfo"),
        Answer::Slow(Duration::from_millis(300), fixture("native/out/c_dwarf5")),
    );
    let app = app_with(
        vec![source(&format!(
            "id = \"s\"\ntype = \"http\"\nurl = \"{base}\"\nlayout = \"debuginfod\"\nallow_private = true"
        ))],
        |_| {},
    );
    let (request, expected) = c_dwarf5_event();
    let answers = futures::future::join_all((0..8).map(|_| app.native("app", &request))).await;
    for v in &answers {
        assert_frames(v, &expected);
    }
    assert_eq!(script.hits(&format!("{build_id}/debuginfo")), 1);
}

#[tokio::test]
async fn redirects_are_limited_and_rechecked_and_private_addresses_refused() {
    let (base, script) = scripted().await;
    let build_id = c_dwarf5_build_id();
    let debuginfo = format!("{build_id}/debuginfo");
    // To cloud metadata (refused even where private addresses are allowed), in a loop, and
    // one good redirect within the server.
    script.set(
        &format!("meta/{debuginfo}"),
        Answer::Redirect("http://169.254.169.254/latest/meta-data/".into()),
    );
    script.set(
        &format!("loop/{debuginfo}"),
        Answer::Redirect(format!("{base}/loop/{debuginfo}")),
    );
    script.set(
        &format!("hop/{debuginfo}"),
        Answer::Redirect(format!("{base}/real/{debuginfo}")),
    );
    script.set(
        &format!("real/{debuginfo}"),
        Answer::File(fixture("native/out/c_dwarf5")),
    );
    let http = |id: &str, path: &str, allow: bool| {
        source(&format!(
            "id = \"{id}\"\ntype = \"http\"\nurl = \"{base}/{path}/\"\nlayout = \"debuginfod\"\nallow_private = {allow}\nfilters = {{ filetypes = [\"elf_debug\"] }}"
        ))
    };
    let app = app_with(
        vec![
            http("private", "real", false),
            http("meta", "meta", true),
            http("loop", "loop", true),
            http("hop", "hop", true),
        ],
        |_| {},
    );
    let (request, expected) = c_dwarf5_event();
    let v = app.native("app", &request).await;
    assert_frames(&v, &expected);
    let c = v["modules"][0]["candidates"].as_array().unwrap();
    let detail = |i: usize| c[i]["details"].as_str().unwrap_or_default().to_owned();
    assert_eq!(c[0]["source"], "private");
    assert!(detail(0).contains("loopback"), "{}", detail(0));
    assert_eq!(c[1]["source"], "meta");
    assert!(detail(1).contains("metadata"), "{}", detail(1));
    assert_eq!(c[2]["source"], "loop");
    assert!(detail(2).contains("redirects"), "{}", detail(2));
    assert_eq!(
        (c[3]["source"].as_str(), c[3]["status"].as_str()),
        (Some("hop"), Some("ok"))
    );
    // The refused source was never contacted.
    assert_eq!(script.hits(&format!("real/{debuginfo}")), 1);
}

#[tokio::test]
async fn filters_and_projects_decide_which_sources_are_asked() {
    let (base, script) = scripted().await;
    let mk = |id: &str, extra: &str| {
        source(&format!(
            "id = \"{id}\"\ntype = \"http\"\nurl = \"{base}/{id}/\"\nlayout = \"debuginfod\"\nallow_private = true\n{extra}"
        ))
    };
    let app = app_with(
        vec![
            mk("other-project", "projects = [\"other\"]"),
            mk("pattern", "filters = { path_patterns = [\"libfoo*\"] }"),
            mk("prefix", "filters = { debug_id_prefixes = [\"ffff\"] }"),
            mk("types", "filters = { filetypes = [\"pdb\"] }"),
            mk(
                "asked",
                "filters = { path_patterns = [\"c_dwarf*\"], filetypes = [\"elf_code\"] }",
            ),
        ],
        |_| {},
    );
    let (request, _) = c_dwarf5_event();
    let v = app.native("app", &request).await;
    let asked: Vec<String> = statuses(&v).into_iter().map(|(s, _)| s).collect();
    assert_eq!(asked, ["asked"], "{v:#}");
    assert_eq!(script.total(), 1);
}

#[tokio::test]
async fn a_bad_source_configuration_is_refused_at_start() {
    for (bad, why) in [
        ("id = \"x\"\ntype = \"http\"", "needs url"),
        ("id = \"x\"\ntype = \"http\"\nurl = \"ftp://a/\"", "http(s)"),
        (
            "id = \"x y\"\ntype = \"debuginfod\"\nurl = \"http://a/\"",
            "letters",
        ),
        ("id = \"x\"\ntype = \"s3\"", "bucket"),
        (
            "id = \"x\"\ntype = \"http\"\nurl = \"http://a/\"\nfilters = { filetypes = [\"exe\"] }",
            "unknown filetype",
        ),
    ] {
        let mut config = Config {
            sources: vec![source(bad)],
            ..Config::default()
        };
        config.data_dir = std::env::temp_dir();
        let e = config.validate().unwrap_err().to_string();
        assert!(e.contains(why), "{bad}: {e}");
    }
    assert!(toml::from_str::<SourceConfig>(
        "id = \"x\"\ntype = \"http\"\nurl = \"http://a/\"\nlayuot = \"native\""
    )
    .is_err());
}

/// A bucket on a real S3 API (moto's server, as in `s3.rs`), unified layout.
#[tokio::test]
async fn an_s3_bucket_source_with_the_unified_layout() {
    let Some(moto) = crate::s3::moto().await else {
        return;
    };
    let build_id = c_dwarf5_build_id();
    let key = format!("syms/{}/{}/debuginfo", &build_id[..2], &build_id[2..]);
    let put = reqwest::Client::new()
        .put(format!("{}/tracemap/{key}", moto.endpoint))
        .body(fixture("native/out/c_dwarf5"))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let app = app_with(
        vec![source(&format!(
            "id = \"s3\"\ntype = \"s3\"\nbucket = \"tracemap\"\nprefix = \"syms\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key = \"test\"\nsecret_key = \"test\"\nlayout = \"unified\"\nallow_private = true",
            moto.endpoint
        ))],
        |_| {},
    );
    let (request, expected) = c_dwarf5_event();
    let v = app.native("app", &request).await;
    assert_frames(&v, &expected);
    let c = &v["modules"][0]["candidates"][0];
    assert_eq!(c["status"], "ok", "{c}");
    assert_eq!(c["location"], format!("s3://tracemap/{key}"));
}

/// One wait per request, not per module: three modules on a slow source answer together at
/// the deadline.
#[tokio::test]
async fn a_request_waits_once_for_all_its_modules() {
    let (base, script) = scripted().await;
    let mut modules = Vec::new();
    let mut frames = Vec::new();
    for (i, name) in ["c_dwarf4", "c_dwarf5", "cpp_dwarf5"].iter().enumerate() {
        let o = native_oracle(name);
        let id = o["build_id"].as_str().unwrap().to_owned();
        script.set(
            &format!("{id}/debuginfo"),
            Answer::Slow(
                Duration::from_secs(3),
                fixture(&format!("native/out/{name}")),
            ),
        );
        let image = IMAGE + (i as u64) * 0x100_0000;
        modules.push(json!({"type": "elf", "code_id": id, "image_addr": format!("{image:#x}"), "image_size": 0x100000}));
        frames.push(json!({"instruction_addr": format!("{:#x}", image + samples(&o, 1)[0].0)}));
    }
    let app = app_with(
        vec![source(&format!(
            "id = \"slow\"\ntype = \"http\"\nurl = \"{base}\"\nlayout = \"debuginfod\"\nallow_private = true\nfilters = {{ filetypes = [\"elf_debug\"] }}"
        ))],
        |c| c.fetching.request_wait = Duration::from_millis(500),
    );
    let started = Instant::now();
    let v = app
        .native(
            "app",
            &json!({"modules": modules, "stacktraces": [{"frames": frames}]}),
        )
        .await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1400), "took {took:?}");
    for m in v["modules"].as_array().unwrap() {
        assert_eq!(m["candidates"][0]["status"], "pending", "{m}");
    }
}
