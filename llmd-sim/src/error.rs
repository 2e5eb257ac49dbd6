//! The crate's error type.

/// Everything that can go wrong building or running a simulation.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The calibration JSON is malformed or lacks a model shape.
    #[error("calibration: {0}")]
    Calibration(String),
    /// A scenario file or value is invalid.
    #[error("scenario: {0}")]
    Scenario(String),
    /// A workload could not be built or a trace line is malformed.
    #[error("workload: {0}")]
    Workload(String),
    /// A routing policy could not be built.
    #[error("policy `{policy}`: {reason}")]
    Policy {
        /// Policy name.
        policy: String,
        /// Why it failed.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl SimError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<String>, source: std::io::Error) -> Self {
        SimError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, SimError>;
