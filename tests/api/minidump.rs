//! Minidumps through HTTP: real crashes of the programs in `fixtures/minidump` (C, C++, Rust;
//! `-O2 -g`, no frame pointers, one stripped with a separate debug file), walked with the
//! CFI of the uploaded binaries and compared with `gdb`'s `thread apply all bt` of the same
//! crash (recorded by fixtures/minidump/build.sh), plus the degraded and hostile cases.

use serde_json::Value;

use crate::common::*;

fn oracle(name: &str) -> Value {
    serde_json::from_slice(&fixture(&format!("minidump/oracle/{name}.json"))).expect("oracle")
}

fn dump(name: &str) -> Vec<u8> {
    fixture(&format!("minidump/out/{name}.dmp"))
}

async fn upload(app: &TestApp, files: &[&str]) {
    for f in files {
        app.upload_debug_file("app", f, fixture(&format!("minidump/out/{f}")))
            .await
            .ok();
    }
}

async fn post_dump(app: &TestApp, uri: &str, bytes: &[u8]) -> Reply {
    app.send(
        Multipart::new()
            .text("product", "fixture")
            .file("upload_file_minidump", "crash.dmp", bytes)
            .request(uri, None),
    )
    .await
}

async fn symbolicate(app: &TestApp, name: &str) -> Value {
    post_dump(
        app,
        "/api/v1/projects/app/symbolicate/minidump",
        &dump(name),
    )
    .await
    .ok()
    .json()
}

/// `ns::Type::f(int) const` → `ns::Type::f`; Rust hashes dropped. Rust names are compared
/// in one spelling: gdb prints DWARF's path names (`{closure#0}`, `{impl#23}::call_once`),
/// we print demangled symbol names (`{{closure}}`, `<… as FnOnce>::call_once`,
/// `call_once{{vtable.shim}}`); both name the same function.
fn fname(s: &str) -> String {
    let mut name = String::new();
    let mut rest = s.trim();
    // `{closure#N}` → `{{closure}}`
    while let Some(i) = rest.find("{closure#") {
        name.push_str(&rest[..i]);
        name.push_str("{{closure}}");
        rest = rest[i..].split_once('}').map(|(_, r)| r).unwrap_or("");
    }
    name.push_str(rest);
    let name = name.replace("{{vtable.shim}}", "");
    let name = match name.rfind("{impl#") {
        Some(i) => name[i..]
            .split_once("}::")
            .map(|(_, r)| r.to_owned())
            .unwrap_or(name.clone()),
        None => name,
    };
    let out = crate::native::fname(&name);
    out.strip_prefix("::").map(str::to_owned).unwrap_or(out)
}

