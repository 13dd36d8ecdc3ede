//! Downloads that arrive compressed: Microsoft CAB (symstore's `foo.pd_`), gzip, zstd and
//! zlib, recognised by their magic bytes and decompressed to a new file, never past the
//! source's size limit (a small archive claiming or inflating to gigabytes stops at the
//! limit). Anything else is taken as it is.

use std::io::{Read, Write};
use std::path::Path;

use super::net::Miss;

/// Decompresses `input` into `output` when it is compressed. Returns whether it was.
pub fn unpack(input: &Path, output: &Path, max_size: u64) -> Result<bool, Miss> {
    let io = |e: std::io::Error| Miss::Error(format!("reading the download: {e}"));
    let mut magic = [0u8; 4];
    let n = std::fs::File::open(input)
        .and_then(|mut f| f.read(&mut magic))
        .map_err(io)?;
    let magic = &magic[..n];
    let file = || std::fs::File::open(input).map_err(io);
    if magic.starts_with(b"MSCF") {
        let mut cab = cab::Cabinet::new(file()?)
            .map_err(|e| Miss::Error(format!("not a readable CAB archive: {e}")))?;
        let entry = cab
            .folder_entries()
            .flat_map(|f| f.file_entries())
            .map(|e| (e.name().to_owned(), u64::from(e.uncompressed_size())))
            .next();
        let Some((name, size)) = entry else {
            return Err(Miss::Error("the CAB archive is empty".into()));
        };
        if size > max_size {
            return Err(Miss::TooLarge(max_size));
        }
        let reader = cab
            .read_file(&name)
            .map_err(|e| Miss::Error(format!("CAB entry {name:?}: {e}")))?;
        copy_limited(reader, output, max_size)?;
        return Ok(true);
    }
    if magic.starts_with(&[0x1f, 0x8b]) {
        copy_limited(flate2::read::GzDecoder::new(file()?), output, max_size)?;
        return Ok(true);
    }
    if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = ruzstd::decoding::StreamingDecoder::new(file()?)
            .map_err(|e| Miss::Error(format!("not a readable zstd stream: {e}")))?;
        copy_limited(decoder, output, max_size)?;
        return Ok(true);
    }
    if magic.len() >= 2
        && magic[0] == 0x78
        && matches!(magic[1], 0x01 | 0x5e | 0x9c | 0xda)
        && u16::from_be_bytes([magic[0], magic[1]]) % 31 == 0
    {
        copy_limited(flate2::read::ZlibDecoder::new(file()?), output, max_size)?;
        return Ok(true);
    }
    Ok(false)
}

fn copy_limited(mut reader: impl Read, output: &Path, max_size: u64) -> Result<u64, Miss> {
    let io = |e: std::io::Error| Miss::Error(format!("decompressing: {e}"));
    let mut out = std::fs::File::create(output).map_err(io)?;
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > max_size {
            return Err(Miss::TooLarge(max_size));
        }
        out.write_all(&buf[..n]).map_err(io)?;
    }
    out.flush().map_err(io)?;
    Ok(total)
}
