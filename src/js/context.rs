//! Source context: the lines around a resolved position, trimmed the way Sentry trims them.

/// Lines around a position in a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceContext {
    /// Up to `lines` lines before the context line, in file order.
    pub pre_context: Vec<String>,
    /// The line itself.
    pub context_line: String,
    /// Up to `lines` lines after the context line.
    pub post_context: Vec<String>,
}

/// Lines longer than this many characters are trimmed.
const MAX_LINE_CHARS: usize = 150;
/// Width of a trimmed line's window, in characters.
const WINDOW_CHARS: usize = 140;
/// How far before the column a trimmed window starts.
const WINDOW_LEAD: usize = 60;

/// Returns `lines` lines of context before and after the 1-based `line` of `source`
/// (`None` when the line does not exist). Lines longer than 150 characters are cut to a
/// 140-character window with `{snip}` markers, as Sentry does: the context line around the
/// 1-based `column` (UTF-16 code units, as source maps count them), the others from their
/// start. Lines end at `\n` or `\r\n`.
pub fn source_context(source: &str, line: u32, column: u32, lines: usize) -> Option<SourceContext> {
    context_with(source, line, column, lines, None)
}

/// [`source_context`], told whether the context line is ASCII when the caller knows.
fn context_with(
    source: &str,
    line: u32,
    column: u32,
    lines: usize,
    ascii: Option<bool>,
) -> Option<SourceContext> {
    let index = usize::try_from(line.checked_sub(1)?).ok()?;
    let first = index.saturating_sub(lines);
    let mut all = source.lines().skip(first);
    let pre_context = all
        .by_ref()
        .take(index - first)
        .map(trim_head)
        .collect::<Vec<_>>();
    if pre_context.len() < index - first {
        return None;
    }
    let context = all.next()?;
    let ascii = ascii.unwrap_or_else(|| context.is_ascii());
    let context_line = if ascii {
        // Bytes, characters and UTF-16 units coincide: no scan of a long minified line.
        trim_ascii(context, column.saturating_sub(1) as usize)
    } else {
        trim_line(
            context,
            utf16_to_char_index(context, column.saturating_sub(1)),
        )
    };
    let post_context = all.take(lines).map(trim_head).collect();
    Some(SourceContext {
        pre_context,
        context_line,
        post_context,
    })
}

/// A line trimmed from its start: what [`trim_line`] gives for column 0, reading at most
/// 151 characters.
fn trim_head(line: &str) -> String {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.len() <= MAX_LINE_CHARS || line.chars().nth(MAX_LINE_CHARS).is_none() {
        return line.to_owned();
    }
    let mut out: String = line.chars().take(WINDOW_CHARS).collect();
    out.push_str(" {snip}");
    out
}

/// [`trim_line`] for an ASCII line, in constant time.
fn trim_ascii(line: &str, column: usize) -> String {
    let line = line.trim_end_matches(['\r', '\n']);
    let len = line.len();
    if len <= MAX_LINE_CHARS {
        return line.to_owned();
    }
    let (start, end) = window(len, column);
    let mut out = String::with_capacity(end - start + 14);
    if start > 0 {
        out.push_str("{snip} ");
    }
    out.push_str(&line[start..end]);
    if end < len {
        out.push_str(" {snip}");
    }
    out
}

/// The character window `[start, end)` shown of a long line of `len` characters.
fn window(len: usize, column: usize) -> (usize, usize) {
    let column = column.min(len);
    let mut start = column.saturating_sub(WINDOW_LEAD);
    if start < 5 {
        start = 0;
    }
    let mut end = (start + WINDOW_CHARS).min(len);
    if end > len.saturating_sub(5) {
        end = len;
    }
    if end == len {
        start = end.saturating_sub(WINDOW_CHARS);
    }
    (start, end)
}

/// The index of the character containing the given 0-based UTF-16 offset (or the number of
/// characters when the offset is past the end).
fn utf16_to_char_index(line: &str, utf16_offset: u32) -> usize {
    let mut units = 0usize;
    for (i, c) in line.chars().enumerate() {
        units += c.len_utf16();
        if units > utf16_offset as usize {
            return i;
        }
    }
    line.chars().count()
}

