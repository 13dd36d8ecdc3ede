//! Hostile inputs over HTTP: each gets a stable 4xx code (or, for frames, a per-frame status),
//! the server stays up, what was stored before answers exactly the same afterwards, and the
//! process's peak memory stays under a stated bound.
//!
//! The peak is measured in a process of its own: the outer test re-runs this test binary
//! with only [`hostile_inputs_child`] selected (and `TRACEMAP_HOSTILE_CHILD` set), so other
//! tests running in parallel do not count; the child reports its `VmHWM`.

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{json, Value};

use crate::common::*;

/// Peak resident memory the whole hostile suite may reach, in the child process (test
/// harness and tokio included). The largest input sent is 1 GiB (a multipart text part),
/// streamed: holding any of it whole would pass this bound.
const PEAK_RSS_BOUND_MIB: u64 = 400;

const CHILD: &str = "TRACEMAP_HOSTILE_CHILD";

#[test]
fn hostile_inputs_are_refused_within_a_memory_bound() {
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args([
            "hostile::hostile_inputs_child",
            "--exact",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    let peak = stdout
        .lines()
        .chain(stderr.lines())
        .find_map(|l| l.split_once("hostile peak rss KiB: ").map(|(_, v)| v))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("the child ran no hostile suite:\n{stdout}\n{stderr}"));
    eprintln!(
        "hostile suite: peak RSS {} MiB (bound {PEAK_RSS_BOUND_MIB} MiB)",
        peak / 1024
    );
    assert!(
        peak / 1024 < PEAK_RSS_BOUND_MIB,
        "peak RSS {} MiB over the bound of {PEAK_RSS_BOUND_MIB} MiB",
        peak / 1024
    );
}

/// The suite itself; runs only as the child of the test above (which sets `CHILD`), so its
/// memory is measured alone.
#[test]
fn hostile_inputs_child() {
    if std::env::var_os(CHILD).is_none() {
        // Run by the parent test in a process of its own; nothing to do in the shared one.
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(suite());
    let status = std::fs::read_to_string("/proc/self/status").expect("proc status");
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .expect("VmHWM")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .to_owned();
    println!("hostile peak rss KiB: {hwm}");
}

fn frame(path: &str, line: Value, col: Value) -> Value {
    json!({"abs_path": path, "lineno": line, "colno": col})
}

async fn baseline(app: &TestApp) -> Value {
    app.js(
        "p",
        &json!({"release": "1.0", "stacktraces": [{"frames": [frame("~/app.js", json!(1), json!(1))]}]}),
    )
    .await
}

/// Sends `request` and checks the answer is the 4xx `code`.
async fn refused(app: &TestApp, what: &str, request: Request<Body>, status: u16, code: &str) {
    let r = app.send(request).await;
    assert_eq!(
        r.status,
        status,
        "{what}: {}",
        String::from_utf8_lossy(&r.body[..r.body.len().min(500)])
    );
    assert_eq!(r.error_code(), code, "{what}");
}

fn post(uri: &str, content_type: &str, body: Body) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("content-type", content_type)
        .body(body)
        .expect("request")
}

/// A stream of `total` bytes of `fill`, produced on the fly.
fn generated(total: u64, fill: u8) -> Body {
    const CHUNK: usize = 64 << 10;
    let chunks = total.div_ceil(CHUNK as u64);
    let stream = futures::stream::iter(0..chunks).map(move |i| {
        let n = (total - i * CHUNK as u64).min(CHUNK as u64) as usize;
        Ok::<_, std::io::Error>(bytes::Bytes::from(vec![fill; n]))
    });
    Body::from_stream(stream)
}

use futures::StreamExt;

/// A zip of one small entry whose end record claims `entries` entries.
fn zip_claiming(entries: u16) -> Vec<u8> {
    let mut z = zip(&[("a.js", b"x\n")]);
    let eocd = z
        .windows(4)
        .rposition(|w| w == b"PK\x05\x06")
        .expect("end record");
    z[eocd + 8..eocd + 10].copy_from_slice(&entries.to_le_bytes());
    z[eocd + 10..eocd + 12].copy_from_slice(&entries.to_le_bytes());
    z
}

/// A zip whose central directory lists `copies` entries that all point at the same local
/// entry (the overlap "quine"-style bombs use): every copy would inflate the same data.
fn zip_overlapping(copies: u16) -> Vec<u8> {
    let zeros = vec![0u8; 1 << 20];
    let z = zip(&[("a.js", &zeros)]);
    let cd = z
        .windows(4)
        .position(|w| w == b"PK\x01\x02")
        .expect("central directory");
    let eocd = z
        .windows(4)
        .rposition(|w| w == b"PK\x05\x06")
        .expect("end record");
    let entry = &z[cd..eocd];
    let mut out = z[..cd].to_vec();
    for i in 0..copies {
        let mut e = entry.to_vec();
        // Same length names, a different one each: a0.js, a1.js … (the name starts at 46).
        let name = format!("{:04}", i);
        e[46..50].copy_from_slice(name.as_bytes());
        out.extend_from_slice(&e);
    }
    let cd_size = (out.len() - cd) as u32;
    let mut end = z[eocd..].to_vec();
    end[8..10].copy_from_slice(&copies.to_le_bytes());
    end[10..12].copy_from_slice(&copies.to_le_bytes());
    end[12..16].copy_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&end);
    out
}

