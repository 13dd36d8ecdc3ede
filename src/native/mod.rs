//! Native symbolication: turn an instruction address inside a module into function names,
//! source files and lines, with inlined frames expanded.
//!
//! This module is pure. It does no I/O of its own (no HTTP, no storage, no async): callers hand
//! it bytes and get bytes or frames back. It never panics on input-derived data; a malformed
//! debug file or cache is an error, an address the debug file does not cover is an empty result.
//!
//! Three entry points:
//!
//! - [`describe`] recognises a debug file and says what it is (format, IDs, features, DWO IDs)
//!   without building anything; [`is_debug_file`] is its cheap header check.
//! - [`build_cache`] reads one debug file (ELF, Mach-O/dSYM, PE, PDB, Breakpad, WebAssembly; DWARF
//!   2–5 with compressed sections; split DWARF with its `.dwo`/`.dwp` files) and writes a compact
//!   lookup cache. The service runs it once per debug file, stores the bytes, and rebuilds when
//!   [`FORMAT_VERSION`] changes.
//! - [`NativeCache::parse`] borrows those bytes without copying, and [`NativeCache::lookup`]
//!   resolves an address to its frames, innermost first.
//!
//! # Address spaces
//!
//! Every address this module takes or returns is **relative to the module's image base**, the
//! address the debug file itself assumes the image is loaded at:
//!
//! - ELF: the `p_vaddr` of the first `PT_LOAD` segment (0 for PIE executables and shared
//!   libraries, e.g. `0x400000` for classic non-PIE executables);
//! - Mach-O: the `vmaddr` of the `__TEXT` segment (usually `0x100000000` for executables);
//! - PE and PDB: the `ImageBase` of the optional header (RVAs);
//! - Breakpad: the addresses in the `.sym` file (already relative);
//! - WebAssembly: byte offsets into the module file, what browsers print as
//!   `wasm-function[i]:0x…` (symbolic's convention; DWARF for wasm uses offsets into the code
//!   section payload, which are these minus the code section's file offset).
//!
//! So for a frame `instruction_addr` in a module loaded at `image_addr`, look up
//! `caller_address(instruction_addr, arch) - image_addr` (caller frames) or
//! `instruction_addr - image_addr` (the crashing frame). This is the same convention as
//! symbolic's SymCache and Sentry's Symbolicator.
//!
//! # The cache
//!
//! The cache is symbolic's SymCache (format 9) behind a 32-byte header of ours (magic,
//! [`FORMAT_VERSION`], flags). Function names are stored demangled together with their raw form,
//! and file paths already joined with their directories, so a lookup does no demangling and
//! reads no other table (see `cache.rs`).
//!
//! The functions come from our own DWARF reader (`dwarf/`, gimli, fed to symbolic's
//! `FunctionBuilder` and `SymCacheConverter`) for DWARF in ELF, Mach-O, wasm and PE files, and
//! from symbolic's debug sessions for PDB and Breakpad. symbolic parses every container. Our
//! reader exists because symbolic cannot read split DWARF (`.dwo`/`.dwp`); it is the default for
//! all DWARF because on every fixture it gives the same answers as symbolic's session except
//! where symbolic loses inlined frames (an inlined call whose range list is empty but whose
//! own inlined calls have code, which gcc 12 emits for DWARF 4; see `dwarf::walk::Hollow`), and it is
//! faster. `build::DwarfReader` switches back to symbolic's session in one place.
//!
//! Symbol-table-only entries (no debug info for that address) come back as one frame with only
//! `function`, `symbol` and `sym_addr`. Symbols are bounded by their own size, or, when they
//! have none, by the next symbol and the end of their executable section, so an address in
//! padding, a PLT stub or past the end of the code resolves to nothing rather than to the
//! nearest symbol.

mod build;
mod cache;
mod detect;
mod dwarf;
pub(crate) mod minidump;
mod sources;
mod unwind;

#[cfg(test)]
mod tests;

use std::str::FromStr;

use symbolic::common::{Arch, CpuFamily};
use symbolic::demangle::DemangleOptions;

