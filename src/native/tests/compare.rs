//! How the oracle tests compare frames: our frames and the tools' answers reduced to function
//! name, file and line, normalised so that spelling differences between demanglers and path
//! joiners do not count as misses (see `oracle.rs` for the rules).
//!
//! Test code only; it never relaxes a comparison beyond what the rules in `oracle.rs` list.

use serde_json::Value;

use crate::native::NativeFrame;

pub(super) fn hex(value: &Value) -> u64 {
    let text = value.as_str().unwrap_or_default();
    u64::from_str_radix(text.trim_start_matches("0x"), 16).unwrap_or_default()
}

/// A frame reduced to what we compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cmp {
    pub(super) function: String,
    pub(super) file: Option<String>,
    pub(super) line: Option<u64>,
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

pub(super) fn show(chain: &[Cmp]) -> String {
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

pub(super) fn oracle_chain(value: &Value) -> Option<Vec<Cmp>> {
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

pub(super) fn our_chain(frames: &[NativeFrame]) -> Vec<Cmp> {
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
