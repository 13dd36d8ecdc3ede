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

/// How to build the cache for one oracle file, and what to compare with.
struct Case {
    /// Label in the report.
    label: &'static str,
    oracle: &'static str,
    debug_file: &'static str,
    executable: Option<&'static str>,
    dwo_files: &'static [&'static str],
    /// Split DWARF without its .dwo/.dwp: compare with `llvm_symbolizer_skeleton_only` (and
    /// addr2line, which never reads split units) instead of the full answers.
    skeleton_only: bool,
}

const fn case(oracle: &'static str, debug_file: &'static str) -> Case {
    Case {
        label: oracle,
        oracle,
        debug_file,
        executable: None,
        dwo_files: &[],
        skeleton_only: false,
    }
}

/// Samples we knowingly answer differently from every oracle, with the reason. The test fails
/// on any other miss, and on a listed one that starts to match (so the list stays true).
const KNOWN_MISSES: &[(&str, &str, &str)] = &[
    (
        "c_wasm",
        "0x3",
        "labelled 'padding' by the oracle, but it is the `end` opcode of __wasm_call_ctors \
         (code offsets 0x2..0x4 are its body; the linker-made function has no DWARF, which is \
         why the oracle's DWARF-based labelling missed it); we resolve it from the name section",
    ),
    (
        "c_breakpad",
        "0x1385",
        ".sym only: after the last PUBLIC (_fini), which has no size and no STACK record; \
         a .sym file has no section table to bound it (with the executable: no miss)",
    ),
    (
        "c_breakpad",
        "0x2000",
        "as 0x1385: .rodata, after the unbounded last PUBLIC",
    ),
    (
        "c_breakpad",
        "0x4000",
        "as 0x1385: .data, after the unbounded last PUBLIC",
    ),
    (
        "c_breakpad",
        "0xfffffff0",
        "as 0x1385: far past the image, after the unbounded last PUBLIC",
    ),
];

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
        label: "c_splitdwarf (.dwo)",
        dwo_files: &["out/c_splitdwarf-app.dwo", "out/c_splitdwarf-util.dwo"],
        ..case("c_splitdwarf", "out/c_splitdwarf")
    },
    Case {
        label: "c_splitdwarf (none)",
        skeleton_only: true,
        ..case("c_splitdwarf", "out/c_splitdwarf")
    },
    Case {
        dwo_files: &["out/c_splitdwarf4.dwp"],
        ..case("c_splitdwarf4", "out/c_splitdwarf4")
    },
    Case {
        label: "c_splitdwarf4 (.dwo)",
        dwo_files: &["out/c_splitdwarf4-app.dwo", "out/c_splitdwarf4-util.dwo"],
        ..case("c_splitdwarf4", "out/c_splitdwarf4")
    },
    Case {
        label: "c_splitdwarf4 (none)",
        skeleton_only: true,
        ..case("c_splitdwarf4", "out/c_splitdwarf4")
    },
    case("c_gz_zlib", "out/c_gz_zlib"),
    case("c_gz_zlib_gnu", "out/c_gz_zlib_gnu"),
    case("c_symtab", "out/c_symtab"),
    case("cpp_dwarf5", "out/cpp_dwarf5"),
    case("rust_app", "out/rust_app"),
    Case {
        executable: Some("out/c_macho"),
        ..case(
            "c_macho",
            "out/c_macho.dSYM/Contents/Resources/DWARF/c_macho",
        )
    },
    Case {
        executable: Some("out/c_pe.exe"),
        ..case("c_pe", "out/c_pe.pdb")
    },
    case("c_wasm", "out/c_wasm.wasm"),
    case("c_breakpad", "out/c_dwarf5.sym"),
    Case {
        label: "c_breakpad (+exe)",
        executable: Some("out/c_dwarf5"),
        ..case("c_breakpad", "out/c_dwarf5.sym")
    },
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
    wasmparser::Parser::new(0)
        .parse_all(wasm)
        .find_map(|payload| match payload.expect("valid wasm") {
            wasmparser::Payload::CodeSectionStart { range, .. } => Some(range.start as u64),
            _ => None,
        })
        .expect("no code section")
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
    chain
        .iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join(" <- ")
}

