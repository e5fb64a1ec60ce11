//! Finding and loading the ONNX Runtime shared library.
//!
//! `ort` is built with `load-dynamic`: nothing is linked or downloaded at build time, and the
//! library (`libonnxruntime.so` from the `onnxruntime` wheel, installed by `scripts/setup.sh`)
//! is opened when the first model is loaded. A process can hold one ONNX Runtime only: the first
//! successful load wins and later calls reuse it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

use crate::InferenceError;

/// Environment variable naming the library; checked before `ORT_DYLIB_PATH`.
pub const ORT_LIB_ENV: &str = "TWINRAY_ORT_LIB";
/// The ONNX Runtime version `scripts/setup.sh` installs.
pub const ORT_VERSION: &str = "1.32.0";

/// Where `scripts/setup.sh` installs the library:
/// `${XDG_CACHE_HOME:-$HOME/.cache}/twinray-ort/libonnxruntime.so.1.32.0`.
pub fn installed_library_path() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(
        cache
            .join("twinray-ort")
            .join(format!("libonnxruntime.so.{ORT_VERSION}")),
    )
}

/// Picks the library file: `explicit` (e.g. `--ort-lib`), then `TWINRAY_ORT_LIB`, then
/// `ORT_DYLIB_PATH`, then [`installed_library_path`]. The first one given is used; if it does
/// not exist, that is an error naming it (a typo in a variable must not silently fall through).
pub fn find_library(explicit: Option<&Path>) -> Result<PathBuf, InferenceError> {
    if let Some(path) = explicit {
        return existing(path.to_path_buf(), "--ort-lib");
    }
    for var in [ORT_LIB_ENV, "ORT_DYLIB_PATH"] {
        if let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            return existing(PathBuf::from(value), var);
        }
    }
    match installed_library_path() {
        Some(path) if path.is_file() => Ok(path),
        Some(path) => Err(InferenceError::RuntimeMissing {
            tried: format!(
                "{ORT_LIB_ENV} and ORT_DYLIB_PATH are unset and {} does not exist",
                path.display()
            ),
        }),
        None => Err(InferenceError::RuntimeMissing {
            tried: format!("{ORT_LIB_ENV}, ORT_DYLIB_PATH and HOME are unset"),
        }),
    }
}

fn existing(path: PathBuf, source: &str) -> Result<PathBuf, InferenceError> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(InferenceError::RuntimeMissing {
            tried: format!("{} (from {source}) does not exist", path.display()),
        })
    }
}

/// A loaded ONNX Runtime, ready to create sessions.
#[derive(Debug, Clone)]
pub struct Runtime {
    environment: Environment,
    library: PathBuf,
}

static LOADED: OnceLock<Runtime> = OnceLock::new();
static LOADING: Mutex<()> = Mutex::new(());

impl Runtime {
    /// Finds (see [`find_library`]) and loads ONNX Runtime, or returns the one this process
    /// already loaded.
    pub fn load(explicit: Option<&Path>) -> Result<Self, InferenceError> {
        if let Some(rt) = LOADED.get() {
            return Ok(rt.clone());
        }
        let path = find_library(explicit)?;
        // One loader at a time, so that two threads do not race to open two libraries.
        let _guard = LOADING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(rt) = LOADED.get() {
            return Ok(rt.clone());
        }
        let load_error = |reason: String| InferenceError::RuntimeLoad {
            path: path.clone(),
            reason,
        };
        // Opening a file that is not a shared library, one without ONNX Runtime's entry point or
        // an older version all come back as errors here (ort checks the version string).
        let builder = ort::init_from(&path).map_err(|e| load_error(e.to_string()))?;
        let environment = builder
            .with_name("twinray")
            .with_telemetry(false)
            .build()
            .map_err(|e| load_error(e.to_string()))?;
        let rt = Self {
            environment,
            library: path,
        };
        Ok(LOADED.get_or_init(|| rt).clone())
    }

    /// The library file this runtime was loaded from.
    pub fn library(&self) -> &Path {
        &self.library
    }

    pub(crate) fn environment(&self) -> &Environment {
        &self.environment
    }
}
