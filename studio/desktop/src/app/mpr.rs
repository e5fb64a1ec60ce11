//! Multiplanar reconstruction: the axial, coronal and sagittal slices through the crosshair that
//! instructors show beside the 3D model, sampled from the CT with a window/level.

use glam::DVec3;
use twinray_io::CtVolume;
use twinray_lessons::state::WindowLevel;

/// Longest side of a slice image, in pixels (bounds memory for huge volumes).
const MAX_SIDE_PX: usize = 512;

/// Which slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MprPlane {
    /// Constant z (head–feet position); viewed from the feet, patient left on the right.
    Axial,
    /// Constant y (front–back position); viewed from the front, head up.
    Coronal,
    /// Constant x (left–right position); anterior on the left, head up.
    Sagittal,
}

impl MprPlane {
    /// All three, in the order the panel shows them.
    pub const ALL: [Self; 3] = [Self::Axial, Self::Coronal, Self::Sagittal];

    /// Name shown over the view.
    pub fn name(self) -> &'static str {
        match self {
            Self::Axial => "axial",
            Self::Coronal => "coronal",
            Self::Sagittal => "sagittal",
        }
    }

    /// Patient axes (LPS) of image right and image up, and the slice normal's axis index.
    fn axes(self) -> (DVec3, DVec3, usize) {
        match self {
            // Radiological convention: the patient's left (+x) on the viewer's right.
            Self::Axial => (DVec3::X, DVec3::NEG_Y, 2),
            Self::Coronal => (DVec3::X, DVec3::Z, 1),
            Self::Sagittal => (DVec3::Y, DVec3::Z, 0),
        }
    }
}

/// A grey slice and how its pixels map to the patient.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceImage {
    /// Which slice.
    pub plane: MprPlane,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Grey values, row-major, top row first.
    pub grey: Vec<u8>,
    /// Patient position of the top-left corner of the image (not a pixel centre).
    origin_mm: DVec3,
    /// Patient step per pixel to the right and per pixel down.
    right_mm: DVec3,
    down_mm: DVec3,
}

impl SliceImage {
    /// Patient position under a point of the image given in pixels (x right, y down).
    pub fn patient_at(&self, x_px: f64, y_px: f64) -> DVec3 {
        self.origin_mm + self.right_mm * x_px + self.down_mm * y_px
    }

    /// Where a patient position falls in the image, in pixels (the crosshair lines).
    pub fn pixel_of(&self, p_mm: DVec3) -> [f64; 2] {
        let d = p_mm - self.origin_mm;
        [
            d.dot(self.right_mm) / self.right_mm.length_squared(),
            d.dot(self.down_mm) / self.down_mm.length_squared(),
        ]
    }
}

/// Samples one slice through `crosshair_mm` (nearest voxel; black outside the volume).
pub fn slice(ct: &CtVolume, plane: MprPlane, crosshair_mm: DVec3, wl: WindowLevel) -> SliceImage {
    let g = ct.geometry();
    let (right, up, normal_axis) = plane.axes();
    let corners = g.corners_mm();
    let span = |axis: DVec3| {
        corners.iter().fold((f64::MAX, f64::MIN), |(lo, hi), c| {
            let t = c.dot(axis);
            (lo.min(t), hi.max(t))
        })
    };
    let (r0, r1) = span(right);
    let (u0, u1) = span(up);
    let spacing = g.spacing_mm();
    let mut pixel_mm = spacing.iter().copied().fold(f64::MAX, f64::min).max(1e-3);
    let longest = (r1 - r0).max(u1 - u0);
    pixel_mm = pixel_mm.max(longest / MAX_SIDE_PX as f64);
    let width = (((r1 - r0) / pixel_mm).ceil() as usize).clamp(1, MAX_SIDE_PX);
    let height = (((u1 - u0) / pixel_mm).ceil() as usize).clamp(1, MAX_SIDE_PX);
    let mut normal = DVec3::ZERO;
    normal[normal_axis] = 1.0;
    let depth = crosshair_mm.dot(normal);
    let origin_mm = right * r0 + up * u1 + normal * depth;
    let right_mm = right * pixel_mm;
    let down_mm = -up * pixel_mm;
    let voxel_from_patient = g.voxel_from_patient();
    let lo = wl.centre_hu - wl.width_hu * 0.5;
    let scale = 255.0 / wl.width_hu.max(1.0);
    let mut grey = vec![0u8; width * height];
    for (row, line) in grey.chunks_exact_mut(width).enumerate() {
        for (col, out) in line.iter_mut().enumerate() {
            let p = origin_mm + right_mm * (col as f64 + 0.5) + down_mm * (row as f64 + 0.5);
            let ijk = voxel_from_patient.transform_point3(p).round();
            if ijk.min_element() < 0.0 {
                continue;
            }
            let [i, j, k] = [ijk.x as usize, ijk.y as usize, ijk.z as usize];
            if let Some(&hu) = ct.get(i, j, k) {
                *out = ((hu - lo) * scale).clamp(0.0, 255.0) as u8;
            }
        }
    }
    SliceImage {
        plane,
        width,
        height,
        grey,
        origin_mm,
        right_mm,
        down_mm,
    }
}
