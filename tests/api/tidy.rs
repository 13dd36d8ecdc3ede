//! Tidy checks over the crate's own source, in the spirit of rust-analyzer's `xtask/src/tidy.rs`.
//! They guard the shape of `src/` rather than its behaviour: top-level modules form layers that
//! only import downwards and never in cycles (so each layer can be read, tested and changed
//! without the ones above it), no file grows past a size a reviewer can hold in their head, and
//! no `pub` item outlives its last user. Each check reads the files as text with a small
//! comment- and string-aware scanner (no external crates), and reports every violation at once
//! with its location and a way to fix it.
//!
//! Run alone with `cargo test --test api tidy`. Outside cargo, set `TIDY_ROOT` to the crate
//! directory (the one holding `src/`).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The layer of every top-level module of `src/` (layer 0 at the bottom). A module may import
/// modules of its own layer or of lower layers only. This is the one place to edit when a
/// top-level module is added, renamed or moved.
const LAYERS: &[(usize, &[&str])] = &[
    (
        0,
        &[
            "types", "kinds", "wire", "config", "error", "metrics", "auth", "crash",
        ],
    ),
    (1, &["js", "native"]),
    (2, &["store", "index", "ingest", "sources"]),
    (3, &["caches"]),
    (4, &["app"]),
    (5, &["http"]),
    (6, &["server", "cli"]),
];

/// Modules that are clients of the service, with the highest layer each may import. The `cli`
/// talks to a server over HTTP, so it must not link against the server's own code.
const CLIENTS: &[(&str, usize)] = &[("cli", 1)];

/// The most lines a file under `src/` may have.
const MAX_LINES: usize = 600;

/// `pub` items that are used only through a trait or a macro, so their name never appears in
/// code elsewhere. Each entry is (file relative to the crate, item name); give every entry a
/// comment saying who uses the item.
const UNUSED_PUB_ALLOWED: &[(&str, &str)] = &[];

#[test]
fn layers_only_look_down() {
    let root = crate_root();
    let files = read_rust_files(&root, "src");
    let edges = located_edges(&files);
    let modules = top_level_modules(&files);
    let problems = layer_violations(&modules, &edges);
    if !problems.is_empty() {
        let mut report = format!(
            "layers_only_look_down: {} violation(s) in src/ (layer table: LAYERS in tidy.rs)\n\n",
            problems.len()
        );
        for problem in &problems {
            let _ = writeln!(report, "{problem}\n");
        }
        report.push_str("Module graph (a -> the top-level modules a imports):\n");
        report.push_str(&render_graph(&module_edges(&root)));
        panic!("{report}");
    }
}

#[test]
fn no_file_passes_600_lines() {
    let root = crate_root();
    let files = read_rust_files(&root, "src");
    let mut report = String::new();
    for file in &files {
        let lines = file.text.lines().count();
        if lines > MAX_LINES {
            let _ = writeln!(report, "{}: {lines} lines", file.rel);
        }
    }
    assert!(
        report.is_empty(),
        "no_file_passes_600_lines: these files have more than {MAX_LINES} lines:\n{report}\n\
         Fix: split each into submodules along its natural seams (for example move its tests to \
         a sibling `tests.rs`, or a cohesive group of functions to its own file)."
    );
}

#[test]
fn every_pub_item_is_used() {
    let root = crate_root();
    let src = read_rust_files(&root, "src");
    let benches = read_rust_files(&root, "benches");
    let unused = unused_pub_items(&src, &benches);
    let mut report = String::new();
    for item in &unused {
        let _ = writeln!(
            report,
            "{}:{}: pub {} `{}`",
            item.file, item.line, item.kind, item.name
        );
    }
    let mut stale = String::new();
    for (file, name) in UNUSED_PUB_ALLOWED {
        let declared = src.iter().filter(|f| f.rel == *file).any(|f| {
            let (bare, _) = non_test_code(&f.text);
            pub_items(&bare).iter().any(|item| item.name == *name)
        });
        if !declared {
            let _ = writeln!(stale, "({file:?}, {name:?})");
        }
    }
    let mut message = String::new();
    if !report.is_empty() {
        let _ = write!(
            message,
            "every_pub_item_is_used: {} pub item(s) are not named anywhere else in non-test code \
             of src/ or benches/:\n{report}\n\
             Fix: delete the item; if only tests use it, move it into the test module; if it is \
             used only through a trait or a macro, add (file, name) to UNUSED_PUB_ALLOWED in \
             tidy.rs with a comment saying who uses it.\n",
            unused.len()
        );
    }
    if !stale.is_empty() {
        let _ = write!(
            message,
            "\nUNUSED_PUB_ALLOWED names items that are no longer declared; remove these \
             entries:\n{stale}"
        );
    }
    assert!(message.is_empty(), "{message}");
}

