//! Errors of the model layer: an object that does not validate against upstream's schema.

use std::fmt;

/// A schema validation failure: which object, which field (dotted path), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError {
    /// The upstream model name, e.g. `JoinCertificate`.
    pub model: &'static str,
    /// Dotted path of the failing field; empty for the object itself.
    pub field: String,
    /// What was wrong.
    pub problem: String,
}

impl ModelError {
    /// A failure of `field` in `model`.
    pub fn new(model: &'static str, field: impl Into<String>, problem: impl Into<String>) -> ModelError {
        ModelError { model, field: field.into(), problem: problem.into() }
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "invalid {}: {}", self.model, self.problem)
        } else {
            write!(f, "invalid {}: field {}: {}", self.model, self.field, self.problem)
        }
    }
}

impl std::error::Error for ModelError {}