pub use build::build_cache;
pub use cache::NativeCache;
pub use detect::{
    debug_id_from_build_id, describe, dwo_debug_id, is_debug_file, DetectError, ObjectFacts,
};
pub use minidump::{
    read_modules, walk, DumpHeader, DumpModule, MinidumpError, ModuleData, Trust, Walked,
    WalkedFrame, WalkedThread, WALK_BUDGET,
};
#[cfg(test)]
pub use sources::embedded_source;
pub(crate) use sources::has_embedded_sources;
pub use sources::{embedded_sources, source_key};
pub use unwind::{build_cfi, CfiFile, CFI_FORMAT_VERSION};

/// Version of the cache format written by [`build_cache`]. A cache with another version is
/// rejected by [`NativeCache::parse`]; the service rebuilds it from the debug file.
///
/// Bump this whenever the bytes [`build_cache`] writes for the same input change, including
/// changes in what the lookups would return (naming, demangling options, symbol bounds).
pub const FORMAT_VERSION: u32 = 2;

/// Everything that can go wrong building or reading a cache.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    /// The input claims to be a format we read, but its contents are broken.
    #[error("malformed debug file: {0}")]
    Malformed(String),
    /// The input is valid but not something we can build a cache from (unknown format, a
    /// format without native debug information such as a source bundle).
    #[error("unsupported debug file: {0}")]
    Unsupported(String),
    /// `object_index` is past the number of objects in the file (fat Mach-O).
    #[error("object index {index} out of range: the file contains {count} object(s)")]
    ObjectIndex { index: usize, count: usize },
    /// Bytes handed to [`NativeCache::parse`] are not a cache of this [`FORMAT_VERSION`], or are
    /// damaged.
    #[error("invalid native cache: {0}")]
    InvalidCache(String),
}

/// Inputs for one module.
///
/// - `debug_file`: the file carrying the debug information (an ELF with DWARF or a separate
///   `.debug` file, a Mach-O executable or the DWARF file inside a dSYM, a PDB, a PE, a Breakpad
///   `.sym`, a `.wasm`), or, without debug information, the executable's symbol table.
/// - `object_index`: which object of a multi-object file (fat Mach-O) to read; 0 otherwise.
/// - `executable`: optionally the executable when `debug_file` is a separate companion (a
///   `.debug` file, a PDB, a Breakpad file). It contributes symbols the debug file lacks and its
///   section table, which bounds symbols that have no size of their own.
/// - `dwo_files`: split DWARF: the `.dwo` files and/or the `.dwp` package belonging to the
///   skeleton units in `debug_file`. Matched by DWO id; files that match no unit are ignored.
#[derive(Debug, Clone, Default)]
pub struct BuildInput<'a> {
    pub debug_file: &'a [u8],
    pub object_index: usize,
    pub executable: Option<&'a [u8]>,
    pub dwo_files: Vec<&'a [u8]>,
}

impl<'a> BuildInput<'a> {
    /// Input for a self-contained debug file (object 0, no companions).
    pub fn new(debug_file: &'a [u8]) -> Self {
        BuildInput {
            debug_file,
            ..BuildInput::default()
        }
    }
}

/// One resolved frame. All addresses are relative to the image base (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeFrame {
    /// Demangled function name, with parameter types for C++ and MSVC names but without return
    /// type; Rust names without the hash suffix.
    pub function: String,
    /// The name as stored in the debug file (mangled when the language mangles).
    pub symbol: Option<String>,
    /// Start of the outermost (non-inlined) function containing the address. Inlined frames
    /// carry the address of the function they were inlined into, like the symbol table would.
    pub sym_addr: u64,
    /// Absolute path of the source file, as the compiler recorded it (compilation directory
    /// joined with the file's directory and name, `.`/`..` cleaned).
    pub abs_path: Option<String>,
    /// The source path relative to the compilation directory of the function's unit when it
    /// lies below it (`src/app.c`), otherwise the file's base name (`vector.h`).
    pub filename: Option<String>,
    /// 1-based line number; `None` when the debug information has no line for the address.
    pub lineno: Option<u32>,
    /// Source language (`c`, `cpp`, `rust`, `swift`, `objc`, …) when known.
    pub lang: Option<String>,
}

