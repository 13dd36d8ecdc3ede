//! Native symbolication through HTTP against real binaries, compared with binutils
//! `addr2line -f -i -C` and `llvm-symbolizer --inlining` answers recorded by
//! fixtures/native/build.sh (the full per-sample comparison of the lookup itself lives in
//! the `native` module's tests).

use serde_json::{json, Value};

use crate::common::*;

const IMAGE: u64 = 0x7f00_0000_0000;

fn oracle(name: &str) -> Value {
    serde_json::from_slice(&fixture(&format!("native/oracle/{name}.json"))).expect("oracle")
}

fn hex(v: &Value) -> u64 {
    let s = v.as_str().unwrap_or("0");
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or(0)
}

/// Function name as compared at this level: demangled, with template arguments, parameter
/// lists, qualifiers, return types and Rust hashes removed (`std::array<int, 6ul>::end() const`
/// → `std::array::end`). The `native` module's own tests compare full names.
pub(crate) fn fname(s: &str) -> String {
    let mut out = String::new();
    let mut depth = 0i32;
    for c in s.trim().chars() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    let out = out.trim_end_matches(" const").trim().to_owned();
    let out = match out.rfind("::h") {
        Some(i) if out.len() - i == 19 => out[..i].to_owned(),
        _ => out,
    };
    out.rsplit(' ').next().unwrap_or(&out).to_owned()
}