/// The top-level module graph of the crate at `root`: every top-level module of `src/` (also
/// those importing nothing) mapped to the top-level modules it names through `crate::` paths.
/// The crate root (`lib.rs`, `main.rs`) is left out, and so are self-imports.
#[must_use]
pub fn module_edges(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let files = read_rust_files(root, "src");
    module_graph(&top_level_modules(&files), &located_edges(&files))
}

/// The crate directory: `TIDY_ROOT` when set (for runs outside cargo), else the crate this test
/// was built from.
fn crate_root() -> PathBuf {
    std::env::var_os("TIDY_ROOT")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO_MANIFEST_DIR").map(PathBuf::from))
        .expect("set TIDY_ROOT to the crate directory (the one holding src/), or run under cargo")
}

/// A Rust source file, named by its path relative to the crate with `/` separators.
struct SourceFile {
    rel: String,
    text: String,
}

/// Every `.rs` file under `root/dir`, sorted by path. A missing `dir` other than `src` yields no
/// files (a crate need not have benches).
fn read_rust_files(root: &Path, dir: &str) -> Vec<SourceFile> {
    let base = root.join(dir);
    if !base.is_dir() {
        assert!(
            dir != "src",
            "{} has no src/ directory; set TIDY_ROOT to the crate directory",
            root.display()
        );
        return Vec::new();
    }
    let mut files = Vec::new();
    let mut pending = vec![base];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
                .path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                let rel = path
                    .strip_prefix(root)
                    .expect("a walked path lies under the root")
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                files.push(SourceFile { rel, text });
            }
        }
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    files
}

/// The top-level module a file under `src/` belongs to: its first path component under `src/`
/// (`src/http/mod.rs` and `src/http/ops.rs` are `http`, `src/store.rs` is `store`). The crate
/// root files `lib.rs` and `main.rs` belong to none.
fn top_level_module(rel: &str) -> Option<String> {
    let under_src = rel.strip_prefix("src/")?;
    match under_src.split_once('/') {
        Some((dir, _)) => Some(dir.to_owned()),
        None if under_src == "lib.rs" || under_src == "main.rs" => None,
        None => Some(
            under_src
                .strip_suffix(".rs")
                .unwrap_or(under_src)
                .to_owned(),
        ),
    }
}

/// Each top-level module with the file that declares it (`src/a.rs` or `src/a/mod.rs`), or else
/// the first file that belongs to it.
fn top_level_modules(files: &[SourceFile]) -> BTreeMap<String, String> {
    let mut modules = BTreeMap::new();
    for file in files {
        if let Some(module) = top_level_module(&file.rel) {
            let declares = file.rel == format!("src/{module}.rs")
                || file.rel == format!("src/{module}/mod.rs");
            let entry = modules.entry(module).or_insert_with(|| file.rel.clone());
            if declares {
                entry.clone_from(&file.rel);
            }
        }
    }
    modules
}

/// Every cross-module edge (importer, imported) with the `file:line` of each place it is made.
type LocatedEdges = BTreeMap<(String, String), Vec<String>>;

fn located_edges(files: &[SourceFile]) -> LocatedEdges {
    let mut edges = LocatedEdges::new();
    for file in files {
        let Some(from) = top_level_module(&file.rel) else {
            continue;
        };
        let bare = scrub(&file.text, Strings::Blank);
        for (to, line) in crate_refs(&bare) {
            if to != from {
                edges
                    .entry((from.clone(), to))
                    .or_default()
                    .push(format!("{}:{line}", file.rel));
            }
        }
    }
    edges
}

fn module_graph(
    modules: &BTreeMap<String, String>,
    edges: &LocatedEdges,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules
        .keys()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for (from, to) in edges.keys() {
        graph.entry(from.clone()).or_default().insert(to.clone());
    }
    graph
}