async fn suite() {
    let app = TestApp::with_config(|c| {
        c.limits.max_inflated_bytes = 8 << 20;
        c.limits.max_zip_entries = 1000;
    });
    app.upload_release(
        "p",
        "1.0",
        None,
        &[
            (
                "~/app.js",
                b"boom();\n//# sourceMappingURL=app.js.map\n".as_slice(),
            ),
            ("~/app.js.map", &tiny_map(None)),
        ],
    )
    .await
    .ok();
    let before = baseline(&app).await;
    assert_eq!(
        before["stacktraces"][0]["frames"][0]["lineno"], 10,
        "{before}"
    );
    let mut tried = 0;

    // Zips: wide bombs, huge central directories, traversal, absolute names, symlinks,
    // nested zips.
    let zeros = vec![0u8; 1 << 20];
    let wide: Vec<(String, &[u8])> = (0..20).map(|i| (format!("f{i}.js"), &zeros[..])).collect();
    let wide: Vec<(&str, &[u8])> = wide.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    let bundle = |bytes: Vec<u8>| {
        post(
            "/api/v1/projects/p/bundles?release=2.0",
            "application/zip",
            Body::from(bytes),
        )
    };
    refused(
        &app,
        "wide zip bomb",
        bundle(zip(&wide)),
        413,
        "zip_too_large",
    )
    .await;
    let inner = zip(&wide);
    // Zips inside a zip are files, never opened: a nested bomb is stored at its packed size.
    let r = app.send(bundle(zip(&[("inner.zip", &inner)]))).await;
    assert_eq!(
        r.status,
        201,
        "nested zip: {}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(r.json()["artifacts"][0]["size"].as_u64() < Some(1 << 20));
    refused(
        &app,
        "huge central directory",
        bundle(zip_claiming(60_000)),
        413,
        "zip_too_many_entries",
    )
    .await;
    // Overlapping entries: each inflates the same megabyte; counted as produced, they pass
    // the inflated-bytes limit (8 MiB here) and are refused.
    let r = app.send(bundle(zip_overlapping(20))).await;
    assert!(
        (r.status == 413 && r.error_code() == "zip_too_large")
            || (r.status == 400 && r.error_code() == "zip_invalid"),
        "overlapping entries: {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    refused(
        &app,
        "traversal",
        bundle(zip(&[("../../etc/passwd", b"x")])),
        400,
        "zip_unsafe_path",
    )
    .await;
    refused(
        &app,
        "absolute name",
        bundle(zip(&[("/etc/passwd", b"x")])),
        400,
        "zip_unsafe_path",
    )
    .await;
    refused(
        &app,
        "not a zip",
        bundle(b"PK\x03\x04 but nothing else".to_vec()),
        400,
        "zip_invalid",
    )
    .await;
    let symlink = {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.add_symlink(
            "link.js",
            "/etc/passwd",
            zip::write::SimpleFileOptions::default(),
        )
        .expect("symlink");
        w.start_file("a.js", zip::write::SimpleFileOptions::default())
            .expect("entry");
        w.write_all(b"x").expect("write");
        w.finish().expect("finish").into_inner()
    };
    refused(
        &app,
        "symlink entry",
        bundle(symlink),
        400,
        "zip_unsafe_path",
    )
    .await;
    tried += 8;

    // Multipart: a 1 GiB text part (streamed, cut off at the part limit), too many parts.
    let boundary = "hostileboundary";
    let head = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"header\"\r\n\r\n");
    let huge = Body::from_stream(
        futures::stream::once(async move { Ok::<_, std::io::Error>(bytes::Bytes::from(head)) })
            .chain(
                generated(1 << 30, b'a')
                    .into_data_stream()
                    .map(|r| r.map_err(std::io::Error::other)),
            ),
    );
    refused(
        &app,
        "1 GiB header part",
        post(
            "/api/v1/projects/p/releases/2.0/files",
            &format!("multipart/form-data; boundary={boundary}"),
            huge,
        ),
        413,
        "too_large",
    )
    .await;
    let mut many = Multipart::new();
    for i in 0..1001 {
        many = many.text("header", &format!("x-{i}: y"));
    }
    let r = app
        .post_multipart(
            "/api/v1/projects/p/releases/2.0/files",
            many.file("file", "a.js", b"x"),
        )
        .await;
    assert_eq!(r.status, 413, "too many parts");
    tried += 2;

    // Source maps: invalid VLQ, out-of-range indices, sources longer than sourcesContent,
    // huge mappings.
    let maps: Vec<(&str, Value)> = vec![
        (
            "invalid VLQ",
            json!({"version": 3, "sources": ["a.js"], "names": [], "mappings": "!!!!"}),
        ),
        (
            "source index out of range",
            json!({"version": 3, "sources": ["a.js"], "names": [], "mappings": "ACAA"}),
        ),
        (
            "name index out of range",
            json!({"version": 3, "sources": ["a.js"], "names": [], "mappings": "AAAAA"}),
        ),
    ];
    for (what, map) in maps {
        let form = Multipart::new().text("url", "~/bad.js.map").file(
            "file",
            "bad.js.map",
            &serde_json::to_vec(&map).unwrap(),
        );
        let r = app
            .post_multipart("/api/v1/projects/p/releases/3.0/files", form)
            .await;
        assert_eq!(
            r.status,
            400,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.error_code(), "sourcemap_malformed", "{what}");
        tried += 1;
    }
    // Valid but odd: more sources than contents, a long line of mappings; stored, and
    // lookups on it answer per frame.
    let mappings = "AAAA,".repeat(200_000);
    let odd = json!({"version": 3, "sources": ["a.js", "b.js", "c.js"], "sourcesContent": ["x"], "names": [], "mappings": mappings});
    app.upload_release(
        "p",
        "3.0",
        None,
        &[
            (
                "~/odd.js",
                b"x();\n//# sourceMappingURL=odd.js.map\n".as_slice(),
            ),
            ("~/odd.js.map", &serde_json::to_vec(&odd).unwrap()),
        ],
    )
    .await
    .ok();
    tried += 1;

    // Frames: absurd positions, out-of-range numbers, many frames.
    let absurd = app
        .js(
            "p",
            &json!({"release": "3.0", "stacktraces": [{"frames": [
                frame("~/odd.js", json!(u32::MAX), json!(u32::MAX)),
                frame("~/odd.js", json!(1), json!(4_000_000)),
                frame("~/app.js", json!(1), json!(u32::MAX)),
            ]}]}),
        )
        .await;
    assert_eq!(
        absurd["stacktraces"][0]["frames"].as_array().map(Vec::len),
        Some(3)
    );
    let sym = |body: Vec<u8>| {
        post(
            "/api/v1/projects/p/symbolicate/js",
            "application/json",
            Body::from(body),
        )
    };
    refused(&app, "line beyond u32", sym(br#"{"stacktraces": [{"frames": [{"abs_path": "~/a.js", "lineno": 1e20, "colno": 1}]}]}"#.to_vec()), 400, "invalid_json").await;
    let frames: Vec<Value> = (0..100_000)
        .map(|_| frame("~/app.js", json!(1), json!(1)))
        .collect();
    refused(
        &app,
        "100k frames",
        sym(serde_json::to_vec(&json!({"stacktraces": [{"frames": frames}]})).unwrap()),
        413,
        "too_many_frames",
    )
    .await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    refused(
        &app,
        "deeply nested JSON",
        sym(format!("{{\"stacktraces\": {deep}}}").into_bytes()),
        400,
        "invalid_json",
    )
    .await;
    refused(
        &app,
        "non-UTF-8 body",
        sym(vec![0xff, 0xfe, b'{', 0x80]),
        400,
        "invalid_json",
    )
    .await;
    refused(
        &app,
        "oversize body",
        post(
            "/api/v1/projects/p/symbolicate/js",
            "application/json",
            generated(64 << 20, b' '),
        ),
        413,
        "body_too_large",
    )
    .await;
    tried += 6;

    // Native: addresses 0 and u64::MAX, modules of absurd size.
    let native = app
        .native(
            "p",
            &json!({"modules": [{"type": "elf", "code_id": "00", "image_addr": "0x0", "image_size": u64::MAX}],
                    "stacktraces": [{"frames": [{"instruction_addr": "0x0"}, {"instruction_addr": "0xffffffffffffffff"}]}]}),
        )
        .await;
    assert_eq!(
        native["stacktraces"][0]["frames"].as_array().map(Vec::len),
        Some(2),
        "{native}"
    );
    tried += 1;

    // Sentry-cli: a chunk whose name is not its content, oversize JSON.
    let form = Multipart::new().file("file", &"0".repeat(40), b"not what the name says");
    let r = app
        .post_multipart("/api/0/organizations/acme/chunk-upload/", form)
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "invalid_request");
    refused(
        &app,
        "oversize assemble JSON",
        post(
            "/api/0/organizations/acme/artifactbundle/assemble/",
            "application/json",
            generated(8 << 20, b' '),
        ),
        413,
        "body_too_large",
    )
    .await;
    tried += 2;

    // Minidumps: the fuzzer's allocation bomb (a handle stream of 0-byte descriptors, 2^32
    // of them), garbage, and a dump past `limits.max_minidump_bytes` (100 MiB), streamed.
    let bomb = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/regressions/minidump-handle-descriptors-oom.bin"
    ))
    .expect("regression input");
    for (what, bytes) in [
        ("allocation bomb", &bomb[1..]),
        ("garbage", &b"MDMP\x93\xa7"[..]),
    ] {
        let request = Multipart::new()
            .file("upload_file_minidump", "x.dmp", bytes)
            .request("/api/v1/projects/web/symbolicate/minidump", None);
        refused(&app, what, request, 400, "minidump_invalid").await;
        tried += 1;
    }
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"upload_file_minidump\"; filename=\"big.dmp\"\r\n\r\n"
    );
    let body =
        futures::stream::once(async move { Ok::<_, std::io::Error>(bytes::Bytes::from(head)) })
            .chain(futures::stream::iter((0..(200 << 20) / (1 << 20)).map(
                |_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; 1 << 20])),
            )));
    let r = app
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/api/v1/projects/web/symbolicate/minidump")
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(Body::from_stream(body))
                .expect("request"),
        )
        .await;
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    tried += 1;

    // Still up, and what was stored answers exactly as before.
    assert_eq!(app.get("/healthz").await.status, 200);
    assert_eq!(
        baseline(&app).await,
        before,
        "stored data answers differently"
    );
    eprintln!("hostile inputs tried: {tried}");
}
