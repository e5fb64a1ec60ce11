//! BurnedInAnnotation (0028,0301): whether the pixels themselves carry identifying text, which
//! no header clean-up removes. Bundling refuses such series unless the user overrides it.

use std::path::Path;

use dicom_dictionary_std::tags;

use super::header::open_header;
use super::DicomError;

/// A file's BurnedInAnnotation, trimmed and upper case (`YES`, `NO`), or `None` when absent.
///
/// # Errors
/// If the file is not DICOM or its header does not parse.
pub fn burned_in_annotation(path: &Path) -> Result<Option<String>, DicomError> {
    let object = open_header(path)?;
    Ok(object
        .element_opt(tags::BURNED_IN_ANNOTATION)
        .ok()
        .flatten()
        .and_then(|e| e.to_str().ok())
        .map(|v| v.trim().trim_end_matches('\0').to_ascii_uppercase()))
}
