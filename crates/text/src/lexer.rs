//! Scanning: whitespace and comments, identifiers, literals, single characters.
//!
//! The syntax has no separate token stream: onnx's parser decides some things by looking at raw
//! characters (`=>` must be written without a space; a literal's `-` sign; whether `inf` is a
//! number), so the parser drives this cursor directly, one construct at a time. Every method
//! works on bytes but only ever stops on an ASCII byte or at the end, so every offset it hands
//! out is a character boundary of the input.

use std::borrow::Cow;

use crate::error::ParseError;

pub(crate) struct Lexer<'a> {
    input: &'a str,
    pos: usize,
}

/// A literal as written; numbers are converted by the parser, which knows the type it wants.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal<'a> {
    /// Digits with an optional `-`: `42`, `-7`.
    Int(&'a str),
    /// A number with a `.` or an exponent, or `inf`, `infinity`, `nan` in any case, with an
    /// optional `-`.
    Float(&'a str),
    /// A double-quoted string, escapes resolved (`\x` stands for `x`).
    Str(Cow<'a, str>),
}

/// onnx's `IsSpace`: the C locale's whitespace.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

fn is_identifier_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_identifier_continue(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(input: &'a str) -> Self {
        Self { input, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn set_pos(&mut self, pos: usize) {
        self.pos = pos;
    }

    /// The input from the cursor on.
    fn rest(&self) -> &'a str {
        self.input.get(self.pos..).unwrap_or("")
    }

    fn byte_at(&self, pos: usize) -> Option<u8> {
        self.input.as_bytes().get(pos).copied()
    }

    /// The byte under the cursor, without skipping anything.
    pub(crate) fn peek_raw(&self) -> Option<u8> {
        self.byte_at(self.pos)
    }

    /// Skips whitespace and `#` comments (which run to the end of the line).
    pub(crate) fn skip_trivia(&mut self) {
        loop {
            while self.peek_raw().is_some_and(is_space) {
                self.pos += 1;
            }
            if self.peek_raw() != Some(b'#') {
                return;
            }
            self.pos = self
                .rest()
                .find('\n')
                .map_or(self.input.len(), |i| self.pos + i);
        }
    }

    /// The next significant byte, or `None` at the end of the input.
    pub(crate) fn peek(&mut self) -> Option<u8> {
        self.skip_trivia();
        self.peek_raw()
    }

    /// Consumes `c` if it is the next significant byte.
    pub(crate) fn eat(&mut self, c: u8) -> bool {
        self.skip_trivia();
        self.eat_raw(c)
    }

    /// Consumes `c` if it is the byte under the cursor, skipping nothing.
    pub(crate) fn eat_raw(&mut self, c: u8) -> bool {
        if self.peek_raw() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn expect(&mut self, c: u8) -> Result<(), ParseError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.expected(&format!("`{}`", char::from(c))))
        }
    }

    /// Whether only whitespace and comments are left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// An identifier `[A-Za-z_][A-Za-z0-9_]*`, or `""` when none starts here.
    pub(crate) fn identifier(&mut self) -> &'a str {
        self.skip_trivia();
        let start = self.pos;
        if self.peek_raw().is_some_and(is_identifier_start) {
            self.pos += 1;
            while self.peek_raw().is_some_and(is_identifier_continue) {
                self.pos += 1;
            }
        }
        self.input.get(start..self.pos).unwrap_or("")
    }

    /// The identifier that starts here, without consuming it.
    pub(crate) fn peek_identifier(&mut self) -> &'a str {
        let saved = self.pos;
        let id = self.identifier();
        self.pos = saved;
        id
    }

    /// Whether `inf`, `infinity` or `nan` (any case) starts here, not followed by a digit
    /// (onnx's `NextIsValidFloatString`). Consumes nothing.
    pub(crate) fn at_special_float(&mut self) -> bool {
        self.skip_trivia();
        let run = self.alphabetic_run(self.pos);
        let next = self.byte_at(self.pos + run.len());
        !next.is_some_and(|b| b.is_ascii_digit())
            && ["inf", "infinity", "nan"]
                .iter()
                .any(|w| run.eq_ignore_ascii_case(w))
    }

    fn alphabetic_run(&self, from: usize) -> &'a str {
        let rest = self.input.get(from..).unwrap_or("");
        let len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        &rest[..len]
    }

    /// A literal, or `None` when the next significant character starts none.
    pub(crate) fn literal(&mut self) -> Result<Option<Literal<'a>>, ParseError> {
        self.skip_trivia();
        let start = self.pos;
        match self.peek_raw() {
            Some(b'"') => return self.string(start).map(|s| Some(Literal::Str(s))),
            Some(b'-') => self.pos += 1,
            _ => {}
        }
        match self.peek_raw() {
            Some(b) if b.is_ascii_alphabetic() => {
                if !self.at_special_float() {
                    return Err(self.error_at(
                        start,
                        "invalid number: only `inf`, `infinity` and `nan` are words",
                    ));
                }
                self.pos += self.alphabetic_run(self.pos).len();
                Ok(Some(Literal::Float(
                    self.input.get(start..self.pos).unwrap_or(""),
                )))
            }
            Some(b) if b.is_ascii_digit() => {
                // Digits with at most one `.`, then an optional exponent `(e|E)(+|-)?[0-9]*`.
                let mut is_float = false;
                while let Some(b) = self.peek_raw() {
                    if b == b'.' && !is_float {
                        is_float = true;
                    } else if !b.is_ascii_digit() {
                        break;
                    }
                    self.pos += 1;
                }
                if matches!(self.peek_raw(), Some(b'e' | b'E')) {
                    is_float = true;
                    self.pos += 1;
                    if matches!(self.peek_raw(), Some(b'+' | b'-')) {
                        self.pos += 1;
                    }
                    while self.peek_raw().is_some_and(|b| b.is_ascii_digit()) {
                        self.pos += 1;
                    }
                }
                let text = self.input.get(start..self.pos).unwrap_or("");
                Ok(Some(if is_float {
                    Literal::Float(text)
                } else {
                    Literal::Int(text)
                }))
            }
            _ if self.pos > start => Err(self.error_at(start, "a number must follow `-`")),
            _ => Ok(None),
        }
    }

    /// A string literal whose opening quote is at `start`.
    fn string(&mut self, start: usize) -> Result<Cow<'a, str>, ParseError> {
        self.pos = start + 1;
        let mut has_escape = false;
        loop {
            match self.peek_raw() {
                None => return Err(self.error_at(start, "unterminated string")),
                Some(b'"') => break,
                Some(b'\\') => {
                    has_escape = true;
                    self.pos += 1;
                    if self.peek_raw().is_none() {
                        return Err(self.error_at(start, "unterminated string"));
                    }
                    // Step over the whole escaped character: it may be more than one byte.
                    self.pos += self.rest().chars().next().map_or(1, char::len_utf8);
                }
                Some(_) => {
                    self.pos += self.rest().chars().next().map_or(1, char::len_utf8);
                }
            }
        }
        let body = self.input.get(start + 1..self.pos).unwrap_or("");
        self.pos += 1;
        if !has_escape {
            return Ok(Cow::Borrowed(body));
        }
        let mut value = String::with_capacity(body.len());
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            value.push(if c == '\\' {
                chars.next().unwrap_or('\\')
            } else {
                c
            });
        }
        Ok(Cow::Owned(value))
    }

    pub(crate) fn error_at(&self, pos: usize, reason: impl Into<String>) -> ParseError {
        ParseError::at(self.input, pos, reason)
    }

    /// "expected X, found Y" at the next significant character.
    pub(crate) fn expected(&mut self, what: &str) -> ParseError {
        self.skip_trivia();
        let found = self.describe_next();
        self.error_at(self.pos, format!("expected {what}, found {found}"))
    }

    /// A short description of what is under the cursor, for error messages.
    pub(crate) fn describe_next(&self) -> String {
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return "the end of the input".to_owned();
        };
        let word: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace() && !",;:()[]{}<>=\"#".contains(*c))
            .take(24)
            .collect();
        if word.is_empty() {
            format!("`{c}`")
        } else {
            format!("`{word}`")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trivia_is_whitespace_and_comments() {
        let mut lx = Lexer::new("  # a comment\n\t# another\n  x");
        assert_eq!(lx.peek(), Some(b'x'));
        let mut lx = Lexer::new("# only a comment");
        assert!(lx.at_end());
    }

    #[test]
    fn literals() {
        fn lit(s: &str) -> Option<Literal<'_>> {
            Lexer::new(s).literal().unwrap()
        }
        assert_eq!(lit("42,"), Some(Literal::Int("42")));
        assert_eq!(lit("-7"), Some(Literal::Int("-7")));
        assert_eq!(lit("1.5.3"), Some(Literal::Float("1.5")));
        assert_eq!(lit("1e-05"), Some(Literal::Float("1e-05")));
        assert_eq!(lit("-inf"), Some(Literal::Float("-inf")));
        assert_eq!(lit("NaN"), Some(Literal::Float("NaN")));
        assert_eq!(
            lit(r#""a\"b\\c""#),
            Some(Literal::Str(Cow::Borrowed("a\"b\\c")))
        );
        assert_eq!(lit(r#""é\ü""#), Some(Literal::Str(Cow::Borrowed("éü"))));
        assert_eq!(lit("{"), None);
        assert!(Lexer::new("-x").literal().is_err());
        assert!(Lexer::new("infx").literal().is_err());
        assert!(Lexer::new(r#""abc"#).literal().is_err());
        assert!(Lexer::new(r#""abc\"#).literal().is_err());
    }

    #[test]
    fn special_floats_need_a_clean_end() {
        assert!(Lexer::new("inf").at_special_float());
        assert!(Lexer::new("Infinity,").at_special_float());
        assert!(!Lexer::new("inf5").at_special_float());
        assert!(!Lexer::new("info").at_special_float());
    }
}