/// Sentry's `trim_line`: lines of up to 150 characters are kept; longer ones keep 140
/// characters starting 60 before `column` (snapped to the line's ends when within 5 of them),
/// with ` {snip}` / `{snip} ` where text was cut.
fn trim_line(line: &str, column: usize) -> String {
    let line = line.trim_end_matches(['\r', '\n']);
    let len = line.chars().count();
    if len <= MAX_LINE_CHARS {
        return line.to_owned();
    }
    let (start, end) = window(len, column);
    let text: String = line.chars().skip(start).take(end - start).collect();
    let mut out = String::with_capacity(text.len() + 14);
    if start > 0 {
        out.push_str("{snip} ");
    }
    out.push_str(&text);
    if end < len {
        out.push_str(" {snip}");
    }
    out
}

/// Where each line of a text starts, so context for line N costs the size of the context,
/// not a scan of the file: a 1 MB single-line bundle or a 1 MB original source is scanned
/// once, when the index is built.
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
    /// Whether each line is pure ASCII (then character columns are byte offsets).
    ascii: Vec<bool>,
    /// Long non-ASCII lines: checkpoints to map columns to bytes without a scan from the start.
    long: std::collections::HashMap<usize, LongLine>,
    /// Number of lines as `str::lines` counts them (no phantom line after a final newline).
    count: usize,
}

/// Checkpoints of a long non-ASCII line, about every [`CHECKPOINT_BYTES`] bytes.
#[derive(Debug, Clone)]
struct LongLine {
    chars: usize,
    /// Length in UTF-16 code units.
    utf16: usize,
    /// (byte offset, UTF-16 offset, char offset), all from the start of the line.
    marks: Vec<(usize, usize, usize)>,
}

const CHECKPOINT_BYTES: usize = 4096;

impl LongLine {
    fn new(line: &str) -> LongLine {
        let (mut utf16, mut chars, mut next) = (0, 0, 0);
        let mut marks = Vec::with_capacity(line.len() / CHECKPOINT_BYTES + 1);
        for (byte, c) in line.char_indices() {
            if byte >= next {
                marks.push((byte, utf16, chars));
                next = byte + CHECKPOINT_BYTES;
            }
            utf16 += c.len_utf16();
            chars += 1;
        }
        LongLine {
            chars,
            utf16,
            marks,
        }
    }

    /// The character containing the 0-based UTF-16 offset (or the line length).
    fn char_at_utf16(&self, line: &str, utf16: usize) -> usize {
        let i = self
            .marks
            .partition_point(|m| m.1 <= utf16)
            .saturating_sub(1);
        let Some(&(byte, mut units, mut chars)) = self.marks.get(i) else {
            return 0;
        };
        for c in line[byte..].chars() {
            units += c.len_utf16();
            if units > utf16 {
                return chars;
            }
            chars += 1;
        }
        chars
    }

    /// Byte offset of the character `index` (or the line length).
    fn byte_of_char(&self, line: &str, index: usize) -> usize {
        let i = self
            .marks
            .partition_point(|m| m.2 <= index)
            .saturating_sub(1);
        let Some(&(byte, _, chars)) = self.marks.get(i) else {
            return 0;
        };
        line[byte..]
            .char_indices()
            .nth(index - chars)
            .map_or(line.len(), |(b, _)| byte + b)
    }

