//! dart2js async functions. dart2js compiles `Future<User> loadUser(int id) async {…}` to a
//! function `loadUser` (minified: `hY`) whose code runs in a generated body
//! `var $async$loadUser = …(function(…){…})` (minified: `$async$hY`). Scope analysis names
//! frames in the body after the body; a person expects the async function's own name, as
//! Symbolicator gives it for Dart. Pure: text in, names out.

use std::collections::HashMap;

use sourcemap::SourceMap;

/// The prefix dart2js gives an async function's generated body.
const ASYNC_BODY: &str = "$async$";

/// Original names of the minified identifiers that name functions, from the map's tokens:
/// `hY` → `loadUser` where a token at `hY` carries the name `loadUser`.
#[derive(Default)]
pub(crate) struct DartAsyncNames {
    originals: HashMap<String, String>,
}

impl DartAsyncNames {
    /// Empty (and free) unless the minified source has dart2js async bodies.
    pub(crate) fn new(sm: &SourceMap, minified: Option<&str>) -> Self {
        let Some(minified) = minified.filter(|m| m.contains(ASYNC_BODY)) else {
            return Self::default();
        };
        let lines: Vec<&str> = minified.split('\n').collect();
        let mut originals = HashMap::new();
        for token in sm.tokens() {
            let Some(name) = token.get_name() else {
                continue;
            };
            let (line, column) = token.get_dst();
            let Some(text) = lines.get(line as usize) else {
                continue;
            };
            if let Some(identifier) = identifier_at(text, column) {
                originals
                    .entry(identifier.to_owned())
                    .or_insert_with(|| name.to_owned());
            }
        }
        Self { originals }
    }

    /// The name to show for a scope: an async body's name becomes its function's original
    /// name (`$async$hY` → `loadUser`, or `$async$loadUser` → `loadUser` when unminified).
    pub(crate) fn name<'a>(&'a self, scope: &'a str) -> &'a str {
        match scope.strip_prefix(ASYNC_BODY) {
            Some(function) if !function.is_empty() => self
                .originals
                .get(function)
                .map_or(function, String::as_str),
            _ => scope,
        }
    }
}

/// The JavaScript identifier starting at UTF-16 `column` of `line`, if one does.
fn identifier_at(line: &str, column: u32) -> Option<&str> {
    let mut units = 0u32;
    let start = line.char_indices().find_map(|(i, c)| {
        let here = units;
        units += c.len_utf16() as u32;
        (here == column).then_some(i)
    })?;
    let rest = &line[start..];
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn async_bodies_take_their_function_name() {
        let map =
            br#"{"version":3,"sources":["main.dart"],"names":["loadUser"],"mappings":"AAAAA"}"#;
        let sm = SourceMap::from_slice(map).unwrap();
        let names = DartAsyncNames::new(&sm, Some("hY(a){var $async$hY=1}"));
        assert_eq!(names.name("$async$hY"), "loadUser");
        assert_eq!(names.name("$async$fetch"), "fetch");
        assert_eq!(names.name("hY"), "hY");
        assert_eq!(names.name("$async$"), "$async$");
        let none = DartAsyncNames::new(&sm, Some("hY(a){}"));
        assert_eq!(none.name("$async$hY"), "hY");
    }
}
