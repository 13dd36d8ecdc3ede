//! Loading DWARF sections for gimli: the one place that turns an object file (or one of
//! symbolic's containers) into `gimli::Dwarf` / `gimli::DwarfPackage`.
//!
//! Sections are found by their standard name through the `object` crate, which also maps them
//! to `.zdebug_*` (ELF) and `__debug_*` / `__zdebug_*` (Mach-O) and says how they are
//! compressed (`SHF_COMPRESSED`, `.zdebug_*`). We decompress them ourselves, growing the
//! output as data arrives: `object`'s own decompression reserves the size the header claims
//! up front (the fuzzer found a section claiming 6.9 EB). A missing section is empty. This
//! module reads section bytes and nothing else: it never interprets DWARF and never
//! allocates what a header claims.

use std::borrow::Cow;

use gimli::{EndianSlice, RunTimeEndian, SectionId};
use object::{Object as _, ObjectSection as _};
use symbolic::debuginfo::dwarf::Dwarf as SymbolicDwarf;

use crate::native::NativeError;

pub(crate) type Slice<'s> = EndianSlice<'s, RunTimeEndian>;

/// Which names the sections have: the executable's `.debug_*`, or the `.debug_*.dwo` of a split
/// unit or package (sections without a `.dwo` name are then empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Names {
    Main,
    Dwo,
}

/// The byte order of `file`.
fn endian(file: &object::File<'_>) -> RunTimeEndian {
    if file.is_little_endian() {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    }
}

/// The (decompressed) data of DWARF section `id` in `file`, empty when absent.
fn section<'d>(
    file: &object::File<'d>,
    id: SectionId,
    names: Names,
) -> Result<Cow<'d, [u8]>, NativeError> {
    let name = match names {
        Names::Main => Some(id.name()),
        Names::Dwo => id.dwo_name(),
    };
    let Some((name, section)) = name.and_then(|n| Some((n, file.section_by_name(n)?))) else {
        return Ok(Cow::Borrowed(&[]));
    };
    let malformed = |e: String| NativeError::Malformed(format!("section {name}: {e}"));
    let compressed = section
        .compressed_data()
        .map_err(|e| malformed(e.to_string()))?;
    match compressed.format {
        object::CompressionFormat::None => Ok(Cow::Borrowed(compressed.data)),
        _ => decompress(&compressed).map(Cow::Owned).map_err(malformed),
    }
}

/// Decompresses a section without trusting its header for the allocation: the output grows
/// as data arrives, decoding stops one byte past the declared size, and a size that differs
/// from the declared one is an error.
fn decompress(compressed: &object::CompressedData<'_>) -> Result<Vec<u8>, String> {
    use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
    use std::io::Read;
    let declared = compressed.uncompressed_size;
    let limit = declared.saturating_add(1);
    let mut out = Vec::new();
    match compressed.format {
        object::CompressionFormat::Zlib => {
            flate2::read::ZlibDecoder::new(compressed.data)
                .take(limit)
                .read_to_end(&mut out)
                .map_err(|e| format!("invalid zlib data: {e}"))?;
        }
        object::CompressionFormat::Zstandard => {
            let mut input = compressed.data;
            while !input.is_empty() && (out.len() as u64) < limit {
                match ruzstd::decoding::StreamingDecoder::new(&mut input) {
                    Ok(decoder) => {
                        let room = limit - out.len() as u64;
                        decoder
                            .take(room)
                            .read_to_end(&mut out)
                            .map_err(|e| format!("invalid zstd data: {e}"))?;
                    }
                    Err(FrameDecoderError::ReadFrameHeaderError(
                        ReadFrameHeaderError::SkipFrame { length, .. },
                    )) => {
                        input = usize::try_from(length)
                            .ok()
                            .and_then(|length| input.get(length..))
                            .ok_or("invalid zstd data: a skippable frame runs past the end")?;
                    }
                    Err(e) => return Err(format!("invalid zstd data: {e}")),
                }
            }
        }
        other => return Err(format!("unsupported compression {other:?}")),
    }
    if out.len() as u64 != declared {
        return Err(format!(
            "decompresses to {}{} bytes, its header says {declared}",
            out.len(),
            if out.len() as u64 == limit {
                " or more"
            } else {
                ""
            }
        ));
    }
    Ok(out)
}

/// All DWARF sections of one file, owned (decompressed) or borrowed.
pub(crate) struct Sections<'d> {
    sections: gimli::DwarfSections<Cow<'d, [u8]>>,
    endian: RunTimeEndian,
}

