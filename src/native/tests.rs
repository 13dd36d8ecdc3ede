//! Tests against the fixtures in `fixtures/native` (see its README): real binaries built by
//! gcc, g++, rustc and clang, and the answers of binutils `addr2line` and `llvm-symbolizer`
//! for a few hundred addresses of each.
//!
//! A sample matches when our whole chain (innermost first) equals either tool's chain, or one of
//! the third readings the oracle documents as the expected answer where a tool errs
//! (`reference_answer`, `codeview_reference`, `breakpad_sym`; see `run_case`). Matches that only
//! a third reading explains are counted separately in the report. Frames are compared on
//! function name, file and line, normalised as follows:
//!
//! - Function names are compared without parameter list, trailing qualifiers and return type
//!   (`long ns::scale<long>(long, int) const` → `ns::scale<long>`), and without a Rust hash
//!   suffix (`::h0123456789abcdef`): we demangle with parameters and no return type, addr2line
//!   prints both for templates, llvm-symbolizer prints legacy Rust names half-demangled.
//! - The file is only compared where the tool reports a line. Without a line the tools report
//!   the name of the nearest `STT_FILE` symbol (`crtstuff.c`), which is not a source location;
//!   we return symbol-table frames without a file.
//! - Line 0 and a missing line are the same ("unknown").
//!
//! `outside` samples (padding, PLT, headers, data, past the end) must resolve to nothing,
//! whatever the tools say.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;

fn fixtures() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/native")).to_path_buf()
}

fn read(relative: &str) -> Vec<u8> {
    let path = fixtures().join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading fixture {}: {e}", path.display()))
}

/// How to build the cache for one oracle file.
struct Case {
    oracle: &'static str,
    debug_file: &'static str,
    executable: Option<&'static str>,
    dwo_files: &'static [&'static str],
}

const fn case(oracle: &'static str, debug_file: &'static str) -> Case {
    Case {
        oracle,
        debug_file,
        executable: None,
        dwo_files: &[],
    }
}

const CASES: &[Case] = &[
    case("c_dwarf4", "out/c_dwarf4"),
    case("c_dwarf5", "out/c_dwarf5"),
    Case {
        executable: Some("out/c_stripped_debug"),
        ..case("c_stripped_debug", "out/c_dwarf5.debug")
    },
    Case {
        executable: Some("out/c_stripped_all"),
        ..case("c_stripped_all", "out/c_dwarf5.debug")
    },
    Case {
        dwo_files: &["out/c_splitdwarf.dwp"],
        ..case("c_splitdwarf", "out/c_splitdwarf")
    },
    Case {
        dwo_files: &["out/c_splitdwarf4.dwp"],
        ..case("c_splitdwarf4", "out/c_splitdwarf4")
    },
    case("c_gz_zlib", "out/c_gz_zlib"),
    case("c_gz_zlib_gnu", "out/c_gz_zlib_gnu"),
    case("c_symtab", "out/c_symtab"),
    case("cpp_dwarf5", "out/cpp_dwarf5"),
    case("rust_app", "out/rust_app"),
    Case {
        executable: Some("out/c_macho"),
        ..case("c_macho", "out/c_macho.dSYM/Contents/Resources/DWARF/c_macho")
    },
    Case {
        executable: Some("out/c_pe.exe"),
        ..case("c_pe", "out/c_pe.pdb")
    },
    case("c_wasm", "out/c_wasm.wasm"),
    case("c_breakpad", "out/c_dwarf5.sym"),
    case("c_pe_breakpad", "out/c_pe.sym"),
    case("c_macho_breakpad", "out/c_macho.sym"),
];

fn build(case: &Case, reader: build::DwarfReader) -> Vec<u8> {
    let debug_file = read(case.debug_file);
    let executable = case.executable.map(read);
    let dwo: Vec<Vec<u8>> = case.dwo_files.iter().map(|f| read(f)).collect();
    let input = BuildInput {
        debug_file: &debug_file,
        object_index: 0,
        executable: executable.as_deref(),
        dwo_files: dwo.iter().map(Vec::as_slice).collect(),
    };
    build::build_cache_with(&input, reader)
        .unwrap_or_else(|e| panic!("{}: build_cache: {e}", case.oracle))
}