/// Options used for every demangled name: parameters but no return type, the form Sentry
/// shows (`ns::Class::method(int) const`). Rust and Swift ignore the flags they do not support.
pub(crate) const DEMANGLE_OPTIONS: DemangleOptions = DemangleOptions::name_only().parameters(true);

/// Demangles a C++ (Itanium or MSVC), Rust (legacy or v0), Swift or Objective-C name. Names that
/// are not mangled, or that fail to demangle, are returned unchanged.
/// Test-only: the cache builder demangles with the same options (`build/encode.rs`); this pins
/// down what they produce.
#[cfg(test)]
pub(crate) fn demangle(name: &str) -> String {
    use symbolic::common::Name;
    use symbolic::demangle::Demangle;
    Name::from(name).try_demangle(DEMANGLE_OPTIONS).into_owned()
}

/// Caller adjustment: maps a return address to an address inside the call instruction, so the
/// lookup lands on the line of the call rather than on the next statement.
///
/// This follows symbolic's `InstructionInfo::caller_address` for non-crashing frames:
///
/// - x86, x86_64 (variable-length instructions): `addr - 1`;
/// - arm64 / arm64e / arm64_32: align down to 4, then `- 4`;
/// - arm (thumb-aware): align down to 2, then `- 2`;
/// - ppc, mips: align down to 4 (ppc64: 8), then one instruction (mips: two, for the delay slot).
///
/// One deliberate difference: for `wasm32` the address is returned unchanged. Wasm stack traces
/// (V8, SpiderMonkey, wasmtime) report the offset of the call instruction itself, not a return
/// address, so any adjustment would move it into the previous instruction; symbolic aligns
/// wasm addresses to 4 bytes, which is wrong for wasm's variable-length encoding.
///
/// Unknown architectures get `addr - 1`, which lands inside the call instruction on every
/// architecture without delay slots. Never underflows.
pub fn caller_address(addr: u64, arch: &str) -> u64 {
    let family = parse_arch(arch).cpu_family();
    let (alignment, back) = match family {
        CpuFamily::Wasm32 => return addr,
        CpuFamily::Intel32 | CpuFamily::Amd64 | CpuFamily::Unknown => (1, 1),
        CpuFamily::Arm32 => (2, 2),
        CpuFamily::Arm64 | CpuFamily::Arm64_32 | CpuFamily::Ppc32 => (4, 4),
        CpuFamily::Ppc64 => (8, 8),
        CpuFamily::Mips32 | CpuFamily::Mips64 => (4, 8),
        _ => (1, 1),
    };
    (addr - addr % alignment).saturating_sub(back)
}

/// Parses an architecture name as the Symbolicate API and the common toolchains spell it.
pub(crate) fn parse_arch(arch: &str) -> Arch {
    if let Ok(parsed) = Arch::from_str(arch) {
        return parsed;
    }
    let lower = arch.to_ascii_lowercase();
    match lower.as_str() {
        "aarch64" | "arm64v8a" | "arm64-v8a" => Arch::Arm64,
        "aarch64_be" => Arch::Arm64Unknown,
        "i486" | "i586" | "i686" | "x86_32" | "ia32" => Arch::X86,
        "x64" | "x86-64h" => Arch::Amd64,
        "wasm" | "wasm64" => Arch::Wasm32,
        "powerpc" => Arch::Ppc,
        "powerpc64" | "ppc64le" | "powerpc64le" => Arch::Ppc64,
        "mipsel" => Arch::Mips,
        "mips64el" => Arch::Mips64,
        _ if lower.starts_with("armv7") || lower.starts_with("thumb") || lower == "armeabi-v7a" => {
            Arch::ArmV7
        }
        _ if lower.starts_with("arm64") => Arch::Arm64Unknown,
        _ if lower.starts_with("arm") => Arch::ArmUnknown,
        _ => Arch::Unknown,
    }
}
