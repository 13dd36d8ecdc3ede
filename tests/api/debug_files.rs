//! Debug-file uploads: every format is recognised and described; IDs come from the fixture
//! oracle (readelf / llvm tools), never from Tracemap.

use crate::common::*;

fn oracle(name: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture(&format!("native/oracle/{name}.json"))).expect("oracle json")
}

async fn upload(app: &TestApp, path: &str) -> serde_json::Value {
    let name = path.rsplit('/').next().unwrap();
    app.upload_debug_file("app", name, fixture(path))
        .await
        .ok()
        .json()
}

#[tokio::test]
async fn elf_with_dwarf_reports_ids_arch_and_features() {
    let app = TestApp::new();
    let o = oracle("c_dwarf5");
    let v = upload(&app, "native/out/c_dwarf5").await;
    let f = &v["debug_files"][0];
    assert_eq!(f["kind"], "elf");
    assert_eq!(f["arch"], "x86_64");
    assert_eq!(f["debug_id"], o["debug_id"]);
    assert_eq!(f["code_id"], o["code_id"]);
    let features: Vec<&str> = f["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert!(
        features.contains(&"symtab") && features.contains(&"debug") && features.contains(&"unwind"),
        "{features:?}"
    );
}

#[tokio::test]
async fn stripped_binary_and_debug_companion_share_ids() {
    let app = TestApp::new();
    let o = oracle("c_stripped_all");
    let exe = upload(&app, "native/out/c_stripped_all").await;
    let dbg = upload(&app, "native/out/c_dwarf5.debug").await;
    assert_eq!(exe["debug_files"][0]["debug_id"], o["debug_id"]);
    assert_eq!(dbg["debug_files"][0]["debug_id"], o["debug_id"]);
    assert_eq!(dbg["debug_files"][0]["object_kind"], "dbg");
    assert!(!exe["debug_files"][0]["features"]
        .as_array()
        .unwrap()
        .contains(&"debug".into()));
    let list = app
        .get(&format!(
            "/api/v1/projects/app/debug-files?debug_id={}",
            o["debug_id"].as_str().unwrap()
        ))
        .await
        .ok()
        .json();
    assert_eq!(list["debug_files"].as_array().unwrap().len(), 2);
    let by_code = app
        .get(&format!(
            "/api/v1/projects/app/debug-files?code_id={}",
            o["code_id"].as_str().unwrap()
        ))
        .await
        .ok()
        .json();
    assert_eq!(by_code["debug_files"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn every_debug_format_is_recognised() {
    let app = TestApp::new();
    for (path, kind, oracle_name) in [
        ("native/out/c_dwarf4", "elf", "c_dwarf4"),
        ("native/out/c_gz_zlib", "elf", "c_gz_zlib"),
        ("native/out/cpp_dwarf5", "elf", "cpp_dwarf5"),
        ("native/out/rust_app", "elf", "rust_app"),
        ("native/out/c_macho", "macho", "c_macho"),
        ("native/out/c_pe.exe", "pe", "c_pe"),
        ("native/out/c_pe.pdb", "pdb", "c_pe"),
        ("native/out/c_dwarf5.sym", "breakpad", "c_breakpad"),
        ("native/out/c_pe.sym", "breakpad", "c_pe_breakpad"),
    ] {
        let v = upload(&app, path).await;
        let f = &v["debug_files"][0];
        assert_eq!(f["kind"], kind, "{path}");
        let want = oracle(oracle_name)["debug_id"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase();
        assert_eq!(
            f["debug_id"].as_str().unwrap().to_ascii_lowercase(),
            want,
            "{path}"
        );
    }
}

#[tokio::test]
async fn dsym_zip_is_unpacked_and_non_debug_entries_skipped() {
    let app = TestApp::new();
    let z = zip(&[
        (
            "c_macho.dSYM/Contents/Info.plist",
            &fixture("native/out/c_macho.dSYM/Contents/Info.plist"),
        ),
        (
            "c_macho.dSYM/Contents/Resources/DWARF/c_macho",
            &fixture("native/out/c_macho.dSYM/Contents/Resources/DWARF/c_macho"),
        ),
    ]);
    let v = app
        .upload_debug_file("app", "c_macho.dSYM.zip", z)
        .await
        .ok()
        .json();
    assert_eq!(v["debug_files"].as_array().unwrap().len(), 1);
    assert_eq!(v["debug_files"][0]["kind"], "macho");
    assert_eq!(
        v["debug_files"][0]["debug_id"],
        oracle("c_macho")["debug_id"]
    );
    assert!(v["warnings"][0].as_str().unwrap().contains("Info.plist"));
}

#[tokio::test]
async fn split_dwarf_units_are_indexed_by_dwo_id() {
    let app = TestApp::new();
    let exe = upload(&app, "native/out/c_splitdwarf").await;
    let needs: Vec<String> =
        serde_json::from_value(exe["debug_files"][0]["dwo_ids"].clone()).unwrap();
    assert_eq!(needs.len(), 2, "{exe}");
    let dwp = upload(&app, "native/out/c_splitdwarf.dwp").await;
    assert_eq!(dwp["debug_files"][0]["kind"], "split_dwarf");
    let provides: Vec<String> =
        serde_json::from_value(dwp["debug_files"][0]["dwo_ids"].clone()).unwrap();
    let mut a = needs.clone();
    a.sort();
    let mut b = provides;
    b.sort();
    assert_eq!(a, b);
    for dwo in [
        "native/out/c_splitdwarf-app.dwo",
        "native/out/c_splitdwarf4-util.dwo",
    ] {
        let v = upload(&app, dwo).await;
        assert_eq!(v["debug_files"][0]["object_kind"], "dwo", "{dwo}");
    }
}

#[tokio::test]
async fn unknown_truncated_and_idless_files_are_rejected() {
    let app = TestApp::new();
    let r = app
        .upload_debug_file("app", "notes.txt", b"hello world".to_vec())
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "unknown_debug_format");
    let mut elf = fixture("native/out/c_dwarf5");
    elf.truncate(200);
    let r = app.upload_debug_file("app", "trunc", elf).await;
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        [
            "debug_file_malformed",
            "debug_id_missing",
            "unknown_debug_format"
        ]
        .contains(&r.error_code().as_str()),
        "{}",
        r.error_code()
    );
    // LLVM 14's wasm linker writes no build ID: there is nothing to find the file by.
    let r = app
        .upload_debug_file("app", "c_wasm.wasm", fixture("native/out/c_wasm.wasm"))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "debug_id_missing");
    let r = app
        .upload_debug_file(
            "app",
            "x.zip",
            zip(&[("readme.txt", b"no debug files here")]),
        )
        .await;
    assert_eq!(r.error_code(), "no_debug_files");
    assert!(app
        .get("/api/v1/projects/app/debug-files")
        .await
        .ok()
        .json()["debug_files"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn deleting_debug_files_by_debug_id() {
    let app = TestApp::new();
    let o = oracle("c_dwarf5");
    upload(&app, "native/out/c_dwarf5").await;
    upload(&app, "native/out/cpp_dwarf5").await;
    let id = o["debug_id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/api/v1/projects/app/debug-files/{id}"))
            .await
            .status,
        204
    );
    let list = app
        .get("/api/v1/projects/app/debug-files")
        .await
        .ok()
        .json();
    let ids: Vec<_> = list["debug_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["debug_id"].clone())
        .collect();
    assert_eq!(ids, [oracle("cpp_dwarf5")["debug_id"].clone()]);
    assert_eq!(
        app.delete(&format!("/api/v1/projects/app/debug-files/{id}"))
            .await
            .status,
        404
    );
    assert_eq!(
        app.delete("/api/v1/projects/app/debug-files/garbage")
            .await
            .status,
        400
    );
}

/// One unusable debug file in a zip is skipped with a warning, like entries that are not
/// debug files; the zip is refused only when nothing usable remains.
#[tokio::test]
async fn a_bad_debug_file_in_a_zip_is_skipped_with_a_warning() {
    let app = TestApp::new();
    let wasm = fixture("native/out/c_wasm.wasm");
    let good = fixture("native/out/c_dwarf5");
    let r = app
        .post_bytes(
            "/api/v1/projects/app/debug-files",
            zip(&[
                ("syms/c_dwarf5", &good),
                ("syms/c_wasm.wasm", &wasm),
                ("syms/notes.txt", b"not a debug file"),
            ]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["debug_files"].as_array().unwrap().len(), 1, "{v}");
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("c_wasm.wasm"), "{v}");
    assert!(warnings.contains("notes.txt"), "{v}");
    // Nothing usable: the entry's own error, not a generic one.
    let r = app
        .post_bytes(
            "/api/v1/projects/app/debug-files",
            zip(&[("c_wasm.wasm", &wasm), ("notes.txt", b"text")]),
        )
        .await;
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.error_code(), "debug_id_missing");
}