    fn trim(&self, line: &str, utf16_column: usize) -> String {
        let (start, end) = window(self.chars, self.char_at_utf16(line, utf16_column));
        let (from, to) = (self.byte_of_char(line, start), self.byte_of_char(line, end));
        let mut out = String::with_capacity(to - from + 14);
        if start > 0 {
            out.push_str("{snip} ");
        }
        out.push_str(&line[from..to]);
        if end < self.chars {
            out.push_str(" {snip}");
        }
        out
    }
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        let mut ascii = Vec::new();
        let mut line_ascii = true;
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                starts.push(i + 1);
                ascii.push(line_ascii);
                line_ascii = true;
            } else if b >= 0x80 {
                line_ascii = false;
            }
        }
        ascii.push(line_ascii);
        let count = if text.is_empty() || text.ends_with('\n') {
            starts.len() - 1
        } else {
            starts.len()
        };
        let mut index = LineIndex {
            starts,
            ascii,
            long: std::collections::HashMap::new(),
            count,
        };
        for i in 0..count {
            let line = index.line(text, i);
            if !index.ascii[i] && line.len() > MAX_LINE_CHARS.max(CHECKPOINT_BYTES) {
                index.long.insert(i, LongLine::new(line));
            }
        }
        index
    }

    /// Line `i` (0-based) without its line ending.
    fn line<'t>(&self, text: &'t str, i: usize) -> &'t str {
        let start = self.starts[i];
        let end = self.starts.get(i + 1).map_or(text.len(), |e| e - 1);
        text.get(start..end.max(start))
            .unwrap_or_default()
            .trim_end_matches('\r')
    }

    /// Number of lines of the text.
    pub fn line_count(&self) -> usize {
        self.count
    }

    /// Length of line `i` (0-based) in UTF-16 code units, the unit of JavaScript columns.
    pub fn line_len_utf16(&self, text: &str, i: usize) -> Option<usize> {
        if i >= self.count {
            return None;
        }
        let line = self.line(text, i);
        Some(if self.ascii[i] {
            line.len()
        } else if let Some(long) = self.long.get(&i) {
            long.utf16
        } else {
            line.encode_utf16().count()
        })
    }

    /// Bytes this index holds (for cache weighing).
    pub fn weight(&self) -> usize {
        self.starts.len() * (std::mem::size_of::<usize>() + 1)
            + self
                .long
                .values()
                .map(|l| l.marks.len() * 24 + 48)
                .sum::<usize>()
    }

    /// [`source_context`] of `text` (the text this index was built from), reading only the
    /// lines it returns and, on long lines, only the part it shows.
    pub fn context(
        &self,
        text: &str,
        line: u32,
        column: u32,
        lines: usize,
    ) -> Option<SourceContext> {
        let index = usize::try_from(line.checked_sub(1)?).ok()?;
        if index >= self.count {
            return None;
        }
        let first = index.saturating_sub(lines);
        let last = (index + lines).min(self.count - 1);
        let utf16 = column.saturating_sub(1) as usize;
        let current = self.line(text, index);
        let context_line = if self.ascii[index] {
            trim_ascii(current, utf16)
        } else if let Some(long) = self.long.get(&index) {
            long.trim(current, utf16)
        } else {
            trim_line(current, utf16_to_char_index(current, utf16 as u32))
        };
        Some(SourceContext {
            pre_context: (first..index)
                .map(|i| trim_head(self.line(text, i)))
                .collect(),
            context_line,
            post_context: (index + 1..=last)
                .map(|i| trim_head(self.line(text, i)))
                .collect(),
        })
    }
}

#[cfg(test)]
mod line_index_tests {
    use super::*;

    #[test]
    fn windowed_context_equals_full_context() {
        let text: String = (1..=40).map(|i| format!("line {i}\r\n")).collect();
        let long: String = (0..2000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let text = format!("{text}{long}\nx\n");
        let index = LineIndex::new(&text);
        for column in [1, 50, 1000, 1995, 3000] {
            assert_eq!(
                index.context(&text, 41, column, 5),
                source_context(&text, 41, column, 5)
            );
            assert_eq!(
                trim_ascii(&long, column as usize - 1),
                trim_line(&long, column as usize - 1)
            );
        }
        assert_eq!(trim_head(&long), trim_line(&long, 0));
        // A long line with characters outside ASCII (and outside the BMP).
        let wide: String = (0..30_000)
            .map(|i| match i % 7 {
                0 => 'é',
                1 => '😀',
                _ => 'x',
            })
            .collect();
        let text = format!("a\n{wide}\nb");
        let index = LineIndex::new(&text);
        for column in [1, 60, 4_000, 20_000, 33_000, 40_000] {
            assert_eq!(
                index.context(&text, 2, column, 5),
                source_context(&text, 2, column, 5),
                "column {column}"
            );
        }
        for line in [1, 2, 5, 6, 20, 39, 40] {
            assert_eq!(
                index.context(&text, line, 3, 5),
                source_context(&text, line, 3, 5),
                "line {line}"
            );
        }
        assert_eq!(index.context(&text, 44, 1, 5), None);
    }
}