/// File offset of the code section's payload (after its id and size), which is where DWARF
/// addresses of a wasm module count from. (The oracle's `code_section_offset` is the offset of
/// the section header, 3 bytes earlier in c_wasm.wasm.)
fn wasm_code_payload_offset(wasm: &[u8]) -> u64 {
    fn leb(bytes: &[u8], pos: &mut usize) -> u64 {
        let (mut value, mut shift) = (0u64, 0);
        while let Some(&b) = bytes.get(*pos) {
            *pos += 1;
            value |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        value
    }
    let mut pos = 8; // magic + version
    while pos < wasm.len() {
        let id = wasm[pos];
        pos += 1;
        let size = leb(wasm, &mut pos) as usize;
        if id == 10 {
            return pos as u64;
        }
        pos += size;
    }
    panic!("no code section");
}

fn hex(value: &Value) -> u64 {
    let text = value.as_str().unwrap_or_default();
    u64::from_str_radix(text.trim_start_matches("0x"), 16).unwrap_or_default()
}

/// A frame reduced to what we compare.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cmp {
    function: String,
    file: Option<String>,
    line: Option<u64>,
}

impl std::fmt::Display for Cmp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} @ {}:{}",
            self.function,
            self.file.as_deref().unwrap_or("?"),
            self.line.map_or("?".to_owned(), |l| l.to_string())
        )
    }
}

fn show(chain: &[Cmp]) -> String {
    if chain.is_empty() {
        return "[]".to_owned();
    }
    chain.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(" <- ")
}

/// Resolves `.` and `..` components: the tools print paths as the compiler joined them
/// (`library/std/src/../../backtrace/src/…`), symbolic cleans them.
fn normalize_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "." => {}
            ".." if parts.last().is_some_and(|p| !p.is_empty() && *p != "..") => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    parts.join("/")
}

/// cpp_demangle writes integer template arguments as casts (`(unsigned long)6`), libiberty and
/// LLVM as literals with a suffix (`6ul`); rewrite the former into the latter.
fn normalize_integer_literals(name: &str) -> String {
    const CASTS: &[(&str, &str)] = &[
        ("(unsigned long long)", "ull"),
        ("(long long)", "ll"),
        ("(unsigned long)", "ul"),
        ("(long)", "l"),
        ("(unsigned int)", "u"),
        ("(int)", ""),
    ];
    let mut out = name.to_owned();
    for (cast, suffix) in CASTS {
        let mut result = String::new();
        let mut rest = out.as_str();
        while let Some(pos) = rest.find(cast) {
            let after = &rest[pos + cast.len()..];
            let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-').len();
            result.push_str(&rest[..pos]);
            if digits > 0 {
                result.push_str(&after[..digits]);
                result.push_str(suffix);
                rest = &after[digits..];
            } else {
                result.push_str(cast);
                rest = after;
            }
        }
        result.push_str(rest);
        out = result;
    }
    out
}