/// Resolves `.` and `..` components: the tools print paths as the compiler joined them
/// (`library/std/src/../../backtrace/src/…`), symbolic cleans them; clean theirs the same way.
fn normalize_path(path: &str) -> String {
    symbolic::common::clean_path(path).into_owned()
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
            let digits = after.len()
                - after
                    .trim_start_matches(|c: char| c.is_ascii_digit() || c == '-')
                    .len();
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
    label: &'static str,
    total: usize,
    matched: usize,
    by_addr2line: usize,
    by_llvm: usize,
    by_reference: usize,
    /// Samples where llvm-symbolizer gives the outermost function's start and ours differs.
    sym_addr_mismatches: Vec<String>,
    misses: Vec<Miss>,
}

fn run_case(case: &Case, reader: build::DwarfReader) -> Report {
    let oracle_path = fixtures()
        .join("oracle")
        .join(format!("{}.json", case.oracle));
    let oracle: Value = serde_json::from_slice(
        &std::fs::read(&oracle_path).unwrap_or_else(|e| panic!("{}: {e}", oracle_path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", oracle_path.display()));
    let bytes = build(case, reader);
    let cache = NativeCache::parse(&bytes).unwrap_or_else(|e| panic!("{}: parse: {e}", case.label));
    let breakpad = oracle["format"].as_str() == Some("breakpad");
    let base = if breakpad {
        0
    } else {
        hex(&oracle["image_vmaddr"])
    };
    // Wasm: the oracle uses DWARF's code-section offsets, we (like symbolic, Sentry and the
    // browsers' `wasm-function[i]:0x…` offsets) use offsets into the module file.
    let wasm_code_offset = if oracle["format"].as_str() == Some("wasm") {
        wasm_code_payload_offset(&read(case.debug_file))
    } else {
        0
    };
    let llvm_key = if case.skeleton_only {
        "llvm_symbolizer_skeleton_only"
    } else {
        "llvm_symbolizer"
    };

    let mut report = Report {
        label: case.label,
        total: 0,
        matched: 0,
        by_addr2line: 0,
        by_llvm: 0,
        by_reference: 0,
        sym_addr_mismatches: Vec::new(),
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
        let llvm = oracle_chain(&sample[llvm_key]);
        // Third readings the oracle documents as the expected answer where the tools err:
        // `reference_answer` (same-code reference fixture's answers, {tool: chain}, for the
        // llvm-symbolizer split-DWARF bug), `codeview_reference` (c_pe: the PDB records decoded
        // by the fixture script, for llvm-symbolizer's PDB line bugs) and `breakpad_sym` (the
        // script's reading of the .sym file we are given). Not for skeleton-only runs, whose
        // expected answer is what the tools see without the split units.
        let mut references: Vec<Vec<Cmp>> = Vec::new();
        if !case.skeleton_only {
            references.extend(
                sample["reference_answer"]
                    .as_object()
                    .map(|tools| tools.values().filter_map(oracle_chain).collect::<Vec<_>>())
                    .unwrap_or_default(),
            );
            references.extend(oracle_chain(&sample["codeview_reference"]));
            references.extend(oracle_chain(&sample["breakpad_sym"]));
        }
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
        // sym_addr: the start of the outermost function, which llvm-symbolizer reports as the
        // last frame's StartAddress (DW_AT_low_pc; not for symbol-table answers or PDBs).
        let llvm_start = sample[llvm_key]
            .as_array()
            .and_then(|frames| frames.last())
            .and_then(|frame| frame["start_address"].as_str());
        if let (Some(start), Some(frame), true) = (llvm_start, ours.last(), matched) {
            // Breakpad oracles ran the tools at `tool_addr` (e.g. Mach-O vmaddr), we at `addr`.
            let tool_base = match sample["tool_addr"].as_str() {
                Some(_) => hex(&sample["tool_addr"]).wrapping_sub(addr),
                None => base,
            };
            let expected = hex(&Value::from(start)).wrapping_sub(tool_base) + wasm_code_offset;
            if frame.sym_addr != expected && frame.lineno.is_some() {
                report.sym_addr_mismatches.push(format!(
                    "{}: ours {:#x}, llvm {expected:#x}",
                    sample["addr"].as_str().unwrap_or_default(),
                    frame.sym_addr
                ));
            }
        }
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
                    ours.last()
                        .map_or("-".to_owned(), |f| format!("{:#x}", f.sym_addr))
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
    let failures = check_oracles(build::DwarfReader::Own);
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Why we read DWARF ourselves: in gcc 12's DWARF 4 an inlined call can have an empty range
/// list while the calls inlined into it have code (see `dwarf::walk::Hollow`). symbolic's session
/// drops that subtree; addr2line, llvm-symbolizer and our reader keep it.
#[test]
fn symbolic_reader_drops_inlined_calls_that_ours_keeps() {
    let case = CASES
        .iter()
        .find(|c| c.label == "c_dwarf4")
        .expect("c_dwarf4 case");
    let ours = run_case(case, build::DwarfReader::Own);
    let symbolic = run_case(case, build::DwarfReader::Symbolic);
    assert_eq!(ours.matched, ours.total, "{:#?}", ours.misses.len());
    assert!(
        symbolic.matched < symbolic.total,
        "symbolic's reader now matches every sample: reconsider our own DWARF reader"
    );
}

/// Runs every case (or those whose label contains `$NATIVE_ORACLE`), prints the rates and every
/// miss, and returns what is wrong: unexpected misses, rates below 99.5%, known misses that
/// match now, sym_addr mismatches.
fn check_oracles(reader: build::DwarfReader) -> Vec<String> {
    let filter = std::env::var("NATIVE_ORACLE").ok();
    let mut failures = Vec::new();
    let mut seen_known = Vec::new();
    for case in CASES {
        if filter.as_deref().is_some_and(|f| !case.label.contains(f)) {
            continue;
        }
        let report = run_case(case, reader);
        let rate = report.matched as f64 * 100.0 / report.total.max(1) as f64;
        eprintln!(
            "{reader:?} {:22} {:4}/{:4} = {:6.2}%  (addr2line {}, llvm {}, reference only {})",
            report.label,
            report.matched,
            report.total,
            rate,
            report.by_addr2line,
            report.by_llvm,
            report.by_reference
        );
        for miss in &report.misses {
            let known = KNOWN_MISSES
                .iter()
                .find(|(label, addr, _)| *label == report.label && *addr == miss.addr);
            eprintln!(
                "  {} {} [{}{}]\n    ours: {}\n    a2l:  {}\n    llvm: {}",
                if known.is_some() {
                    "KNOWN MISS"
                } else {
                    "MISS"
                },
                miss.addr,
                miss.kind,
                if miss.note.is_empty() {
                    String::new()
                } else {
                    format!(": {}", miss.note)
                },
                miss.ours,
                miss.addr2line,
                miss.llvm
            );
            match known {
                Some((_, _, reason)) => {
                    eprintln!("    why:  {reason}");
                    seen_known.push((report.label, miss.addr.clone()));
                }
                None => failures.push(format!("{} {}: unexpected miss", report.label, miss.addr)),
            }
        }
        for mismatch in &report.sym_addr_mismatches {
            eprintln!("  SYM_ADDR {mismatch}");
            failures.push(format!("{} sym_addr {mismatch}", report.label));
        }
        if rate < 99.5 {
            failures.push(format!("{}: {rate:.2}% < 99.5%", report.label));
        }
    }
    if filter.is_none() && reader == build::DwarfReader::Own {
        for (label, addr, _) in KNOWN_MISSES {
            if !seen_known.iter().any(|(l, a)| l == label && a == addr) {
                failures.push(format!(
                    "{label} {addr}: listed as a known miss but matches now"
                ));
            }
        }
    }
    // The .sym-only Breakpad case cannot reach 99.5%: a .sym has no extent for PUBLIC records.
    failures.retain(|f| !(f.starts_with("c_breakpad:") && f.ends_with("< 99.5%")));
    failures
}

/// Deterministic xorshift64*, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

thread_local! {
    /// Set while this thread runs damaged inputs: panics are recorded, not printed.
    static PANICS: std::cell::RefCell<Option<Vec<String>>> = const { std::cell::RefCell::new(None) };
}

/// Installs (once) a panic hook that records the location of panics on threads that asked
/// for it and defers to the default hook everywhere else.
fn record_panics_on_this_thread() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let recorded = PANICS.with(|panics| {
                let mut panics = panics.borrow_mut();
                match panics.as_mut() {
                    Some(list) => {
                        let location = info
                            .location()
                            .map(|l| format!("{}:{}", l.file(), l.line()))
                            .unwrap_or_default();
                        list.push(location);
                        true
                    }
                    None => false,
                }
            });
            if !recorded {
                default(info);
            }
        }));
    });
    PANICS.with(|panics| *panics.borrow_mut() = Some(Vec::new()));
}

