//! The one error type a script author sees: where in the script, and what is wrong.

/// A script that cannot be compiled; `line` and `column` are 1-based and point at the token
/// the problem was found at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct CompileError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl CompileError {
    pub(crate) fn at(line: u32, column: u32, message: impl Into<String>) -> Self {
        CompileError {
            line,
            column,
            message: message.into(),
        }
    }
}