/// Strips trailing qualifiers, the parameter list and a leading return type from a demangled
/// C++ name; strips a Rust hash suffix.
fn normalize_function(name: &str) -> String {
    let mut s = normalize_integer_literals(name.trim());
    // Rust legacy hash.
    if let Some(pos) = s.rfind("::h") {
        let hash = &s[pos + 3..];
        if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            s.truncate(pos);
        }
    }
    loop {
        let before = s.len();
        for suffix in [" const", " volatile", " &&", " &", " noexcept"] {
            if let Some(stripped) = s.strip_suffix(suffix) {
                s = stripped.to_owned();
            }
        }
        if s.len() == before {
            break;
        }
    }
    // Parameter list: the '(' matching the final ')'.
    if s.ends_with(')') && !s.ends_with("operator()") {
        let mut depth = 0i32;
        let mut open = None;
        for (i, c) in s.char_indices().rev() {
            match c {
                ')' => depth += 1,
                '(' => {
                    depth -= 1;
                    if depth == 0 {
                        open = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        if let Some(i) = open {
            if i > 0 {
                s.truncate(i);
            }
        }
    }
    // Return type: the part before the last space outside any brackets.
    let mut depth = 0i32;
    let mut last_space = None;
    for (i, c) in s.char_indices() {
        match c {
            '<' | '(' | '[' | '{' => depth += 1,
            '>' | ')' | ']' | '}' => depth -= 1,
            ' ' if depth == 0 => last_space = Some(i),
            _ => {}
        }
    }
    if let Some(i) = last_space {
        if !s[..i].ends_with("operator") {
            s = s[i + 1..].to_owned();
        }
    }
    s
}

fn oracle_chain(value: &Value) -> Option<Vec<Cmp>> {
    let frames = value.as_array()?;
    Some(
        frames
            .iter()
            .map(|f| {
                let line = f["line"].as_u64().filter(|&l| l > 0);
                Cmp {
                    function: normalize_function(f["function"].as_str().unwrap_or("??")),
                    file: line.and(f["file"].as_str().map(normalize_path)),
                    line,
                }
            })
            .collect(),
    )
}

fn our_chain(frames: &[NativeFrame]) -> Vec<Cmp> {
    frames
        .iter()
        .map(|f| {
            let line = f.lineno.map(u64::from);
            Cmp {
                function: normalize_function(&f.function),
                file: line.and(f.abs_path.as_deref().map(normalize_path)),
                line,
            }
        })
        .collect()
}

struct Miss {
    addr: String,
    kind: String,
    note: String,
    ours: String,
    addr2line: String,
    llvm: String,
}

struct Report {
    name: &'static str,
    total: usize,
    matched: usize,
    by_addr2line: usize,
    by_llvm: usize,
    by_reference: usize,
    misses: Vec<Miss>,
}

fn run_case(case: &Case, reader: build::DwarfReader) -> Report {
    let oracle_path = fixtures().join("oracle").join(format!("{}.json", case.oracle));
    let oracle: Value = serde_json::from_slice(
        &std::fs::read(&oracle_path).unwrap_or_else(|e| panic!("{}: {e}", oracle_path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", oracle_path.display()));
    let bytes = build(case, reader);
    let cache = NativeCache::parse(&bytes).unwrap_or_else(|e| panic!("{}: parse: {e}", case.oracle));
    let breakpad = oracle["format"].as_str() == Some("breakpad");
    let base = if breakpad { 0 } else { hex(&oracle["image_vmaddr"]) };
    // Wasm: the oracle uses DWARF's code-section offsets, we (like symbolic, Sentry and the
    // browsers' `wasm-function[i]:0x…` offsets) use offsets into the module file.
    let wasm_code_offset = if oracle["format"].as_str() == Some("wasm") {
        wasm_code_payload_offset(&read(case.debug_file))
    } else {
        0
    };

    let mut report = Report {
        name: case.oracle,
        total: 0,
        matched: 0,
        by_addr2line: 0,
        by_llvm: 0,
        by_reference: 0,
        misses: Vec::new(),
    };
    let samples = oracle["samples"].as_array().cloned().unwrap_or_default();
    for sample in &samples {
        let addr = hex(&sample["addr"]);
        let kind = sample["kind"].as_str().unwrap_or_default().to_owned();
        report.total += 1;
        let ours = match addr.checked_sub(base) {
            Some(relative) => cache.lookup(relative + wasm_code_offset),
            None => Vec::new(), // Below the image: nothing there by definition.
        };
        let ours_cmp = our_chain(&ours);
        let a2l = oracle_chain(&sample["addr2line"]);
        let llvm = oracle_chain(&sample["llvm_symbolizer"]);
        // Third readings the oracle documents as the expected answer where the tools err:
        // `reference_answer` (same-code reference fixture's answers, {tool: chain}, for the
        // llvm-symbolizer split-DWARF bug), `codeview_reference` (c_pe: the PDB records decoded
        // by the fixture script, for llvm-symbolizer's PDB line bugs) and `breakpad_sym` (the
        // script's reading of the .sym file we are given).
        let mut references: Vec<Vec<Cmp>> = sample["reference_answer"]
            .as_object()
            .map(|tools| tools.values().filter_map(oracle_chain).collect())
            .unwrap_or_default();
        references.extend(oracle_chain(&sample["codeview_reference"]));
        references.extend(oracle_chain(&sample["breakpad_sym"]));
        let matched = if kind == "outside" {
            ours.is_empty()
        } else {
            let a = a2l.as_ref() == Some(&ours_cmp);
            let l = llvm.as_ref() == Some(&ours_cmp);
            let r = references.contains(&ours_cmp);
            report.by_addr2line += usize::from(a);
            report.by_llvm += usize::from(l);
            report.by_reference += usize::from(r && !a && !l);
            a || l || r
        };
        if matched {
            report.matched += 1;
        } else {
            report.misses.push(Miss {
                addr: sample["addr"].as_str().unwrap_or_default().to_owned(),
                kind,
                note: sample["note"].as_str().unwrap_or_default().to_owned(),
                ours: format!(
                    "{} (sym_addr {})",
                    show(&ours_cmp),
                    ours.last().map_or("-".to_owned(), |f| format!("{:#x}", f.sym_addr))
                ),
                addr2line: a2l.as_deref().map_or("n/a".to_owned(), show),
                llvm: llvm.as_deref().map_or("n/a".to_owned(), show),
            });
        }
    }
    report
}

#[test]
fn matches_the_oracles() {
    check_oracles(build::DwarfReader::Symbolic);
}

#[test]
fn own_dwarf_reader_matches_the_oracles() {
    check_oracles(build::DwarfReader::Own);
}

fn check_oracles(reader: build::DwarfReader) {
    let filter = std::env::var("NATIVE_ORACLE").ok();
    let mut failed = Vec::new();
    let mut summary = BTreeMap::new();
    for case in CASES {
        if filter.as_deref().is_some_and(|f| !case.oracle.contains(f)) {
            continue;
        }
        if !fixtures().join("oracle").join(format!("{}.json", case.oracle)).exists() {
            eprintln!("{}: oracle missing, skipped", case.oracle);
            failed.push(format!("{}: oracle missing", case.oracle));
            continue;
        }
        let report = run_case(case, reader);
        let rate = report.matched as f64 * 100.0 / report.total.max(1) as f64;
        eprintln!(
            "{reader:?} {:18} {:4}/{:4} = {:6.2}%  (addr2line {}, llvm {}, reference only {})",
            report.name,
            report.matched,
            report.total,
            rate,
            report.by_addr2line,
            report.by_llvm,
            report.by_reference
        );
        for miss in &report.misses {
            eprintln!(
                "  MISS {} [{}{}]\n    ours: {}\n    a2l:  {}\n    llvm: {}",
                miss.addr,
                miss.kind,
                if miss.note.is_empty() { String::new() } else { format!(": {}", miss.note) },
                miss.ours,
                miss.addr2line,
                miss.llvm
            );
        }
        summary.insert(report.name, rate);
        if rate < 99.5 {
            failed.push(format!("{}: {rate:.2}%", report.name));
        }
    }
    eprintln!("{summary:#?}");
    assert!(failed.is_empty(), "below 99.5%: {failed:?}");
}

/// Build-time comparison of the two DWARF readers (run with `--release --ignored`).
#[test]
#[ignore]
fn time_dwarf_readers() {
    let data = read("out/rust_app");
    for reader in [build::DwarfReader::Symbolic, build::DwarfReader::Own] {
        let start = std::time::Instant::now();
        let mut len = 0;
        for _ in 0..5 {
            len = build::build_cache_with(&BuildInput::new(&data), reader)
                .expect("build")
                .len();
        }
        eprintln!("{reader:?}: {:?} per build, cache {len} bytes", start.elapsed() / 5);
    }
}

#[test]
#[ignore]
fn compare_dwarf_readers() {
    for case in CASES {
        let a = build(case, build::DwarfReader::Symbolic);
        let b = build(case, build::DwarfReader::Own);
        eprintln!("{:18} identical: {}  ({} vs {} bytes)", case.oracle, a == b, a.len(), b.len());
        if a != b {
            let (ca, cb) = (NativeCache::parse(&a).unwrap(), NativeCache::parse(&b).unwrap());
            let mut differ = 0;
            for addr in 0..0x80000u64 {
                let (x, y) = (ca.lookup(addr), cb.lookup(addr));
                if x != y {
                    differ += 1;
                    if differ < 4 {
                        eprintln!("  {addr:#x}\n    symbolic: {x:?}\n    own: {y:?}");
                    }
                }
            }
            eprintln!("  {differ} addresses differ");
        }
    }
}
