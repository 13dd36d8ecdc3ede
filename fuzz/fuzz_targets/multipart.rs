//! Multipart upload parsing, through the real router: `POST
//! /api/v1/projects/p/releases/1.0/files` with the input as a `multipart/form-data` body
//! (boundary `fuzz-boundary`), over a fresh data directory per input.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = common::runtime();
    rt.block_on(async {
        let app = common::app(dir.path());
        let request = common::post(
            "/api/v1/projects/p/releases/1.0/files",
            &format!("multipart/form-data; boundary={}", common::BOUNDARY),
            data.to_vec(),
        );
        let (status, body) = common::send(&app, request).await;
        common::check(status, &body);
    });
});