/// The graph as one `a -> b, c` line per module.
fn render_graph(graph: &BTreeMap<String, BTreeSet<String>>) -> String {
    let mut out = String::new();
    for (from, tos) in graph {
        let tos = if tos.is_empty() {
            "(nothing)".to_owned()
        } else {
            tos.iter().cloned().collect::<Vec<_>>().join(", ")
        };
        let _ = writeln!(out, "  {from} -> {tos}");
    }
    out
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .find(|(_, modules)| modules.contains(&module))
        .map(|(layer, _)| *layer)
}

/// `file:line` of the first place an edge is made, and how many more there are.
fn where_made(locations: &[String]) -> String {
    match locations {
        [] => String::new(),
        [only] => only.clone(),
        [first, rest @ ..] => format!("{first} (and {} more: {})", rest.len(), rest.join(", ")),
    }
}

/// The layer rules, one message per violation: modules missing from the table, edges pointing
/// up a layer, clients importing past their limit, and cycles.
fn layer_violations(modules: &BTreeMap<String, String>, edges: &LocatedEdges) -> Vec<String> {
    let mut problems = Vec::new();
    let mut unknown = BTreeSet::new();
    for (module, file) in modules {
        if layer_of(module).is_none() && unknown.insert(module.clone()) {
            problems.push(format!(
                "{file}: top-level module `{module}` is not in the layer table.\n    \
                 Fix: add it to LAYERS in tidy.rs at the layer it belongs to."
            ));
        }
    }
    for ((from, to), locations) in edges {
        if layer_of(to).is_none() && unknown.insert(to.clone()) {
            problems.push(format!(
                "{}: `crate::{to}` is not a top-level module in the layer table.\n    \
                 Fix: add `{to}` to LAYERS in tidy.rs, or name the item through the module that defines it.",
                where_made(locations)
            ));
        }
        let (Some(from_layer), Some(to_layer)) = (layer_of(from), layer_of(to)) else {
            continue;
        };
        if let Some((_, limit)) = CLIENTS.iter().find(|(client, _)| client == from) {
            if to_layer > *limit {
                problems.push(format!(
                    "{}: `{from}` imports `{to}` (layer {to_layer}), but `{from}` is a client \
                     and may only import layers 0 to {limit}.\n    \
                     Fix: go through the server's HTTP API, or move what it needs down to \
                     layer {limit} or below.",
                    where_made(locations)
                ));
            }
        } else if to_layer > from_layer {
            problems.push(format!(
                "{}: `{from}` (layer {from_layer}) imports `{to}` (layer {to_layer}); a module \
                 may only import its own or lower layers.\n    \
                 Fix: move what `{from}` needs from `{to}` down to layer {from_layer} or below, \
                 or have `{to}` pass it in from above.",
                where_made(locations)
            ));
        }
    }
    let graph = module_graph(modules, edges);
    for cycle in find_cycles(&graph) {
        let mut made = String::new();
        for pair in cycle.windows(2) {
            let key = (pair[0].clone(), pair[1].clone());
            let first = edges
                .get(&key)
                .and_then(|locations| locations.first())
                .map_or("?", String::as_str);
            let _ = write!(made, "\n    {} -> {}: {first}", pair[0], pair[1]);
        }
        problems.push(format!(
            "cycle between top-level modules: {}{made}\n    \
             Fix: break one edge, by moving the shared items into the lower module or into a \
             new module below both.",
            cycle.join(" -> ")
        ));
    }
    problems
}

/// One cycle per group of mutually reachable modules, as a path that starts and ends at the
/// group's first module (the shortest such cycle).
fn find_cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let reach = |start: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut pending = vec![start.to_owned()];
        while let Some(node) = pending.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    pending.push(next.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|node| (node, reach(node))).collect();
    let mut done = BTreeSet::new();
    let mut cycles = Vec::new();
    for (start, from_start) in &reachable {
        if done.contains(*start) || !from_start.contains(*start) {
            continue;
        }
        let group: BTreeSet<&String> = from_start
            .iter()
            .filter(|other| reachable.get(other).is_some_and(|r| r.contains(*start)))
            .collect();
        done.extend(group.iter().map(|node| (*node).clone()));
        // Breadth-first search back to the start, staying inside the group.
        let mut parent: BTreeMap<&String, &String> = BTreeMap::new();
        let mut queue = VecDeque::from([*start]);
        'search: while let Some(node) = queue.pop_front() {
            for next in graph.get(node).into_iter().flatten() {
                if !group.contains(next) {
                    continue;
                }
                if next == *start {
                    let mut path = vec![(*start).clone(), node.clone()];
                    let mut at = node;
                    while let Some(previous) = parent.get(at) {
                        path.push((*previous).clone());
                        at = previous;
                    }
                    path.reverse();
                    cycles.push(path);
                    break 'search;
                }
                if !parent.contains_key(next) && next != *start {
                    parent.insert(next, node);
                    queue.push_back(next);
                }
            }
        }
    }
    cycles
}

