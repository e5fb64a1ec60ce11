//! Quantisation of the high-rate streams, and the error bounds it guarantees.
//!
//! zstd on raw floats gains about 1.1×; the same data quantised to the sensor's real precision
//! and delta-coded compresses an order of magnitude better. The steps below are the precision
//! this format promises; the property tests in `tests/quantisation.rs` check the bounds.
//!
//! | what                          | step                | worst-case error            |
//! |-------------------------------|---------------------|-----------------------------|
//! | hand joint positions          | 1 mm                | 0.5 mm per axis             |
//! | hand joint orientations       | 1/511, smallest three | 4/511 rad ≈ 0.45°          |
//! | hand joint radii              | 0.1 mm              | 0.05 mm                     |
//! | head, controller positions    | 0.1 mm              | 0.05 mm per axis            |
//! | head, controller orientations | 1/32767 per component | 4/32767 rad ≈ 0.007°      |
//! | stroke points                 | 0.1 mm              | 0.05 mm per axis            |
//! | stroke pressure               | 1/255               | 1/510                       |
//! | trigger, squeeze, thumbstick  | 1/1000              | 0.0005                      |
//!
//! Values outside the representable range (positions beyond ±2^31 steps, non-finite numbers)
//! are clamped or replaced (NaN becomes 0, a degenerate quaternion the identity) rather than
//! wrapped, so a bad sensor value can never decode as a plausible but wrong one far away.

use glam::{Quat, Vec3, Vec4};

/// Position step for hand joints (tracking noise is around a millimetre).
pub const HAND_POSITION_STEP_MM: f32 = 1.0;
/// Position step for head and controller poses (cheap streams; the head drives "follow the
/// instructor", where sub-millimetre steadiness is visible).
pub const POSE_POSITION_STEP_MM: f32 = 0.1;
/// Position step for stroke points.
pub const STROKE_POSITION_STEP_MM: f32 = 0.1;
/// Step for hand joint radii.
pub const RADIUS_STEP_MM: f32 = 0.1;
/// Quaternion component scale for hand joints: components are stored as `round(c × 1023)`.
pub const HAND_QUAT_SCALE: f32 = 511.0;
/// Quaternion component scale for head and controllers.
pub const POSE_QUAT_SCALE: f32 = 32767.0;
/// Steps per unit for pen pressure.
pub const PRESSURE_SCALE: f32 = 255.0;
/// Steps per unit for trigger, squeeze and thumbstick values.
pub const ANALOG_SCALE: f32 = 1000.0;

/// The worst-case rotation angle (radians) between a unit quaternion and its quantised and
/// dequantised version at component scale `scale`.
///
/// Each of the four components is off by at most `1/(2·scale)`, so the 4-vector is off by at
/// most `1/scale`; renormalising at most doubles that (chord `≤ 2/scale`), and the rotation
/// angle is twice the angle between the 4-vectors, so `≤ 4/scale` to first order. The
/// property tests check this bound, with a small allowance for f32 arithmetic.
#[must_use]
pub fn quat_error_bound_rad(scale: f32) -> f32 {
    4.0 / scale
}

/// Quantises one value to an integer number of steps, clamping to the i32 range; NaN is 0.
#[must_use]
pub fn quantise_scalar(value: f32, step: f32) -> i32 {
    let q = (f64::from(value) / f64::from(step)).round();
    if q.is_nan() {
        0
    } else {
        // Clamped first, so the cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        let r = q.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32;
        r
    }
}

/// Inverse of [`quantise_scalar`].
#[must_use]
pub fn dequantise_scalar(steps: i64, step: f32) -> f32 {
    // i64 → f64 is exact for every value a valid file holds; hostile values just lose
    // precision, they do not panic.
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let r = (steps as f64 * f64::from(step)) as f32;
    r
}

/// Quantises a position to integer steps per axis.
#[must_use]
pub fn quantise_position(position_mm: Vec3, step_mm: f32) -> [i32; 3] {
    [
        quantise_scalar(position_mm.x, step_mm),
        quantise_scalar(position_mm.y, step_mm),
        quantise_scalar(position_mm.z, step_mm),
    ]
}

/// Inverse of [`quantise_position`].
#[must_use]
pub fn dequantise_position(steps: [i64; 3], step_mm: f32) -> Vec3 {
    Vec3::new(
        dequantise_scalar(steps[0], step_mm),
        dequantise_scalar(steps[1], step_mm),
        dequantise_scalar(steps[2], step_mm),
    )
}