fn base(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

type Chain = Vec<(String, String, u64)>;

fn oracle_chain(v: &Value) -> Option<Chain> {
    let frames = v.as_array()?;
    Some(
        frames
            .iter()
            .map(|f| {
                (
                    fname(f["function"].as_str().unwrap_or("")),
                    base(f["file"].as_str().unwrap_or("")).to_owned(),
                    f["line"].as_u64().unwrap_or(0),
                )
            })
            .collect(),
    )
}

/// Symbolicates every sample of an oracle in one request; returns (matched, total, misses).
async fn check(app: &TestApp, oracle_name: &str, module_type: &str) -> (usize, usize, Vec<String>) {
    let o = oracle(oracle_name);
    let vmaddr = if o["format"] == "breakpad" {
        0
    } else {
        hex(&o["image_vmaddr"])
    };
    let samples: Vec<Value> = o["samples"].as_array().unwrap().clone();
    let frames: Vec<Value> = samples
        .iter()
        .map(|s| json!({"instruction_addr": format!("{:#x}", IMAGE + hex(&s["addr"]) - vmaddr), "adjust_instruction_addr": false}))
        .collect();
    let body = json!({
        "modules": [{"type": module_type, "debug_id": o["debug_id"], "code_id": o["code_id"],
                     "image_addr": format!("{IMAGE:#x}"), "image_size": 0x1000_0000u64, "arch": "x86_64"}],
        "stacktraces": [{"frames": frames}],
        "options": {"apply_source_context": false},
    });
    let r = app.native("app", &body).await;
    assert_eq!(
        r["modules"][0]["debug_status"], "found",
        "{oracle_name}: {}",
        r["modules"][0]
    );
    let out = r["stacktraces"][0]["frames"].as_array().unwrap();
    let (mut matched, mut total, mut misses) = (0, 0, Vec::new());
    for (i, s) in samples.iter().enumerate() {
        let ours: Vec<&Value> = out.iter().filter(|f| f["original_index"] == i).collect();
        total += 1;
        if s["kind"] == "outside" {
            if ours.iter().all(|f| f["status"] != "symbolicated") {
                matched += 1;
            } else {
                misses.push(format!("{} outside but {}", s["addr"], ours[0]));
            }
            continue;
        }
        let chain: Chain = ours
            .iter()
            .filter(|f| f["status"] == "symbolicated")
            .map(|f| {
                (
                    fname(f["function"].as_str().unwrap_or("")),
                    base(
                        f["abs_path"]
                            .as_str()
                            .or(f["filename"].as_str())
                            .unwrap_or(""),
                    )
                    .to_owned(),
                    f["lineno"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        let mut candidates: Vec<Chain> = [
            "addr2line",
            "llvm_symbolizer",
            "codeview_reference",
            "breakpad_sym",
        ]
        .iter()
        .filter_map(|k| oracle_chain(&s[*k]))
        .collect();
        if let Some(refs) = s["reference_answer"].as_object() {
            candidates.extend(refs.values().filter_map(oracle_chain));
        }
        // A symbol-table answer has no file or line; addr2line then prints the STT_FILE
        // symbol (e.g. crtstuff.c) with line 0. Compare the function alone there.
        let same = |c: &Chain| {
            c.len() == chain.len()
                && c.iter().zip(&chain).all(|(o, ours)| {
                    o.0 == ours.0 && (ours.2 == 0 && o.2 == 0 || o.1 == ours.1 && o.2 == ours.2)
                })
        };
        if candidates.iter().any(same) {
            matched += 1;
        } else {
            misses.push(format!(
                "{} {}: ours {chain:?} oracles {candidates:?}",
                s["addr"], s["kind"]
            ));
        }
    }
    (matched, total, misses)
}

async fn upload(app: &TestApp, path: &str) {
    let name = path.rsplit('/').next().unwrap();
    app.upload_debug_file("app", name, fixture(&format!("native/out/{path}")))
        .await
        .ok();
}

async fn assert_rate(app: &TestApp, oracle_name: &str, module_type: &str) {
    let (m, t, misses) = check(app, oracle_name, module_type).await;
    let rate = m as f64 / t as f64;
    println!("{oracle_name}: {m}/{t} = {rate:.4}");
    assert!(
        rate >= 0.995,
        "{oracle_name}: {m}/{t} = {rate:.4}\n{}",
        misses.join("\n")
    );
}

#[tokio::test]
async fn elf_dwarf_binaries_match_the_oracles() {
    let app = TestApp::new();
    for f in [
        "c_dwarf4",
        "c_dwarf5",
        "c_gz_zlib",
        "c_gz_zlib_gnu",
        "cpp_dwarf5",
        "rust_app",
        "c_symtab",
    ] {
        upload(&app, f).await;
        assert_rate(&app, f, "elf").await;
    }
}

#[tokio::test]
async fn stripped_binary_with_separate_debug_file() {
    let app = TestApp::new();
    upload(&app, "c_stripped_all").await;
    upload(&app, "c_dwarf5.debug").await;
    assert_rate(&app, "c_stripped_all", "elf").await;
}

#[tokio::test]
async fn split_dwarf_with_dwp_and_with_dwo_files() {
    let app = TestApp::new();
    upload(&app, "c_splitdwarf").await;
    upload(&app, "c_splitdwarf.dwp").await;
    assert_rate(&app, "c_splitdwarf", "elf").await;
    upload(&app, "c_splitdwarf4").await;
    upload(&app, "c_splitdwarf4-app.dwo").await;
    upload(&app, "c_splitdwarf4-util.dwo").await;
    assert_rate(&app, "c_splitdwarf4", "elf").await;
}

#[tokio::test]
async fn macho_pe_and_breakpad() {
    let app = TestApp::new();
    upload(&app, "c_macho").await;
    app.upload_debug_file(
        "app",
        "c_macho",
        fixture("native/out/c_macho.dSYM/Contents/Resources/DWARF/c_macho"),
    )
    .await
    .ok();
    assert_rate(&app, "c_macho", "macho").await;
    upload(&app, "c_pe.exe").await;
    upload(&app, "c_pe.pdb").await;
    assert_rate(&app, "c_pe", "pe").await;
    // Breakpad: the .sym bounds its last PUBLIC symbol only with the executable's section
    // table, so upload the (stripped) executable as well, as a crash reporter pipeline does.
    let app = TestApp::new();
    upload(&app, "c_dwarf5.sym").await;
    upload(&app, "c_stripped_all").await;
    assert_rate(&app, "c_breakpad", "elf").await;
}

fn frame(addr: u64) -> Value {
    json!({"instruction_addr": format!("{addr:#x}")})
}

#[tokio::test]
async fn statuses_inlines_caller_adjustment_and_module_list() {
    let app = TestApp::new();
    upload(&app, "c_dwarf5").await;
    let o = oracle("c_dwarf5");
    let inlined = o["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "inlined" && s["addr2line"].as_array().unwrap().len() >= 3)
        .unwrap()
        .clone();
    let addr = hex(&inlined["addr"]);
    let cpp = oracle("cpp_dwarf5");
    let body = json!({
        "modules": [
            {"type": "elf", "code_id": o["code_id"], "image_addr": format!("{IMAGE:#x}"), "image_size": 0x10000, "code_file": "/usr/bin/c_dwarf5"},
            {"type": "elf", "debug_id": cpp["debug_id"], "image_addr": "0x7f1000000000", "image_size": 0x10000},
            {"type": "elf", "debug_id": "00000000-0000-0000-0000-000000000001", "image_addr": 0x7f2000000000u64, "image_size": 4096},
        ],
        "stacktraces": [{"frames": [
            frame(IMAGE + addr),                                  // crashing frame: exact address
            frame(IMAGE + addr + 1),                              // caller: looked up at addr
            {"instruction_addr": format!("{:#x}", IMAGE + addr), "adjust_instruction_addr": false},
            frame(0x7f1000000100),                                // module without an upload
            frame(0x7f2000000010),                                // module with an unknown debug file
            frame(0x1234),                                        // no module
            frame(IMAGE + 0xfff0),                                // inside the image, no code
            {"instruction_addr": format!("{addr:#x}"), "addr_mode": "rel:0", "adjust_instruction_addr": false},
            {"instruction_addr": "0x10", "addr_mode": "rel:9"},
        ]}],
    });
    let r = app.native("app", &body).await;
    let frames = r["stacktraces"][0]["frames"].as_array().unwrap();
    let by_index = |i: usize| {
        frames
            .iter()
            .filter(|f| f["original_index"] == i)
            .collect::<Vec<_>>()
    };
    let want: Vec<(String, u64)> = inlined["addr2line"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["function"].as_str().unwrap().to_owned(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect();
    for i in [0, 1, 2, 7] {
        let got: Vec<(String, u64)> = by_index(i)
            .iter()
            .map(|f| {
                (
                    f["function"].as_str().unwrap().to_owned(),
                    f["lineno"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, want, "frame {i}");
        assert!(by_index(i).iter().all(|f| f["status"] == "symbolicated"));
    }
    assert_eq!(by_index(0)[0]["package"], "/usr/bin/c_dwarf5");
    assert!(by_index(0)[0]["sym_addr"]
        .as_str()
        .unwrap()
        .starts_with("0x7f"));
    assert_eq!(by_index(3)[0]["status"], "missing");
    assert!(by_index(3)[0]["diagnostic"]
        .as_str()
        .unwrap()
        .contains("no debug file"));
    assert_eq!(by_index(4)[0]["status"], "missing");
    assert_eq!(by_index(5)[0]["status"], "unknown_image");
    assert_eq!(
        by_index(6)[0]["status"],
        "missing_symbol",
        "{:?}",
        by_index(6)
    );
    assert!(by_index(6)[0]["diagnostic"]
        .as_str()
        .unwrap()
        .contains("no function covers"));
    assert_eq!(by_index(8)[0]["status"], "unknown_image");
    let statuses: Vec<&str> = r["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["debug_status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["found", "missing", "missing"]);
    assert_eq!(r["modules"][0]["features"]["has_debug_info"], true);
    // Addresses are always rendered as lowercase hex strings.
    assert_eq!(
        frames[0]["instruction_addr"],
        format!("{:#x}", IMAGE + addr)
    );
}

#[tokio::test]
async fn garbage_addresses_and_huge_requests_are_4xx() {
    let app = TestApp::with_config(|c| c.limits.max_frames = 100);
    let r = app
        .post_json(
            "/api/v1/projects/app/symbolicate/native",
            &json!({"modules": [], "stacktraces": [{"frames": [{"instruction_addr": "0xZZZ"}]}]}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "invalid_json");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("0xZZZ"));
    let frames: Vec<Value> = (0..101).map(frame).collect();
    let r = app
        .post_json(
            "/api/v1/projects/app/symbolicate/native",
            &json!({"modules": [], "stacktraces": [{"frames": frames}]}),
        )
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.error_code(), "too_many_frames");
    // Overlapping modules: the closest start below the address wins; no error.
    upload(&app, "c_dwarf5").await;
    let o = oracle("c_dwarf5");
    let r = app
        .native("app", &json!({
            "modules": [
                {"type": "elf", "debug_id": "00000000-0000-0000-0000-000000000001", "image_addr": IMAGE - 0x1000, "image_size": 0x100000},
                {"type": "elf", "debug_id": o["debug_id"], "image_addr": IMAGE, "image_size": 0x10000},
            ],
            "stacktraces": [{"frames": [{"instruction_addr": IMAGE + 0x1185, "adjust_instruction_addr": false}]}],
        })).await;
    assert_eq!(r["stacktraces"][0]["frames"][0]["status"], "symbolicated");
    // Symbolicator's alias.
    let r = app
        .post_json(
            "/symbolicate?scope=app",
            &json!({"modules": [], "stacktraces": [{"frames": [frame(1)]}]}),
        )
        .await
        .ok()
        .json();
    assert_eq!(r["stacktraces"][0]["frames"][0]["status"], "unknown_image");
}

/// File offset of the code section's payload (what wasm DWARF addresses count from).
fn wasm_code_payload(bytes: &[u8]) -> u64 {
    let leb = |pos: &mut usize| {
        let (mut n, mut shift) = (0u64, 0);
        loop {
            let b = bytes[*pos];
            *pos += 1;
            n |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return n;
            }
        }
    };
    let mut pos = 8;
    loop {
        let id = bytes[pos];
        pos += 1;
        let size = leb(&mut pos) as usize;
        if id == 10 {
            return pos as u64;
        }
        pos += size;
    }
}

#[tokio::test]
async fn wasm_with_a_build_id_symbolicates_by_file_offset() {
    let app = TestApp::new();
    let wasm = fixture("native/out/c_wasm_buildid.wasm");
    let build_id = String::from_utf8(fixture("native/out/c_wasm_buildid.txt"))
        .unwrap()
        .trim()
        .to_owned();
    let v = app
        .upload_debug_file("app", "c_wasm.wasm", wasm.clone())
        .await
        .ok()
        .json();
    let f = &v["debug_files"][0];
    assert_eq!(f["kind"], "wasm");
    assert_eq!(
        f["code_id"],
        build_id.as_str(),
        "the build ID written by the fixture script"
    );
    let o = oracle("c_wasm");
    let payload = wasm_code_payload(&wasm);
    let samples: Vec<&Value> = o["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] != "outside")
        .collect();
    let frames: Vec<Value> = samples
        .iter()
        .map(|s| json!({"instruction_addr": hex(&s["addr"]) + payload, "adjust_instruction_addr": false}))
        .collect();
    let r = app
        .native("app", &json!({
            "modules": [{"type": "wasm", "debug_id": f["debug_id"], "code_id": build_id, "image_addr": 0, "image_size": wasm.len()}],
            "stacktraces": [{"frames": frames}],
        })).await;
    let out = r["stacktraces"][0]["frames"].as_array().unwrap();
    let mut matched = 0;
    for (i, s) in samples.iter().enumerate() {
        let ours: Vec<(String, u64)> = out
            .iter()
            .filter(|f| f["original_index"] == i && f["status"] == "symbolicated")
            .map(|f| {
                (
                    fname(f["function"].as_str().unwrap_or("")),
                    f["lineno"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        let want: Vec<(String, u64)> = s["llvm_symbolizer"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    fname(f["function"].as_str().unwrap_or("")),
                    f["line"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        matched += usize::from(ours == want);
    }
    let rate = matched as f64 / samples.len() as f64;
    assert!(rate >= 0.995, "wasm: {matched}/{}", samples.len());
}

/// A source bundle as `sentry-cli debug-files bundle-sources` makes it (symbolic's writer),
/// holding the C sources under the paths the DWARF names.
fn source_bundle(debug_id: &str) -> Vec<u8> {
    use symbolic::debuginfo::sourcebundle::{SourceBundleWriter, SourceFileInfo, SourceFileType};
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = SourceBundleWriter::start(&mut out).unwrap();
    w.set_attribute("debug_id", debug_id);
    w.set_attribute("object_name", "c_dwarf5");
    w.set_attribute("arch", "x86_64");
    for f in ["app.c", "util.c"] {
        let mut info = SourceFileInfo::new();
        info.set_ty(SourceFileType::Source);
        info.set_path(format!("/build/src/c/{f}"));
        let src = fixture(&format!("native/src/c/{f}"));
        w.add_file(format!("build/src/c/{f}"), &src[..], info)
            .unwrap();
    }
    w.finish().unwrap();
    out.into_inner()
}

#[tokio::test]
async fn source_bundles_give_source_context() {
    let app = TestApp::new();
    let o = oracle("c_dwarf5");
    upload(&app, "c_dwarf5").await;
    let v = app
        .upload_debug_file(
            "app",
            "c_dwarf5.src.zip",
            source_bundle(o["debug_id"].as_str().unwrap()),
        )
        .await
        .ok()
        .json();
    assert_eq!(v["debug_files"][0]["kind"], "sourcebundle", "{v}");
    let sample = o["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "mid" && s["addr2line"][0]["file"] == "/build/src/c/app.c")
        .unwrap();
    let line = sample["addr2line"][0]["line"].as_u64().unwrap() as usize;
    let r = app
        .native("app", &json!({
            "modules": [{"type": "elf", "debug_id": o["debug_id"], "image_addr": format!("{IMAGE:#x}"), "image_size": 0x10000}],
            "stacktraces": [{"frames": [{"instruction_addr": IMAGE + hex(&sample["addr"]), "adjust_instruction_addr": false}]}],
        })).await;
    let f = &r["stacktraces"][0]["frames"][0];
    let src = String::from_utf8(fixture("native/src/c/app.c")).unwrap();
    assert_eq!(f["context_line"].as_str(), src.lines().nth(line - 1), "{f}");
    assert_eq!(
        f["pre_context"].as_array().map(Vec::len),
        Some(5.min(line - 1))
    );
    assert_eq!(r["modules"][0]["features"]["has_sources"], true);
}

#[tokio::test]
async fn a_debug_file_that_fails_to_build_is_malformed_not_a_500() {
    let app = TestApp::new();
    let o = oracle("c_dwarf5");
    // Headers intact (so the upload is accepted), DWARF unit headers destroyed.
    let mut elf = fixture("native/out/c_dwarf5");
    for b in &mut elf[0x30a7..0x30a7 + 0xa8e] {
        *b = 0xff;
    }
    app.upload_debug_file("app", "c_dwarf5", elf).await.ok();
    let r = app
        .native("app", &json!({
            "modules": [{"type": "elf", "debug_id": o["debug_id"], "image_addr": format!("{IMAGE:#x}"), "image_size": 0x10000}],
            "stacktraces": [{"frames": [{"instruction_addr": IMAGE + 0x1185}]}],
        })).await;
    let f = &r["stacktraces"][0]["frames"][0];
    assert_eq!(f["status"], "malformed", "{r}");
    assert!(
        f["diagnostic"]
            .as_str()
            .unwrap()
            .contains("could not be processed"),
        "{f}"
    );
    assert_eq!(r["modules"][0]["debug_status"], "malformed");
}

/// clang `-gembed-source`: the sources sit in the DWARF 5 line table, so context needs no
/// source bundle. (What line an address maps to is checked on the oracle binaries; this
/// checks that the context shown is that line of the embedded file.)
#[tokio::test]
async fn sources_embedded_in_dwarf_give_source_context() {
    let app = TestApp::new();
    let v = app
        .upload_debug_file("app", "c_embedsrc", fixture("native/out/c_embedsrc"))
        .await
        .ok()
        .json();
    let f = &v["debug_files"][0];
    assert!(
        f["features"]
            .as_array()
            .unwrap()
            .contains(&json!("sources")),
        "{f}"
    );
    let frames: Vec<Value> = (0x1100u64..0x1400)
        .step_by(4)
        .map(|a| json!({"instruction_addr": IMAGE + a, "adjust_instruction_addr": false}))
        .collect();
    let r = app
        .native("app", &json!({
            "modules": [{"type": "elf", "debug_id": f["debug_id"], "image_addr": format!("{IMAGE:#x}"), "image_size": 0x10000}],
            "stacktraces": [{"frames": frames}],
        }))
        .await;
    let sources: std::collections::HashMap<&str, String> = ["app.c", "util.c"]
        .into_iter()
        .map(|n| {
            (
                n,
                String::from_utf8(fixture(&format!("native/src/c/{n}"))).unwrap(),
            )
        })
        .collect();
    let mut checked = 0;
    for frame in r["stacktraces"][0]["frames"].as_array().unwrap() {
        let (Some(path), Some(line)) = (frame["abs_path"].as_str(), frame["lineno"].as_u64())
        else {
            continue;
        };
        let Some(src) = sources.get(base(path)) else {
            continue;
        };
        if line == 0 {
            continue;
        }
        assert_eq!(
            frame["context_line"].as_str(),
            src.lines().nth(line as usize - 1),
            "{frame}"
        );
        checked += 1;
    }
    assert!(checked > 50, "only {checked} frames with embedded sources");
    assert_eq!(r["modules"][0]["features"]["has_sources"], true);
}

/// A skeleton uploaded without its `.dwo`/`.dwp` says so: the upload warns with the DWO IDs,
/// the listing shows them as missing, and the module and its frames carry the reason; once
/// the package is uploaded, all of that goes away.
#[tokio::test]
async fn a_skeleton_without_its_split_dwarf_says_so() {
    let app = TestApp::new();
    let r = app
        .upload_debug_file("app", "c_splitdwarf", fixture("native/out/c_splitdwarf"))
        .await
        .ok()
        .json();
    let missing = r["debug_files"][0]["missing_dwo_ids"].clone();
    assert_eq!(missing.as_array().map(Vec::len), Some(2), "{r}");
    let warning = r["warnings"][0].as_str().unwrap_or_default();
    assert!(warning.contains(".dwo or .dwp"), "{r}");
    let listed = app
        .get("/api/v1/projects/app/debug-files")
        .await
        .ok()
        .json();
    assert_eq!(listed["debug_files"][0]["missing_dwo_ids"], missing);

    let o = oracle("c_splitdwarf");
    let addr = o["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] != "outside")
        .unwrap()["addr"]
        .clone();
    let body = json!({
        "modules": [{"type": "elf", "debug_id": o["debug_id"], "image_addr": format!("{IMAGE:#x}"),
                     "image_size": 0x1000_0000u64, "arch": "x86_64"}],
        "stacktraces": [{"frames": [{"instruction_addr": format!("{:#x}", IMAGE + hex(&addr) - hex(&o["image_vmaddr"])),
                                      "adjust_instruction_addr": false}]}],
    });
    let before = app.native("app", &body).await;
    assert_eq!(
        before["modules"][0]["debug_status"], "split_dwarf_missing",
        "{before}"
    );
    assert!(before["modules"][0]["diagnostic"]
        .as_str()
        .unwrap_or_default()
        .contains("DWO IDs"));
    let frame = &before["stacktraces"][0]["frames"][0];
    assert!(
        frame["diagnostic"]
            .as_str()
            .unwrap_or_default()
            .contains("not uploaded"),
        "{frame}"
    );

    upload(&app, "c_splitdwarf.dwp").await;
    let listed = app
        .get("/api/v1/projects/app/debug-files")
        .await
        .ok()
        .json();
    for d in listed["debug_files"].as_array().unwrap() {
        assert!(d.get("missing_dwo_ids").is_none(), "{d}");
    }
    let after = app.native("app", &body).await;
    assert_eq!(after["modules"][0]["debug_status"], "found", "{after}");
    assert!(
        after["stacktraces"][0]["frames"][0]
            .get("diagnostic")
            .is_none(),
        "{after}"
    );
}