/// Whether string literals survive `scrub` (comments never do).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Strings {
    Keep,
    Blank,
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// The source with every comment (`//`, `///`, `//!`, nested `/* */`) and, with
/// `Strings::Blank`, the contents of every string, byte string, raw string and character
/// literal replaced by spaces. Quotes and newlines stay, so character offsets and line numbers
/// match the original.
fn scrub(src: &str, strings: Strings) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = chars.clone();
    let blank = |out: &mut [char], range: Range<usize>| {
        for c in &mut out[range] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let blank_literal = |out: &mut [char], range: Range<usize>| {
        if strings == Strings::Blank {
            blank(out, range);
        }
    };
    let len = chars.len();
    let at = |i: usize| chars.get(i).copied();
    let mut i = 0;
    while i < len {
        let c = chars[i];
        if c == '/' && at(i + 1) == Some('/') {
            let end = (i..len).find(|&j| chars[j] == '\n').unwrap_or(len);
            blank(&mut out, i..end);
            i = end;
        } else if c == '/' && at(i + 1) == Some('*') {
            let mut depth = 0usize;
            let mut j = i;
            while j < len {
                if chars[j] == '/' && at(j + 1) == Some('*') {
                    depth += 1;
                    j += 2;
                } else if chars[j] == '*' && at(j + 1) == Some('/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            let end = j.min(len);
            blank(&mut out, i..end);
            i = end;
        } else if c == '"' {
            let mut j = i + 1;
            while j < len && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            let end = j.min(len);
            blank_literal(&mut out, i + 1..end);
            i = end + 1;
        } else if c == '\'' {
            // A character literal (`'x'`, `'\n'`, `'\''`, `'\u{7b}'`) or a lifetime (`'a`).
            if at(i + 1) == Some('\\') {
                let end = (i + 3..len).find(|&j| chars[j] == '\'').unwrap_or(len);
                blank_literal(&mut out, i + 1..end);
                i = end + 1;
            } else if at(i + 2) == Some('\'') && at(i + 1) != Some('\n') {
                blank_literal(&mut out, i + 1..i + 2);
                i += 3;
            } else {
                i += 1;
            }
        } else if is_ident_char(c) {
            let start = i;
            while i < len && is_ident_char(chars[i]) {
                i += 1;
            }
            // `b"…"`, `c"…"` and `b'…'` need nothing here: the quote comes next. Raw strings
            // (`r"…"`, `r#"…"#`, `br…`, `cr…`) end at a quote followed by as many `#`.
            let word: String = chars[start..i].iter().collect();
            if matches!(word.as_str(), "r" | "br" | "cr") {
                let hashes = (i..len).take_while(|&j| chars[j] == '#').count();
                if at(i + hashes) == Some('"') {
                    let content = i + hashes + 1;
                    let closes =
                        |j: usize| chars[j] == '"' && (1..=hashes).all(|k| at(j + k) == Some('#'));
                    let end = (content..len).find(|&j| closes(j)).unwrap_or(len);
                    blank_literal(&mut out, content..end);
                    i = (end + 1 + hashes).min(len);
                }
            }
        } else {
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// A word (identifier, keyword or number) or a single punctuation character of scrubbed code.
struct Token {
    text: String,
    line: usize,
    /// Offset in characters of the token's first character.
    offset: usize,
}

impl Token {
    fn is(&self, text: &str) -> bool {
        self.text == text
    }

    fn is_word(&self) -> bool {
        self.text.starts_with(is_ident_char)
    }
}

fn tokenize(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if is_ident_char(c) {
            let start = i;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            let text = chars[start..i].iter().collect();
            tokens.push(Token {
                text,
                line,
                offset: start,
            });
        } else {
            tokens.push(Token {
                text: c.to_string(),
                line,
                offset: i,
            });
            i += 1;
        }
    }
    tokens
}

/// The top-level modules named by `crate::` paths (also `$crate::`) in scrubbed code, with the
/// line of each: `crate::a::b` names `a`; `crate::{a, b::c, d::{e}}`, over any number of lines,
/// names `a`, `b` and `d`.
fn crate_refs(bare: &str) -> Vec<(String, usize)> {
    let tokens = tokenize(bare);
    let is = |i: usize, text: &str| tokens.get(i).is_some_and(|t| t.is(text));
    let mut refs = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        if !(token.is("crate") && is(i + 1, ":") && is(i + 2, ":")) {
            continue;
        }
        let Some(next) = tokens.get(i + 3) else {
            continue;
        };
        if next.is_word() {
            refs.push((next.text.clone(), next.line));
        } else if next.is("{") {
            // Within a group, the first word after `{` or after a `,` at depth 1 names a module.
            let mut depth = 0usize;
            let mut expect_name = false;
            for token in &tokens[i + 3..] {
                match token.text.as_str() {
                    "{" => {
                        depth += 1;
                        expect_name = depth == 1;
                    }
                    "}" => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    "," => expect_name = depth == 1,
                    _ => {
                        if expect_name && token.is_word() && !token.is("self") {
                            refs.push((token.text.clone(), token.line));
                        }
                        expect_name = false;
                    }
                }
            }
        }
    }
    refs
}

/// The index of the bracket closing the one at `open` (all of `(`, `[`, `{` count alike, which
/// is sound in scrubbed code), or the last index if it never closes.
fn matching_close(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (i, token) in tokens.iter().enumerate().skip(open) {
        match token.text.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    tokens.len().saturating_sub(1)
}

/// The index of the last token of the item starting at `start`: its `;`, or the `}` closing its
/// first top-level `{ … }` block.
fn item_end(tokens: &[Token], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < tokens.len() {
        match tokens[i].text.as_str() {
            "(" | "[" => depth += 1,
            ")" | "]" => depth = depth.saturating_sub(1),
            "{" if depth == 0 => return matching_close(tokens, i),
            ";" if depth == 0 => return i,
            "}" if depth == 0 => return i.saturating_sub(1).max(start),
            _ => {}
        }
        i += 1;
    }
    tokens.len().saturating_sub(1)
}

/// Whether `tokens[i..]` starts with the given token texts.
fn starts_with(tokens: &[Token], i: usize, texts: &[&str]) -> bool {
    texts
        .iter()
        .enumerate()
        .all(|(k, text)| tokens.get(i + k).is_some_and(|t| t.is(text)))
}

/// The character ranges of test-only code in scrubbed code: each item under `#[cfg(test)]`
/// (usually `mod tests { … }`, with its attributes), or the whole file under `#![cfg(test)]`.
fn test_regions(bare: &str) -> Vec<Range<usize>> {
    let tokens = tokenize(bare);
    let mut regions = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if starts_with(&tokens, i, &["#", "!", "[", "cfg", "(", "test", ")", "]"]) {
            let whole_file = 0..bare.chars().count();
            return vec![whole_file];
        }
        if !starts_with(&tokens, i, &["#", "[", "cfg", "(", "test", ")", "]"]) {
            i += 1;
            continue;
        }
        let mut j = i + 7;
        while starts_with(&tokens, j, &["#", "["]) {
            j = matching_close(&tokens, j + 1) + 1;
        }
        let end = item_end(&tokens, j.min(tokens.len().saturating_sub(1)));
        regions.push(tokens[i].offset..tokens[end].offset + tokens[end].text.chars().count());
        i = end + 1;
    }
    regions
}

/// `text` with the given character ranges blanked, newlines kept.
fn blank_ranges(text: &str, ranges: &[Range<usize>]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for range in ranges {
        let end = range.end.min(chars.len());
        for c in &mut chars[range.start.min(end)..end] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    }
    chars.into_iter().collect()
}

/// The non-test code of a file twice: without comments and string contents (for parsing), and
/// without comments only (for finding names, which may be used from inside a string, as in
/// `#[serde(default = "name")]`).
fn non_test_code(text: &str) -> (String, String) {
    let bare = scrub(text, Strings::Blank);
    let regions = test_regions(&bare);
    let code = scrub(text, Strings::Keep);
    (blank_ranges(&bare, &regions), blank_ranges(&code, &regions))
}

/// Whether a file under `src/` holds only tests.
fn is_test_file(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name == "tests.rs" || name.ends_with("_tests.rs")
}

/// A `pub` or `pub(crate)` item declaration.
#[derive(Debug, PartialEq, Eq)]
struct PubItem {
    file: String,
    line: usize,
    kind: String,
    name: String,
}

/// The `pub` and `pub(crate)` items declared in scrubbed code: functions (also methods in
/// `impl` blocks), structs, enums, unions, traits, type aliases, constants and statics. Modules,
/// re-exports, fields, `pub fn main`, and anything inside `macro_rules!` are left out.
fn pub_items(bare: &str) -> Vec<PubItem> {
    const KINDS: &[&str] = &[
        "fn", "struct", "enum", "union", "trait", "type", "const", "static",
    ];
    let tokens = tokenize(bare);
    let is = |i: usize, text: &str| tokens.get(i).is_some_and(|t| t.is(text));
    let mut items = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if starts_with(&tokens, i, &["macro_rules", "!"]) {
            i = matching_close(&tokens, (i + 3).min(tokens.len().saturating_sub(1))) + 1;
            continue;
        }
        if !tokens[i].is("pub") {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        if is(j, "(") {
            if !starts_with(&tokens, j, &["(", "crate", ")"]) {
                i += 1;
                continue;
            }
            j += 3;
        }
        loop {
            let qualifier = is(j, "async")
                || is(j, "unsafe")
                || is(j, "extern")
                || is(j, "\"")
                || (is(j, "const")
                    && ["fn", "async", "unsafe", "extern"]
                        .iter()
                        .any(|q| is(j + 1, q)));
            if !qualifier {
                break;
            }
            j += 1;
        }
        let Some(kind) = tokens.get(j).filter(|t| KINDS.contains(&t.text.as_str())) else {
            i += 1;
            continue;
        };
        let mut n = j + 1;
        if kind.is("static") && is(n, "mut") {
            n += 1;
        }
        if starts_with(&tokens, n, &["r", "#"]) {
            n += 2;
        }
        if let Some(name) = tokens.get(n).filter(|t| t.is_word() && !t.is("_")) {
            let is_main = kind.is("fn") && name.is("main");
            if !is_main && !name.text.starts_with(|c: char| c.is_ascii_digit()) {
                items.push(PubItem {
                    file: String::new(),
                    line: name.line,
                    kind: kind.text.clone(),
                    name: name.text.clone(),
                });
            }
        }
        i = n + 1;
    }
    items
}

/// The `pub` items of non-test code in `src` whose name appears nowhere in non-test code of
/// `src` or `benches` other than on its own declaration line, less the allowed ones.
fn unused_pub_items(src: &[SourceFile], benches: &[SourceFile]) -> Vec<PubItem> {
    let mut declared = Vec::new();
    let mut uses: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
    let files = src.iter().filter(|f| !is_test_file(&f.rel)).chain(benches);
    for (index, file) in files.enumerate() {
        let (bare, code) = non_test_code(&file.text);
        if file.rel.starts_with("src/") {
            for mut item in pub_items(&bare) {
                item.file.clone_from(&file.rel);
                declared.push((index, item));
            }
        }
        for token in tokenize(&code).into_iter().filter(Token::is_word) {
            uses.entry(token.text)
                .or_default()
                .push((index, token.line));
        }
    }
    declared
        .into_iter()
        .filter(|(index, item)| {
            let used_elsewhere = uses
                .get(&item.name)
                .into_iter()
                .flatten()
                .any(|&place| place != (*index, item.line));
            let allowed = UNUSED_PUB_ALLOWED
                .iter()
                .any(|(file, name)| *file == item.file && *name == item.name);
            !used_elsewhere && !allowed
        })
        .map(|(_, item)| item)
        .collect()
}

// Tests of the scanner and of the rules themselves, on small inline inputs.

fn names(refs: &[(String, usize)]) -> Vec<&str> {
    refs.iter().map(|(name, _)| name.as_str()).collect()
}

fn file(rel: &str, text: &str) -> SourceFile {
    SourceFile {
        rel: rel.to_owned(),
        text: text.to_owned(),
    }
}

#[test]
fn scrub_removes_comments_and_keeps_positions() {
    let src = "use crate::a; // crate::b\n/// crate::c\n//! crate::d\n/* crate::e /* crate::f */ \
               crate::g */ crate::h\nlet x = 1; /* a\ncrate::i */ crate::j";
    let bare = scrub(src, Strings::Blank);
    assert_eq!(bare.chars().count(), src.chars().count());
    assert_eq!(bare.lines().count(), src.lines().count());
    let refs = crate_refs(&bare);
    assert_eq!(names(&refs), ["a", "h", "j"]);
    assert_eq!(
        refs.iter().map(|(_, line)| *line).collect::<Vec<_>>(),
        [1, 4, 6]
    );
}

#[test]
fn scrub_blanks_strings_and_char_literals() {
    let src = r##"let s = "crate::a \" crate::b // not a comment";
let r = r#"crate::c " still inside"#; let b = br"crate::d"; let y = b"crate::e";
let q = '"'; let o = '{'; let e = '\''; let u = '\u{7b}'; fn f<'a>(x: &'a str) {}
crate::real"##;
    let bare = scrub(src, Strings::Blank);
    assert_eq!(names(&crate_refs(&bare)), ["real"]);
    assert_eq!(
        bare.chars().filter(|&c| c == '{').count(),
        1,
        "only the fn body's brace: {bare}"
    );
    let kept = scrub(src, Strings::Keep);
    assert!(kept.contains("crate::b // not a comment"), "{kept}");
    assert!(kept.contains("r#\"crate::c \" still inside\"#"), "{kept}");
}

#[test]
fn crate_refs_reads_grouped_imports() {
    let src =
        "use crate::{a, b::c, d::{e, f::{g}}, self};\nuse crate::{\n    h,\n    i::{\n        \
               j,\n    },\n};\nlet x = $crate::m::n();\nuse crate :: o;\npub(crate) fn p() {}";
    let refs = crate_refs(&scrub(src, Strings::Blank));
    assert_eq!(names(&refs), ["a", "b", "d", "h", "i", "m", "o"]);
    assert_eq!(refs[3], ("h".to_owned(), 3));
    assert_eq!(refs[4], ("i".to_owned(), 4));
}

#[test]
fn test_code_is_skipped() {
    let src = r#"pub fn kept() {}
#[cfg(test)]
mod tests {
    fn f() { let s = "}"; let c = '}'; /* } */ }
    pub fn hidden() {}
}
#[cfg(test)]
mod more_tests;
#[cfg(test)]
#[allow(dead_code)]
pub(crate) fn only_for_tests() -> [u8; 2] { [0; 2] }
pub fn after() { uses_kept(); }
"#;
    let (bare, code) = non_test_code(src);
    let items: Vec<String> = pub_items(&bare).into_iter().map(|i| i.name).collect();
    assert_eq!(items, ["kept", "after"]);
    assert!(!code.contains("hidden") && !code.contains("more_tests") && code.contains("uses_kept"));
    let (whole, _) = non_test_code("#![cfg(test)]\npub fn a() {}\n");
    assert!(pub_items(&whole).is_empty());
}

#[test]
fn pub_items_finds_declarations() {
    let src = r#"pub(crate) async fn a() {}
pub const fn b() {}
pub const C: u32 = 1;
pub static mut D: u32 = 2;
pub struct E(pub u32);
pub use x::F;
pub mod g;
pub fn main() {}
pub(super) fn h() {}
pub(in crate::x) fn h2() {}
struct S { pub field: u32, pub fn_ptr: fn() }
pub extern "C" fn i() {}
pub unsafe trait J {}
pub type K = u32;
pub enum L { M }
impl S { pub fn method(&self) {} }
pub const _: () = ();
macro_rules! m { () => { pub fn n() {} } }
pub fn r#match() {}
"#;
    let items: Vec<(String, String, usize)> = pub_items(&scrub(src, Strings::Blank))
        .into_iter()
        .map(|i| (i.kind, i.name, i.line))
        .collect();
    let expected = [
        ("fn", "a", 1),
        ("fn", "b", 2),
        ("const", "C", 3),
        ("static", "D", 4),
        ("struct", "E", 5),
        ("fn", "i", 12),
        ("trait", "J", 13),
        ("type", "K", 14),
        ("enum", "L", 15),
        ("fn", "method", 16),
        ("fn", "match", 19),
    ];
    let expected: Vec<(String, String, usize)> = expected
        .iter()
        .map(|(k, n, l)| ((*k).to_owned(), (*n).to_owned(), *l))
        .collect();
    assert_eq!(items, expected);
}

#[test]
fn unused_pub_items_are_found() {
    let src = [
        file("src/a.rs", "pub fn used() {}\npub fn unused() {}\npub fn only_in_tests() {}\n\
                          pub fn only_in_bench() {}\n/// unused_in_doc\npub fn unused_in_doc() {}\n\
                          pub struct Lonely;\npub struct Own;\nimpl Own {\n    pub fn own_file(&self) {}\n    fn x() { own_file() }\n}"),
        file("src/b.rs", "fn f() { crate::a::used(); } // unused\n\
                          #[cfg(test)]\nmod tests { fn t() { only_in_tests(); Lonely; } }"),
        file("src/a_tests.rs", "fn t() { unused(); only_in_tests(); }"),
    ];
    let benches = [file("benches/x.rs", "fn b() { only_in_bench(); }")];
    let unused: Vec<String> = unused_pub_items(&src, &benches)
        .into_iter()
        .map(|i| format!("{}:{}", i.file, i.name))
        .collect();
    assert_eq!(
        unused,
        [
            "src/a.rs:unused",
            "src/a.rs:only_in_tests",
            "src/a.rs:unused_in_doc",
            "src/a.rs:Lonely"
        ]
    );
}

#[test]
fn cycles_are_found() {
    let graph = |edges: &[(&str, &str)]| {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in edges {
            graph
                .entry((*from).to_owned())
                .or_default()
                .insert((*to).to_owned());
            graph.entry((*to).to_owned()).or_default();
        }
        graph
    };
    let cyclic = graph(&[
        ("a", "b"),
        ("b", "c"),
        ("c", "a"),
        ("b", "a2"),
        ("a2", "a"),
        ("c", "d"),
        ("d", "e"),
        ("e", "d"),
        ("f", "a"),
    ]);
    assert_eq!(
        find_cycles(&cyclic),
        [vec!["a", "b", "a2", "a"], vec!["d", "e", "d"]]
    );
    let acyclic = graph(&[("a", "b"), ("b", "c"), ("a", "c"), ("d", "a")]);
    assert!(find_cycles(&acyclic).is_empty());
}

#[test]
fn layer_rules_are_enforced() {
    let files = [
        file("src/lib.rs", "pub mod caches; use crate::http::X;"),
        file(
            "src/caches.rs",
            "use crate::{http::AppState, store::Store, types::Id};",
        ),
        file("src/http/mod.rs", "use crate::caches::Caches;"),
        file("src/cli/mod.rs", "use crate::{js::A, store::B};"),
        file("src/mystery.rs", "use crate::types::Id;"),
        file("src/store.rs", "use crate::types::Id; // crate::http"),
        file("src/types.rs", ""),
    ];
    let edges = located_edges(&files);
    let modules = top_level_modules(&files);
    let problems = layer_violations(&modules, &edges);
    let heads: Vec<&str> = problems
        .iter()
        .map(|p| p.lines().next().unwrap_or(""))
        .collect();
    assert_eq!(heads.len(), 4, "{problems:#?}");
    assert!(
        heads[0].starts_with("src/mystery.rs: top-level module `mystery`"),
        "{}",
        heads[0]
    );
    assert!(
        heads[1].starts_with("src/caches.rs:1: `caches` (layer 3) imports `http` (layer 5)"),
        "{}",
        heads[1]
    );
    assert!(
        heads[2].starts_with("src/cli/mod.rs:1: `cli` imports `store` (layer 2)"),
        "{}",
        heads[2]
    );
    assert_eq!(
        heads[3],
        "cycle between top-level modules: caches -> http -> caches"
    );
    let graph = render_graph(&module_graph(&modules, &edges));
    assert!(
        graph.contains("  caches -> http, store, types\n"),
        "{graph}"
    );
    assert!(graph.contains("  types -> (nothing)\n"), "{graph}");
}