/// Quantises a rotation to four integer components at `scale`.
///
/// `q` and `-q` are the same rotation; the sign is chosen so that the result is closest to
/// `previous` (the previous quantised sample of the same joint), which keeps deltas small
/// across the sign flips a runtime may produce. Non-finite or zero quaternions become the
/// identity.
#[must_use]
pub fn quantise_quat(q: Quat, scale: f32, previous: Option<[i32; 4]>) -> [i32; 4] {
    let v = Vec4::from(q);
    let len = v.length();
    let unit = if len.is_finite() && len > 1e-6 {
        v / len
    } else {
        Vec4::new(0.0, 0.0, 0.0, 1.0)
    };
    let sign = match previous {
        Some(p) => {
            #[allow(clippy::cast_precision_loss)]
            let pv = Vec4::new(p[0] as f32, p[1] as f32, p[2] as f32, p[3] as f32);
            if pv.dot(unit) < 0.0 {
                -1.0
            } else {
                1.0
            }
        }
        None => 1.0,
    };
    let u = unit * sign;
    [
        quantise_scalar(u.x, 1.0 / scale),
        quantise_scalar(u.y, 1.0 / scale),
        quantise_scalar(u.z, 1.0 / scale),
        quantise_scalar(u.w, 1.0 / scale),
    ]
}

/// Quantises a rotation as "smallest three": the index of one large component (made
/// positive, as `q` and `-q` are the same rotation) and the other three at `scale`; the
/// fourth is rebuilt from the unit norm. Three columns instead of four is a quarter fewer
/// bits for the same step.
///
/// The index stays that of `previous_index` while that component is still at least 0.45 in
/// magnitude (hysteresis: a runtime's jitter near a tie would otherwise flip the index, and
/// every flip is an expensive delta). A component of at least 0.45 keeps the rebuild of the
/// fourth well conditioned, so the bound of [`quat_error_bound_rad`] still holds.
#[must_use]
pub fn quantise_quat_smallest3(q: Quat, scale: f32, previous_index: Option<u8>) -> (u8, [i32; 3]) {
    let v = Vec4::from(q);
    let len = v.length();
    let unit = if len.is_finite() && len > 1e-6 {
        v / len
    } else {
        Vec4::new(0.0, 0.0, 0.0, 1.0)
    };
    let a = unit.to_array();
    let mut largest = 0usize;
    for i in 1..4 {
        if a[i].abs() > a[largest].abs() {
            largest = i;
        }
    }
    let index = match previous_index {
        Some(p) if usize::from(p) < 4 && a[usize::from(p)].abs() >= 0.45 => usize::from(p),
        _ => largest,
    };
    let sign = if a[index] < 0.0 { -1.0 } else { 1.0 };
    let mut out = [0i32; 3];
    let mut k = 0;
    for (i, c) in a.iter().enumerate() {
        if i != index {
            out[k] = quantise_scalar(c * sign, 1.0 / scale);
            k += 1;
        }
    }
    // `index` < 4 by construction.
    #[allow(clippy::cast_possible_truncation)]
    let index = index as u8;
    (index, out)
}

/// Inverse of [`quantise_quat_smallest3`]. Hostile input (an index over 3, components that
/// do not fit a unit quaternion) still yields a unit quaternion.
#[must_use]
pub fn dequantise_quat_smallest3(index: u8, c: [i64; 3], scale: f32) -> Quat {
    let step = 1.0 / f64::from(scale);
    // Hostile values just lose precision.
    #[allow(clippy::cast_precision_loss)]
    let small = [c[0] as f64 * step, c[1] as f64 * step, c[2] as f64 * step];
    let big = (1.0 - small.iter().map(|x| x * x).sum::<f64>())
        .max(0.0)
        .sqrt();
    let index = usize::from(index.min(3));
    let mut v = [0f64; 4];
    let mut k = 0;
    for (i, slot) in v.iter_mut().enumerate() {
        if i == index {
            *slot = big;
        } else {
            *slot = small[k];
            k += 1;
        }
    }
    let d = glam::DVec4::from_array(v);
    let len = d.length();
    if len.is_finite() && len > 0.0 {
        let u = d / len;
        #[allow(clippy::cast_possible_truncation)]
        Quat::from_xyzw(u.x as f32, u.y as f32, u.z as f32, u.w as f32)
    } else {
        Quat::IDENTITY
    }
}

/// Inverse of [`quantise_quat`]: a unit quaternion (the identity for an all-zero input).
#[must_use]
pub fn dequantise_quat(c: [i64; 4]) -> Quat {
    // Normalisation removes the scale, so it need not be known here.
    #[allow(clippy::cast_precision_loss)]
    let v = glam::DVec4::new(c[0] as f64, c[1] as f64, c[2] as f64, c[3] as f64);
    let len = v.length();
    if len.is_finite() && len > 0.0 {
        let u = v / len;
        #[allow(clippy::cast_possible_truncation)]
        Quat::from_xyzw(u.x as f32, u.y as f32, u.z as f32, u.w as f32)
    } else {
        Quat::IDENTITY
    }
}

/// Quantises a value in `[lo, hi]` (clamped) to steps of `1/scale`.
#[must_use]
pub fn quantise_unit(value: f32, scale: f32, lo: f32, hi: f32) -> i32 {
    let v = if value.is_nan() {
        0.0
    } else {
        value.clamp(lo, hi)
    };
    quantise_scalar(v, 1.0 / scale)
}

/// Inverse of [`quantise_unit`], clamped to `[lo, hi]` so hostile input stays in range.
#[must_use]
pub fn dequantise_unit(steps: i64, scale: f32, lo: f32, hi: f32) -> f32 {
    dequantise_scalar(steps, 1.0 / scale).clamp(lo, hi)
}
