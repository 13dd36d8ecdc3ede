//! Scope names of one original source file by position, for maps without `sourcesContent`
//! whose originals were uploaded on their own: the file is parsed once (in its own syntax,
//! see `names.rs`), then each lookup is a search over its function ranges. Pure: text in,
//! names out.

use super::names::{function_scopes, Scope};
use super::scopes::{on_parser_thread, parser_stack_size};
use super::JsScope;

/// The function scopes of one original file.
pub struct OriginalFile {
    scopes: Vec<Scope>,
    line_starts: Vec<usize>,
    text_len: usize,
}

impl OriginalFile {
    /// Parses `text` (its syntax chosen by `path`); `None` when it parses in no syntax its
    /// path suggests, or is too deeply nested to parse safely.
    pub fn parse(path: &str, text: &str) -> Option<OriginalFile> {
        let stack = parser_stack_size(text)?;
        let (owned_path, owned_text) = (path.to_owned(), text.to_owned());
        let scopes =
            on_parser_thread(stack, move || function_scopes(&owned_path, &owned_text)).ok()??;
        let mut line_starts = vec![0usize];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Some(OriginalFile {
            scopes,
            line_starts,
            text_len: text.len(),
        })
    }

    /// Bytes this index holds (for cache weighing).
    pub fn weight(&self) -> usize {
        self.line_starts.len() * 8
            + self
                .scopes
                .iter()
                .map(|s| 16 + s.name.as_ref().map_or(0, String::len))
                .sum::<usize>()
    }

    /// The innermost function around a 0-based (line, column) of the file. Columns are
    /// taken as bytes here, which is exact for ASCII lines and close enough to pick the
    /// right function elsewhere (functions rarely start mid-line after non-ASCII text).
    pub fn scope_at(&self, line: u32, column: u32) -> JsScope<'_> {
        let Some(&start) = self.line_starts.get(line as usize) else {
            return JsScope::Unknown;
        };
        let end = self
            .line_starts
            .get(line as usize + 1)
            .map_or(self.text_len, |e| e.saturating_sub(1));
        let offset = (start + column as usize).min(end.max(start));
        let offset = u32::try_from(offset).unwrap_or(u32::MAX);
        // Scopes are sorted by start with parents before children: the last one that
        // starts at or before the offset and still contains it is the innermost.
        let candidates = self.scopes.partition_point(|s| s.start <= offset);
        match self.scopes[..candidates]
            .iter()
            .rev()
            .find(|s| offset < s.end)
        {
            Some(Scope {
                name: Some(name), ..
            }) => JsScope::Named(name),
            Some(_) => JsScope::Anonymous,
            None => JsScope::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_by_position_in_typescript_and_javascript() {
        let ts = "namespace Store {\n  export class Cart {\n    add(x: number): void {\n      throw new Error(String(x));\n    }\n  }\n}\n";
        let f = OriginalFile::parse("src/store.ts", ts).expect("parses as TypeScript");
        assert_eq!(f.scope_at(3, 6), JsScope::Named("Store.Cart.add"));
        assert_eq!(f.scope_at(0, 0), JsScope::Unknown);
        let js = "setTimeout(function () {\n  boom();\n});\n";
        let f = OriginalFile::parse("a.js", js).unwrap();
        assert_eq!(f.scope_at(1, 2), JsScope::Anonymous);
        assert_eq!(f.scope_at(99, 0), JsScope::Unknown);
        assert!(OriginalFile::parse("a.vue", "<template>").is_none());
    }
}
