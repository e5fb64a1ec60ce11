//! Which Vulkan device the user asked for: a front end's flag, else `TWINRAY_DEVICE`, else the
//! best available. The renderer takes the answer as an argument and reads no environment.

use twinray_renderer::DevicePreference;

use crate::SceneError;

/// The environment variable that picks a device kind (`cpu`, `gpu` or `auto`) when no flag does.
pub const DEVICE_ENV: &str = "TWINRAY_DEVICE";

/// `flag` when given, else the kind `TWINRAY_DEVICE` names, else [`DevicePreference::Auto`].
///
/// # Errors
/// When `TWINRAY_DEVICE` holds something other than cpu, gpu or auto.
pub fn device_preference(flag: Option<DevicePreference>) -> Result<DevicePreference, SceneError> {
    if let Some(preference) = flag {
        return Ok(preference);
    }
    match std::env::var(DEVICE_ENV) {
        Ok(value) => DevicePreference::parse(&value).ok_or(SceneError::BadDeviceEnv { value }),
        Err(_) => Ok(DevicePreference::Auto),
    }
}