fn base(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// A frame as compared: (function, file name, line, inlined).
type Frame = (String, String, u64, bool);

/// gdb's frames of one thread in the program's own module that have a source line (libc and
/// libstdc++ frames, and symbol-only frames, are not part of the comparison).
fn gdb_frames(thread: &Value) -> Vec<Frame> {
    thread["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .filter(|f| f["module"] == "main" && f["file"].is_string() && f["line"].is_u64())
        .map(|f| {
            (
                fname(f["function"].as_str().unwrap_or("")),
                base(f["file"].as_str().unwrap_or("")).to_owned(),
                f["line"].as_u64().unwrap_or(0),
                f["inlined"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// Our frames of one thread in the program's own module that have a source line; a frame
/// is inlined when the next frame comes from the same walked frame (`original_index`).
fn our_frames(thread: &Value, program: &str) -> Vec<Frame> {
    let frames = thread["frames"].as_array().expect("frames");
    frames
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            f["package"].as_str().is_some_and(|p| base(p) == program) && f["lineno"].is_u64()
        })
        .map(|(i, f)| {
            let inlined = frames
                .get(i + 1)
                .is_some_and(|n| n["original_index"] == f["original_index"]);
            (
                fname(f["function"].as_str().unwrap_or("")),
                base(f["filename"].as_str().unwrap_or("")).to_owned(),
                f["lineno"].as_u64().unwrap_or(0),
                inlined,
            )
        })
        .collect()
}

/// Compares every thread gdb saw with ours (matched by their innermost own function).
/// Returns (frames matched, frames expected, misses).
fn compare(ours: &Value, gdb: &Value, program: &str) -> (usize, usize, Vec<String>) {
    let mut matched = 0;
    let mut total = 0;
    let mut misses = Vec::new();
    let threads = ours["stacktraces"].as_array().expect("stacktraces");
    let mut used = vec![false; threads.len()];
    for (ti, g) in gdb["threads"]
        .as_array()
        .expect("threads")
        .iter()
        .enumerate()
    {
        let expected = gdb_frames(g);
        if expected.is_empty() {
            continue;
        }
        total += expected.len();
        // The thread of ours that agrees with this one of gdb's on most frames (workers of
        // one kind share their innermost frames), each used once.
        let best = (0..threads.len())
            .filter(|&i| !used[i])
            .map(|i| {
                let got = our_frames(&threads[i], program);
                let same = expected.iter().filter(|e| got.contains(e)).count();
                (same, i)
            })
            .max()
            .filter(|&(same, _)| same > 0);
        let Some(t) = best.map(|(_, i)| {
            used[i] = true;
            &threads[i]
        }) else {
            misses.push(format!(
                "gdb thread {ti} ({}): no thread of ours starts there",
                expected[0].0
            ));
            continue;
        };
        if g["crashed"] == true {
            assert_eq!(t["is_requesting"], true, "the crashed thread is marked");
        }
        let mut got = our_frames(t, program);
        // gdb hides an inlined frame whose range starts exactly at the pc (Rust's
        // `core::ptr::write_volatile`, one store); binutils addr2line, recorded beside
        // the oracle, shows it: it must be that frame, and only it, that gdb lacks.
        if got.first().map(|f| &f.0) != Some(&expected[0].0) {
            let hidden = &gdb["addr2line_crash_pc"]["frames"][0];
            assert_eq!(
                got.first().map(|f| (f.0.clone(), f.2)),
                Some((
                    fname(hidden["function"].as_str().unwrap_or("?")),
                    hidden["line"].as_u64().unwrap_or(0)
                )),
                "our innermost frame is neither gdb's nor addr2line's"
            );
            got.remove(0);
        }
        for (i, e) in expected.iter().enumerate() {
            if got.get(i) == Some(e) {
                matched += 1;
            } else {
                misses.push(format!(
                    "gdb thread {ti} frame {i}: expected {e:?}, got {:?}",
                    got.get(i)
                ));
            }
        }
    }
    (matched, total, misses)
}

async fn assert_matches_gdb(app: &TestApp, dump_name: &str, oracle_name: &str) -> Value {
    let ours = symbolicate(app, dump_name).await;
    let (m, t, misses) = compare(&ours, &oracle(oracle_name), dump_name);
    println!("{dump_name}: {m}/{t} frames as gdb");
    assert!(t >= 8, "{dump_name}: the oracle has too few frames ({t})");
    assert_eq!(m, t, "{dump_name}: {m}/{t}\n{}", misses.join("\n"));
    ours
}

/// The module of the dump whose code file ends with `suffix`.
fn module_of<'a>(v: &'a Value, suffix: &str) -> &'a Value {
    v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["code_file"].as_str().unwrap().ends_with(suffix))
        .unwrap_or_else(|| panic!("no module {suffix}"))
}

fn crashed(v: &Value) -> &Value {
    v["stacktraces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["is_requesting"] == true)
        .expect("a crashed thread")
}

#[tokio::test]
async fn c_crash_walks_with_cfi_and_matches_gdb() {
    let app = TestApp::new();
    upload(&app, &["c_crash"]).await;
    let v = assert_matches_gdb(&app, "c_crash", "c_crash").await;
    assert_eq!(v["crashed"], true);
    assert!(
        v["crash_reason"].as_str().unwrap().starts_with("SIGSEGV"),
        "{}",
        v["crash_reason"]
    );
    assert_eq!(v["crash_address"], "0x0");
    assert_eq!(v["system_info"]["cpu_arch"], "x86_64");
    assert_eq!(v["system_info"]["os_name"], "Linux");
    // Every frame of the crashed thread in the program's source was found by the context or
    // CFI (above main, libc was not uploaded: `_start` is found by scanning).
    let t = crashed(&v);
    let frames = t["frames"].as_array().unwrap();
    assert_eq!(frames[0]["trust"], "context");
    for f in frames.iter().filter(|f| {
        f["filename"]
            .as_str()
            .is_some_and(|n| n.ends_with("c_crash.c"))
    }) {
        assert!(
            f["trust"] == "context" || f["trust"] == "cfi",
            "frame {f} of our code should be found with CFI"
        );
    }
    let module = module_of(&v, "/c_crash");
    assert_eq!(module["debug_status"], "found");
    assert_eq!(module["unwind_status"], "found");
}

#[tokio::test]
async fn twenty_threads_match_gdb() {
    let app = TestApp::new();
    upload(&app, &["c_threads20"]).await;
    let v = assert_matches_gdb(&app, "c_threads20", "c_threads20").await;
    assert_eq!(v["stacktraces"].as_array().unwrap().len(), 20);
}

#[tokio::test]
async fn cpp_and_rust_crashes_match_gdb() {
    let app = TestApp::new();
    upload(&app, &["cpp_crash", "rust_crash"]).await;
    assert_matches_gdb(&app, "cpp_crash", "cpp_crash").await;
    assert_matches_gdb(&app, "rust_crash", "rust_crash").await;
}

#[tokio::test]
async fn a_stripped_executable_unwinds_with_its_eh_frame_and_symbolicates_with_its_debug_file() {
    let app = TestApp::new();
    upload(&app, &["c_crash_stripped", "c_crash_stripped.debug"]).await;
    let v = assert_matches_gdb(&app, "c_crash_stripped", "c_crash").await;
    let module = module_of(&v, "/c_crash_stripped");
    assert_eq!(module["debug_status"], "found");
    assert_eq!(module["unwind_status"], "found");
    let how = module["unwind_diagnostic"].as_str().unwrap();
    assert!(
        how.contains("c_crash_stripped (elf, executable)"),
        "CFI comes from the stripped executable: {how}"
    );

    // Only the debug file: symbols, but no unwind rules (its .eh_frame is an empty copy),
    // and the module says so.
    let app = TestApp::new();
    upload(&app, &["c_crash_stripped.debug"]).await;
    let v = symbolicate(&app, "c_crash_stripped").await;
    let module = module_of(&v, "/c_crash_stripped");
    assert_eq!(module["debug_status"], "found");
    assert_eq!(module["unwind_status"], "missing");
    assert!(
        module["unwind_diagnostic"]
            .as_str()
            .unwrap()
            .contains("c_crash_stripped.debug"),
        "{module}"
    );
}

#[tokio::test]
async fn a_dump_whose_modules_were_never_uploaded_degrades_with_reasons() {
    let app = TestApp::new();
    let v = symbolicate(&app, "c_crash").await;
    assert_eq!(v["crashed"], true);
    for m in v["modules"].as_array().unwrap() {
        assert_eq!(m["unwind_status"], "missing", "{m}");
        let why = m["unwind_diagnostic"].as_str().unwrap();
        assert!(why.contains("was uploaded to project app"), "{why}");
    }
    let t = crashed(&v);
    let frames = t["frames"].as_array().unwrap();
    assert_eq!(frames[0]["trust"], "context");
    assert_eq!(frames[0]["status"], "missing");
    // Every caller was found without CFI, and says why.
    for f in &frames[1..] {
        assert!(f["trust"] != "cfi", "{f}");
        let d = f["diagnostic"].as_str().unwrap_or_default();
        assert!(
            d.contains("no CFI for the callee's module") || d.contains("in no module"),
            "{f}"
        );
    }
}

#[tokio::test]
async fn the_symbolicator_alias_and_options_work() {
    let app = TestApp::new();
    upload(&app, &["c_crash"]).await;
    let reply = app
        .send(
            Multipart::new()
                .text("options", r#"{"apply_source_context": false}"#)
                .file("upload_file_minidump", "c.dmp", &dump("c_crash"))
                .request("/minidump?scope=app", None),
        )
        .await
        .ok();
    let v = reply.json();
    assert!(crashed(&v)["frames"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["status"] == "symbolicated"));
}

#[tokio::test]
async fn garbage_truncated_missing_and_oversize_dumps_are_4xx_with_a_code() {
    let app = TestApp::with_config(|c| c.limits.max_minidump_bytes = 64 << 10);
    let uri = "/api/v1/projects/app/symbolicate/minidump";
    let real = dump("c_crash");
    for (what, bytes) in [
        ("garbage", b"this is not a minidump".to_vec()),
        ("empty", Vec::new()),
        ("header only", real[..32].to_vec()),
        ("no directory", real[..100].to_vec()),
    ] {
        let r = post_dump(&app, uri, &bytes).await;
        assert_eq!(
            r.status,
            400,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.error_code(), "minidump_invalid", "{what}");
    }
    // Cut anywhere else: a clear 4xx or an answer from what is left, never a 5xx.
    let small = TestApp::new();
    for cut in [1000, real.len() / 3, real.len() / 2, real.len() - 1] {
        let r = post_dump(&small, uri, &real[..cut]).await;
        assert!(
            r.status == 200 || r.error_code() == "minidump_invalid",
            "cut at {cut}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    let r = app
        .send(Multipart::new().text("product", "x").request(uri, None))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "minidump_missing");
    let r = post_dump(&app, uri, &vec![0u8; 128 << 10]).await;
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    let r = app
        .send(
            Multipart::new()
                .text("options", "{not json")
                .file("upload_file_minidump", "c.dmp", &real[..64])
                .request(uri, None),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn a_dump_with_200_modules_is_answered() {
    let app = TestApp::new();
    let v = symbolicate(&app, "many_modules").await;
    let modules = v["modules"].as_array().unwrap();
    assert!(modules.len() >= 200, "{} modules", modules.len());
    assert!(modules.iter().all(|m| m["unwind_status"] == "missing"));
    assert_eq!(v["crashed"], true);
}

#[tokio::test]
async fn warm_processing_reads_no_debug_file() {
    let app = TestApp::new();
    upload(&app, &["c_crash"]).await;
    let first = symbolicate(&app, "c_crash").await;
    // Take every stored blob away (through the store's own API: any backend): a warm
    // request must need only the caches in memory.
    use futures::TryStreamExt;
    let store = app.state.store.raw().clone();
    let prefix = object_store::path::Path::from("blobs");
    let keys: Vec<_> = store
        .list(Some(&prefix))
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .unwrap();
    assert!(!keys.is_empty());
    for k in keys {
        store.delete(&k).await.unwrap();
    }
    let second = symbolicate(&app, "c_crash").await;
    assert_eq!(first["stacktraces"], second["stacktraces"]);
}

/// arm64: a real aarch64 binary (clang), and a minidump whose thread state was constructed
/// from that binary's code and `.eh_frame` (fixtures/minidump/tools/arm64_dump.py: no arm64
/// machine here to crash on). Each frame's expected address and trust is known by
/// construction, its function, file and line come from `llvm-symbolizer --inlining`; the
/// dump only unwinds past the frame-pointer frame with CFI (without it rust-minidump skips
/// two frames).
#[tokio::test]
async fn arm64_walks_with_cfi_and_matches_llvm_symbolizer() {
    let app = TestApp::new();
    upload(&app, &["arm64_chain"]).await;
    let v = symbolicate(&app, "arm64_chain").await;
    let o = oracle("arm64_chain");
    assert_eq!(v["system_info"]["cpu_arch"], "arm64");
    assert!(v["crash_reason"].as_str().unwrap().starts_with("SIGSEGV"));
    let t = crashed(&v);
    assert_eq!(t["thread_id"], o["crashed_tid"]);
    let ours: Vec<&Value> = t["frames"].as_array().unwrap().iter().collect();
    let mut expected = Vec::new();
    for f in o["frames"].as_array().unwrap() {
        for s in f["symbolizer"].as_array().unwrap() {
            expected.push((
                f["index"].as_u64().unwrap(),
                f["address"].as_str().unwrap().to_owned(),
                f["trust"].as_str().unwrap().to_owned(),
                s["function"].as_str().unwrap().to_owned(),
                s["line"].as_u64().unwrap(),
            ));
        }
    }
    let got: Vec<_> = ours
        .iter()
        .map(|f| {
            (
                f["original_index"].as_u64().unwrap(),
                f["instruction_addr"].as_str().unwrap().to_owned(),
                f["trust"].as_str().unwrap_or("").to_owned(),
                f["function"].as_str().unwrap_or("").to_owned(),
                f["lineno"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        got,
        expected,
        "{}",
        serde_json::to_string_pretty(t).unwrap()
    );
}