impl<'d> Sections<'d> {
    /// The sections of `file` named as `names` says.
    pub(crate) fn load(file: &object::File<'d>, names: Names) -> Result<Self, NativeError> {
        let sections = gimli::DwarfSections::load(|id| section(file, id, names))?;
        Ok(Sections {
            sections,
            endian: endian(file),
        })
    }

    /// The sections of a container symbolic parses and `object` does not handle the way
    /// symbolic does (PE, wasm custom sections).
    pub(crate) fn from_symbolic(dwarf: &impl SymbolicDwarf<'d>) -> Self {
        let loaded: Result<_, std::convert::Infallible> = gimli::DwarfSections::load(|id| {
            Ok(dwarf
                .section(&id.name()[1..])
                .map(|section| section.data)
                .unwrap_or_default())
        });
        let sections = match loaded {
            Ok(sections) => sections,
            Err(never) => match never {},
        };
        Sections {
            sections,
            endian: dwarf.endianity(),
        }
    }

    /// gimli's view of the sections.
    pub(crate) fn dwarf(&self) -> gimli::Dwarf<Slice<'_>> {
        self.sections
            .borrow(|data| EndianSlice::new(data, self.endian))
    }
}

/// The `.dwo` sections of a split DWARF package (`.dwp`), with its unit indexes.
pub(crate) struct PackageSections<'d> {
    sections: gimli::DwarfPackageSections<Cow<'d, [u8]>>,
    endian: RunTimeEndian,
}

/// Error type for gimli's package loader, which wants to build it from a `gimli::Error`.
struct LoadError(NativeError);

impl From<gimli::Error> for LoadError {
    fn from(error: gimli::Error) -> Self {
        LoadError(NativeError::Malformed(format!(".dwp index: {error}")))
    }
}

impl<'d> PackageSections<'d> {
    /// `Some` when `file` is a package (has a `.debug_cu_index`).
    pub(crate) fn load(file: &object::File<'d>) -> Result<Option<Self>, NativeError> {
        if file.section_by_name(".debug_cu_index").is_none() {
            return Ok(None);
        }
        let sections = gimli::DwarfPackageSections::load(|id| {
            section(file, id, Names::Dwo).map_err(LoadError)
        })
        .map_err(|LoadError(e)| e)?;
        Ok(Some(PackageSections {
            sections,
            endian: endian(file),
        }))
    }

    /// gimli's view of the package; parses (and checks) its unit indexes.
    pub(crate) fn package(&self) -> Result<gimli::DwarfPackage<Slice<'_>>, NativeError> {
        let endian = self.endian;
        self.sections
            .borrow(
                |data| EndianSlice::new(data, endian),
                EndianSlice::new(&[], endian),
            )
            .map_err(|e| NativeError::Malformed(format!(".dwp index: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::decompress;
    use object::{CompressedData, CompressionFormat};

    fn zlib(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zstd(data: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
    }

    /// Found by `fuzz/fuzz_targets/debug_file.rs`
    /// (`fuzz/regressions/debug_file-compressed-section-claims-6.9EB.bin`): a compressed
    /// section whose header claims 0x6000000000000a8e bytes. `object` reserved that much up
    /// front (an abort under the address sanitizer, and any claim the allocator grants is
    /// memory taken on an attacker's word); we decode and compare instead.
    #[test]
    fn a_section_claiming_more_than_it_holds_is_malformed_without_reserving_it() {
        let text = b"debug info, 29 bytes of it..".repeat(100);
        for (format, data) in [
            (CompressionFormat::Zlib, zlib(&text)),
            (CompressionFormat::Zstandard, zstd(&text)),
        ] {
            let section = |uncompressed_size| CompressedData {
                format,
                data: &data,
                uncompressed_size,
            };
            assert_eq!(decompress(&section(text.len() as u64)).unwrap(), text);
            for claim in [0x6000_0000_0000_0a8e, u64::MAX, text.len() as u64 + 1] {
                let e = decompress(&section(claim)).unwrap_err();
                assert!(
                    e.contains(&format!("header says {claim}")),
                    "{format:?}: {e}"
                );
            }
            let e = decompress(&section(text.len() as u64 - 1)).unwrap_err();
            assert!(e.contains("or more"), "{format:?}: {e}");
        }
        let forged = include_bytes!(
            "../../../fuzz/regressions/debug_file-compressed-section-claims-6.9EB.bin"
        );
        let _ = crate::native::describe(forged);
        let _ = crate::native::build_cache(&crate::native::BuildInput::new(forged));
    }
}
