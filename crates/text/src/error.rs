//! The parser's error: where the text went wrong and why.

/// Text the parser could not read.
///
/// `line` and `column` are 1-based and point at the first character the parser could not use
/// (after whitespace and comments); the column counts characters, not bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {reason}")]
pub struct ParseError {
    pub line: u32,
    pub column: u32,
    pub reason: String,
}

impl ParseError {
    /// An error at byte offset `offset` of `input`.
    pub(crate) fn at(input: &str, offset: usize, reason: impl Into<String>) -> Self {
        let offset = offset.min(input.len());
        // The offset always sits on a character boundary (the lexer only stops on ASCII bytes or
        // at the end), but stay total: round down to the nearest boundary.
        let boundary = (0..=offset)
            .rev()
            .find(|i| input.is_char_boundary(*i))
            .unwrap_or(0);
        let before = &input[..boundary];
        let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Self {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "ab\nçd ef";
        let e = ParseError::at(text, 0, "x");
        assert_eq!((e.line, e.column), (1, 1));
        let e = ParseError::at(text, text.find('e').unwrap(), "x");
        assert_eq!((e.line, e.column), (2, 4));
        let e = ParseError::at(text, 999, "x");
        assert_eq!((e.line, e.column), (2, 6));
        assert_eq!(e.to_string(), "line 2, column 6: x");
    }
}
