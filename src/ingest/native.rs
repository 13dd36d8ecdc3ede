//! Adaptor from [`crate::native::describe`] to the ingest layer: maps its [`DetectError`] into
//! [`IngestError`] with the uploaded file's name. Detection itself lives in `native`; nothing
//! here may parse a debug file.

use crate::native::{DetectError, ObjectFacts};

use super::IngestError;

/// Describes every object in the debug file `name`; see [`crate::native::describe`].
pub fn describe(name: &str, bytes: &[u8]) -> Result<Vec<ObjectFacts>, IngestError> {
    crate::native::describe(bytes).map_err(|e| match e {
        DetectError::UnknownFormat => IngestError::UnknownDebugFormat {
            name: name.to_owned(),
        },
        DetectError::Malformed { format, message } => IngestError::MalformedDebugFile {
            name: name.to_owned(),
            format,
            message,
        },
        DetectError::MissingDebugId => IngestError::MissingDebugId {
            name: name.to_owned(),
        },
    })
}