/// Damaged debug files give an error or a cache and never panic out of `build_cache`. Panics
/// inside the parsers below us are turned into errors by `build_cache`'s guard; this test
/// checks that none of them comes from our own code.
#[test]
fn damaged_debug_files_do_not_panic() {
    record_panics_on_this_thread();
    let files = [
        "out/c_dwarf4",
        "out/c_dwarf5",
        "out/c_dwarf5.debug",
        "out/c_splitdwarf",
        "out/c_splitdwarf4",
        "out/c_gz_zlib",
        "out/c_gz_zlib_gnu",
        "out/cpp_dwarf5",
        "out/c_macho",
        "out/c_macho.dSYM/Contents/Resources/DWARF/c_macho",
        "out/c_pe.exe",
        "out/c_pe.pdb",
        "out/c_wasm.wasm",
        "out/c_dwarf5.sym",
        "out/c_pe.sym",
    ];
    let dwp = read("out/c_splitdwarf.dwp");
    let iterations: usize = std::env::var("NATIVE_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut outcomes = (0, 0);
    for file in files {
        let original = read(file);
        for i in 0..iterations {
            let mut data = original.clone();
            match i % 3 {
                // Truncate.
                0 => data.truncate(rng.below(data.len())),
                // Overwrite a few bytes with random values.
                1 => {
                    for _ in 0..1 + rng.below(8) {
                        let at = rng.below(data.len());
                        data[at] = rng.next() as u8;
                    }
                }
                // Overwrite a run with 0xff (large lengths and offsets).
                _ => {
                    let at = rng.below(data.len());
                    let end = (at + 1 + rng.below(16)).min(data.len());
                    data[at..end].fill(0xff);
                }
            }
            let mut input = BuildInput::new(&data);
            if file.contains("splitdwarf") {
                input.dwo_files = vec![&dwp];
            }
            if std::env::var("NATIVE_FUZZ_TRACE").is_ok() {
                eprintln!("{file} {i}"); // Names the variant if the process aborts.
            }
            let result = build_cache(&input);
            match result {
                Ok(bytes) => {
                    outcomes.0 += 1;
                    let cache = NativeCache::parse(&bytes).expect("our own cache parses");
                    for _ in 0..20 {
                        cache.lookup(rng.next() % 0x2000);
                    }
                }
                Err(_) => outcomes.1 += 1,
            }
        }
    }
    let panics = PANICS.with(|panics| panics.borrow_mut().take().unwrap_or_default());
    eprintln!(
        "damaged inputs: {} built, {} rejected ({} after a dependency panicked: {:?})",
        outcomes.0,
        outcomes.1,
        panics.len(),
        panics.iter().collect::<std::collections::BTreeSet<_>>()
    );
    let ours: Vec<_> = panics
        .iter()
        .filter(|p| p.contains("/src/native/"))
        .collect();
    assert!(ours.is_empty(), "panics in our code: {ours:?}");
}

/// Damaged caches are rejected by `parse` or answer lookups, never panic.
#[test]
fn damaged_caches_do_not_panic() {
    let bytes = build_cache(&BuildInput::new(&read("out/cpp_dwarf5"))).expect("build");
    let mut rng = Rng(42);
    for i in 0..2000 {
        let mut data = bytes.clone();
        match i % 3 {
            0 => data.truncate(rng.below(data.len())),
            1 => {
                let at = rng.below(data.len());
                data[at] = rng.next() as u8;
            }
            _ => {
                // Header fields: offsets and counts.
                let at = 16 + rng.below(64);
                data[at] = rng.next() as u8;
            }
        }
        if let Ok(cache) = NativeCache::parse(&data) {
            for _ in 0..20 {
                cache.lookup(rng.next() % 0x2000);
            }
        }
    }
}

fn cache_for(file: &str) -> Vec<u8> {
    build_cache(&BuildInput::new(&read(file))).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn frames_carry_symbol_demangled_name_paths_and_language() {
    let bytes = cache_for("out/cpp_dwarf5");
    let cache = NativeCache::parse(&bytes).expect("parse");
    assert_eq!(cache.arch(), "x86_64");
    let frames = cache.lookup(0x109f);
    assert_eq!(
        frames,
        vec![
            NativeFrame {
                function: "tracemap::stats::scale<long>(long, int)".into(),
                symbol: Some("_ZN8tracemap5stats5scaleIlEET_S2_i".into()),
                sym_addr: 0x1040,
                abs_path: Some("/build/src/cpp/app.cpp".into()),
                filename: Some("src/cpp/app.cpp".into()),
                lineno: Some(93),
                lang: Some("cpp".into()),
            },
            NativeFrame {
                function: "main".into(),
                symbol: Some("main".into()),
                sym_addr: 0x1040,
                abs_path: Some("/build/src/cpp/app.cpp".into()),
                filename: Some("src/cpp/app.cpp".into()),
                lineno: Some(121),
                lang: Some("cpp".into()),
            },
        ]
    );
}

#[test]
fn rust_names_are_demangled_without_hash_and_filenames_are_relative_to_the_unit() {
    let bytes = cache_for("out/rust_app");
    let cache = NativeCache::parse(&bytes).expect("parse");
    let frames = cache.lookup(0x13b87);
    let names: Vec<_> = frames.iter().map(|f| f.function.as_str()).collect();
    assert_eq!(
        names,
        [
            "<u64>::wrapping_mul",
            "main::mul_checked",
            "<main::Tri as main::Shape>::area"
        ]
    );
    assert_eq!(
        frames[2].symbol.as_deref(),
        Some("_ZN41_$LT$main..Tri$u20$as$u20$main..Shape$GT$4area17hb1c83746337a2909E")
    );
    // std code inlined into the main crate is not below the unit's compilation directory
    // (/build): base name.
    assert_eq!(frames[0].filename.as_deref(), Some("uint_macros.rs"));
    assert_eq!(frames[1].filename.as_deref(), Some("src/rust/main.rs"));
    assert!(frames
        .iter()
        .all(|f| f.lang.as_deref() == Some("rust") && f.sym_addr == 0x13b80));
}

#[test]
fn symbol_table_only_frames_have_no_location() {
    let bytes = cache_for("out/c_symtab");
    let cache = NativeCache::parse(&bytes).expect("parse");
    let frames = cache.lookup(0x1190);
    assert_eq!(frames.len(), 1, "{frames:?}");
    let frame = &frames[0];
    assert_eq!(frame.function, "op_add");
    assert_eq!(frame.symbol.as_deref(), Some("op_add"));
    assert_eq!(frame.sym_addr, 0x1180);
    assert_eq!(
        (&frame.abs_path, &frame.filename, frame.lineno),
        (&None, &None, None)
    );
}

#[test]
fn addresses_outside_functions_resolve_to_nothing() {
    let bytes = cache_for("out/c_dwarf5");
    let cache = NativeCache::parse(&bytes).expect("parse");
    // ELF header, PLT stub, padding after op_add, .rodata, past the end, u32 overflow.
    for addr in [
        0x0,
        0x1020,
        0x1196,
        0x2000,
        0x1385,
        0xffff_fff0,
        0x1_0000_1180,
    ] {
        assert_eq!(cache.lookup(addr), Vec::new(), "{addr:#x}");
    }
    assert!(!cache.lookup(0x1180).is_empty());
}

#[test]
fn split_dwarf_without_its_dwo_degrades_to_lines_and_says_so() {
    let exe = read("out/c_splitdwarf");
    let full = build_cache(&BuildInput {
        dwo_files: vec![&read("out/c_splitdwarf.dwp")],
        ..BuildInput::new(&exe)
    })
    .expect("build");
    assert!(!NativeCache::parse(&full)
        .expect("parse")
        .is_missing_split_dwarf());
    // The DWARF 4 package belongs to another binary: ignored.
    let wrong = read("out/c_splitdwarf4.dwp");
    let bytes = build_cache(&BuildInput {
        dwo_files: vec![&wrong],
        ..BuildInput::new(&exe)
    })
    .expect("build");
    let cache = NativeCache::parse(&bytes).expect("parse");
    assert!(cache.is_missing_split_dwarf());
    // 0x105f is square:12 <- poly:17 <- main:70 with the .dwp. Without it, the skeleton's line
    // table still gives the innermost line, attributed to the symbol (as llvm-symbolizer does).
    let frames = cache.lookup(0x105f);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(
        (frames[0].function.as_str(), frames[0].lineno),
        ("main", Some(12))
    );
    assert_eq!(frames[0].abs_path.as_deref(), Some("/build/src/c/app.c"));
}

#[test]
fn errors_say_what_is_wrong() {
    assert!(matches!(
        build_cache(&BuildInput::new(b"definitely not a debug file")),
        Err(NativeError::Unsupported(_))
    ));
    let mut truncated = read("out/c_dwarf5");
    truncated.truncate(100);
    assert!(build_cache(&BuildInput::new(&truncated)).is_err());
    let data = read("out/c_dwarf5");
    let input = BuildInput {
        object_index: 1,
        ..BuildInput::new(&data)
    };
    assert!(matches!(
        build_cache(&input),
        Err(NativeError::ObjectIndex { index: 1, count: 1 })
    ));
}

/// A fat (universal) Mach-O around the dSYM's DWARF file: `object_index` picks the slice.
#[test]
fn fat_mach_o_objects_are_selected_by_index() {
    let thin = read("out/c_macho.dSYM/Contents/Resources/DWARF/c_macho");
    let offset = 0x1000usize;
    let mut fat = Vec::new();
    fat.extend_from_slice(&0xcafe_babe_u32.to_be_bytes());
    fat.extend_from_slice(&1u32.to_be_bytes());
    fat.extend_from_slice(&0x0100_0007_u32.to_be_bytes()); // CPU_TYPE_X86_64
    fat.extend_from_slice(&3u32.to_be_bytes()); // CPU_SUBTYPE_X86_64_ALL
    fat.extend_from_slice(&(offset as u32).to_be_bytes());
    fat.extend_from_slice(&(thin.len() as u32).to_be_bytes());
    fat.extend_from_slice(&12u32.to_be_bytes()); // 2^12 alignment
    fat.resize(offset, 0);
    fat.extend_from_slice(&thin);

    let bytes = build_cache(&BuildInput::new(&fat)).expect("build");
    let cache = NativeCache::parse(&bytes).expect("parse");
    let direct = cache_for("out/c_macho.dSYM/Contents/Resources/DWARF/c_macho");
    let direct = NativeCache::parse(&direct).expect("parse");
    for addr in (0..0x800).step_by(3) {
        assert_eq!(cache.lookup(addr), direct.lookup(addr), "{addr:#x}");
    }
    let input = BuildInput {
        object_index: 1,
        ..BuildInput::new(&fat)
    };
    assert!(matches!(
        build_cache(&input),
        Err(NativeError::ObjectIndex { index: 1, count: 1 })
    ));
}

#[test]
fn caches_of_another_version_or_misaligned_are_rejected() {
    let bytes = cache_for("out/c_dwarf5");
    assert!(NativeCache::parse(&bytes).is_ok());

    let mut other_version = bytes.clone();
    other_version[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    assert!(matches!(
        NativeCache::parse(&other_version),
        Err(NativeError::InvalidCache(message)) if message.contains("version")
    ));

    // Copy into a buffer at an odd address.
    let mut shifted = vec![0u8; bytes.len() + 1];
    shifted[1..].copy_from_slice(&bytes);
    assert!(NativeCache::parse(&shifted[1..]).is_err());

    assert!(NativeCache::parse(b"TMNATIVE").is_err());
    assert!(NativeCache::parse(&[]).is_err());
}

#[test]
fn describe_reports_ids_and_features() {
    let objects = describe(&read("out/c_dwarf5")).expect("describe");
    assert_eq!(objects.len(), 1);
    let elf = &objects[0];
    assert_eq!(
        elf.debug_id.map(|id| id.to_string()).as_deref(),
        Some("339d67d0-6e29-287b-2408-1344f4ea7744")
    );
    assert_eq!(
        elf.code_id.as_ref().map(|id| id.as_str()),
        Some("d0679d33296e7b2824081344f4ea774400bc85b9")
    );
    assert_eq!(
        (elf.format, elf.arch.as_str()),
        (crate::kinds::DebugFileFormat::Elf, "x86_64")
    );
    assert!(elf.features.debug && elf.features.symtab && elf.features.unwind);

    let stripped = &describe(&read("out/c_stripped_all")).expect("describe")[0];
    assert_eq!(stripped.debug_id, elf.debug_id);
    assert!(!stripped.features.debug);

    let pdb = &describe(&read("out/c_pe.pdb")).expect("describe")[0];
    let pe = &describe(&read("out/c_pe.exe")).expect("describe")[0];
    assert_eq!(pdb.debug_id, pe.debug_id);
    assert_eq!(pdb.format, crate::kinds::DebugFileFormat::Pdb);

    assert!(!is_debug_file(b"nope"));
    assert_eq!(describe(b"nope"), Err(DetectError::UnknownFormat));
}

#[test]
fn caches_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<NativeCache<'static>>();
    assert_send_sync::<NativeFrame>();
    assert_send_sync::<NativeError>();
}

#[test]
fn caller_address_follows_the_architecture() {
    // x86: one byte back, no alignment.
    assert_eq!(caller_address(0x1005, "x86_64"), 0x1004);
    assert_eq!(caller_address(0x1005, "x86"), 0x1004);
    assert_eq!(caller_address(0x1005, "amd64"), 0x1004);
    // arm64: align to 4, one instruction back.
    assert_eq!(caller_address(0x1008, "arm64"), 0x1004);
    assert_eq!(caller_address(0x100b, "arm64"), 0x1004);
    assert_eq!(caller_address(0x1008, "aarch64"), 0x1004);
    assert_eq!(caller_address(0x1008, "arm64e"), 0x1004);
    // arm (thumb): align to 2, back 2.
    assert_eq!(caller_address(0x1007, "arm"), 0x1004);
    assert_eq!(caller_address(0x1006, "armv7"), 0x1004);
    // mips: two instructions (delay slot).
    assert_eq!(caller_address(0x1010, "mips"), 0x1008);
    // wasm: call-site offsets already, unchanged.
    assert_eq!(caller_address(0x1a8, "wasm32"), 0x1a8);
    // Unknown: inside the previous byte; never underflows.
    assert_eq!(caller_address(0x1005, "sparc"), 0x1004);
    assert_eq!(caller_address(0, "x86_64"), 0);
    assert_eq!(caller_address(2, "arm64"), 0);
}

#[test]
fn demangles_the_usual_languages() {
    assert_eq!(demangle("_ZN3foo3barEi"), "foo::bar(int)");
    assert_eq!(
        demangle("_ZN41_$LT$main..Tri$u20$as$u20$main..Shape$GT$4area17hb1c83746337a2909E"),
        "<main::Tri as main::Shape>::area"
    );
    assert_eq!(demangle("_RNvCs1234_7mycrate3foo"), "mycrate::foo");
    assert_eq!(demangle("?foo@@YAHH@Z"), "foo(int)");
    assert_eq!(demangle("$s4main3FooV3baryyF"), "Foo.bar()");
    assert_eq!(demangle("main"), "main");
    assert_eq!(demangle(""), "");
}

#[test]
fn architecture_aliases() {
    use symbolic::common::Arch;
    assert_eq!(parse_arch("aarch64"), Arch::Arm64);
    assert_eq!(parse_arch("i686"), Arch::X86);
    assert_eq!(parse_arch("armv7l"), Arch::ArmV7);
    assert_eq!(parse_arch("x86_64"), Arch::Amd64);
    assert_eq!(parse_arch("nonsense"), Arch::Unknown);
}

/// Split DWARF: a package provides exactly the DWO IDs its executable's skeletons need (DWARF 5
/// and the GNU DWARF 4 extension), and so do its loose `.dwo` files together.
#[test]
fn describe_lists_dwo_ids_of_packages_units_and_skeletons() {
    for name in ["c_splitdwarf", "c_splitdwarf4"] {
        let exe = &describe(&read(&format!("out/{name}"))).expect("exe")[0];
        assert_eq!(exe.dwo_ids.len(), 2, "{name}");
        let dwp = &describe(&read(&format!("out/{name}.dwp"))).expect("dwp")[0];
        assert_eq!(
            (dwp.format, dwp.object_kind.as_str()),
            (crate::kinds::DebugFileFormat::SplitDwarf, "dwp")
        );
        assert_eq!(dwp.dwo_ids, exe.dwo_ids, "{name}.dwp");
        let mut loose: Vec<String> = ["app", "util"]
            .iter()
            .flat_map(|unit| {
                let dwo = describe(&read(&format!("out/{name}-{unit}.dwo"))).expect("dwo");
                assert_eq!(dwo[0].object_kind, "dwo");
                assert_eq!(
                    dwo[0].debug_id,
                    Some(dwo_debug_id(
                        u64::from_str_radix(&dwo[0].dwo_ids[0], 16).expect("hex")
                    ))
                );
                dwo[0].dwo_ids.clone()
            })
            .collect();
        loose.sort();
        assert_eq!(loose, exe.dwo_ids, "{name}-*.dwo");
    }
}

/// Function bodies of a wasm module are file offsets without their size prefix, back to back
/// up to the end of the code section.
#[test]
fn wasm_function_bodies_are_file_offsets_without_size_prefix() {
    let wasm = read("out/c_wasm.wasm");
    let (payload, end) = wasmparser::Parser::new(0)
        .parse_all(&wasm)
        .find_map(|payload| match payload.expect("valid wasm") {
            wasmparser::Payload::CodeSectionStart { range, .. } => {
                Some((range.start as u64, range.end as u64))
            }
            _ => None,
        })
        .expect("code section");
    let bodies = build::wasm_function_bodies(&wasm).expect("bodies");
    assert!(bodies.len() > 1);
    // The count and the first size prefix are one byte each in this small module.
    assert_eq!(bodies[0].0, payload + 2);
    for pair in bodies.windows(2) {
        assert!(pair[0].1 < pair[1].0, "{pair:?}");
    }
    assert_eq!(bodies.last().map(|b| b.1), Some(end));
    // A code section cut short is malformed.
    let cut = usize::try_from(end - 5).expect("offset");
    assert_eq!(build::wasm_function_bodies(&wasm[..cut]), None);
    assert_eq!(build::wasm_function_bodies(b"\0asm\x01\0\0\0"), None);
}

#[test]
fn elf_debug_ids_derive_from_build_ids() {
    let id = |code_id: &str| debug_id_from_build_id(&debugid::CodeId::new(code_id.to_owned()));
    // c_dwarf5's build ID and the debug ID symbolic reads from the file.
    assert_eq!(
        id("d0679d33296e7b2824081344f4ea774400bc85b9").map(|d| d.to_string()),
        Some("339d67d0-6e29-287b-2408-1344f4ea7744".to_owned())
    );
    assert_eq!(
        id("01020304").map(|d| d.to_string()),
        Some("04030201-0000-0000-0000-000000000000".to_owned())
    );
    assert_eq!(id("not hex"), None);
}

/// Embedded sources are found under the path a lookup reports, and under any spelling of it
/// that cleans to the same path: both sides go through symbolic's `join_path`/`clean_path`.
#[test]
fn embedded_sources_are_found_by_the_path_lookups_report() {
    let data = read("out/c_embedsrc");
    assert!(has_embedded_sources(&data));
    let bytes = build_cache(&BuildInput::new(&data)).expect("build");
    let cache = NativeCache::parse(&bytes).expect("parse");
    let path = (0x1100u64..0x1400)
        .flat_map(|addr| cache.lookup(addr))
        .find_map(|frame| frame.abs_path)
        .expect("a frame with a path");
    let source = embedded_source(&data, &path).expect("read");
    assert!(source.is_some_and(|text| !text.is_empty()), "{path}");
    let (dir, file) = path.rsplit_once('/').expect("absolute path");
    let spelled = format!("{dir}/./sub/../{file}");
    assert_eq!(
        embedded_source(&data, &spelled).expect("read"),
        embedded_source(&data, &path).expect("read")
    );
    assert_eq!(embedded_source(&data, "/nowhere/x.c").expect("read"), None);
}
