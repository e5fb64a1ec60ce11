//! Cameras as OpenXR gives them per eye: a pose and four frustum tangents.

use glam::{DMat4, DVec3, DVec4};

/// Asymmetric frustum as the tangents of its four half-angles (OpenXR's `XrFovf`, after `tan`).
/// `tan_left` and `tan_down` are negative for a frustum that contains the view axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frustum {
    /// tan of the angle to the left edge (negative to the left of the axis).
    pub tan_left: f64,
    /// tan of the angle to the right edge.
    pub tan_right: f64,
    /// tan of the angle to the top edge.
    pub tan_up: f64,
    /// tan of the angle to the bottom edge (negative below the axis).
    pub tan_down: f64,
}

impl Frustum {
    /// A symmetric frustum with a vertical field of view and a width / height aspect ratio.
    pub fn symmetric(fov_y_deg: f64, aspect: f64) -> Self {
        let up = (fov_y_deg.to_radians() * 0.5).tan();
        Self {
            tan_left: -up * aspect,
            tan_right: up * aspect,
            tan_up: up,
            tan_down: -up,
        }
    }

    /// From OpenXR's angles in radians (`angleLeft`, `angleRight`, `angleUp`, `angleDown`).
    pub fn from_angles(left: f64, right: f64, up: f64, down: f64) -> Self {
        Self {
            tan_left: left.tan(),
            tan_right: right.tan(),
            tan_up: up.tan(),
            tan_down: down.tan(),
        }
    }
}

/// A pinhole camera: where it is (`world_from_view`) and what it sees (`frustum`).
///
/// The view frame follows OpenXR: `+x` right, `+y` up, looking down `-z`. World is the patient
/// frame in millimetres (LPS).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Camera {
    /// Pose of the camera in the world; its columns are right, up, back and the eye position.
    pub world_from_view: DMat4,
    /// The four frustum tangents.
    pub frustum: Frustum,
}

impl Camera {
    /// A camera at `eye` looking at `target`, with `up` as close to the image's up as possible.
    pub fn look_at(eye: DVec3, target: DVec3, up: DVec3, frustum: Frustum) -> Self {
        let forward = (target - eye).normalize_or_zero();
        let mut right = forward.cross(up).normalize_or_zero();
        if right == DVec3::ZERO {
            // Looking along `up`: any perpendicular will do.
            right = forward.any_orthonormal_vector();
        }
        let true_up = right.cross(forward);
        let world_from_view = DMat4::from_cols(
            right.extend(0.0),
            true_up.extend(0.0),
            (-forward).extend(0.0),
            DVec4::new(eye.x, eye.y, eye.z, 1.0),
        );
        Self {
            world_from_view,
            frustum,
        }
    }

    /// Orbits `target` at `distance_mm`. Azimuth 0 and elevation 0 is the anterior view that
    /// radiologists use: the camera in front of the patient, head up, so the patient's left is
    /// on the viewer's right. Positive azimuth moves the camera towards the patient's left,
    /// positive elevation towards the head.
    pub fn orbit(
        target: DVec3,
        distance_mm: f64,
        azimuth_deg: f64,
        elevation_deg: f64,
        frustum: Frustum,
    ) -> Self {
        let (az, el) = (azimuth_deg.to_radians(), elevation_deg.to_radians());
        // LPS: anterior is -y, superior is +z.
        let dir = DVec3::new(az.sin() * el.cos(), -az.cos() * el.cos(), el.sin());
        let up = DVec3::new(-az.sin() * el.sin(), az.cos() * el.sin(), el.cos());
        Self::look_at(target + dir * distance_mm, target, up, frustum)
    }

    /// Eye position in the world.
    pub fn eye(&self) -> DVec3 {
        self.world_from_view.w_axis.truncate()
    }

    /// The inverse of the pose.
    pub fn view_from_world(&self) -> DMat4 {
        self.world_from_view.inverse()
    }

    /// Where a world point lands in an image of `size` pixels (x right, y down, pixel centres at
    /// `+0.5`), or `None` when it is behind the camera.
    pub fn project(&self, point_world: DVec3, size: [u32; 2]) -> Option<[f64; 2]> {
        let p = self.view_from_world().transform_point3(point_world);
        if p.z >= 0.0 {
            return None;
        }
        let (tx, ty) = (p.x / -p.z, p.y / -p.z);
        let f = &self.frustum;
        let u = (tx - f.tan_left) / (f.tan_right - f.tan_left);
        let v = (f.tan_up - ty) / (f.tan_up - f.tan_down);
        Some([u * f64::from(size[0]), v * f64::from(size[1])])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anterior_view_puts_patient_left_on_viewer_right() {
        let cam = Camera::orbit(DVec3::ZERO, 500.0, 0.0, 0.0, Frustum::symmetric(30.0, 1.0));
        assert!((cam.eye() - DVec3::new(0.0, -500.0, 0.0)).length() < 1e-9);
        let size = [100, 100];
        let left = cam
            .project(DVec3::new(50.0, 0.0, 0.0), size)
            .expect("in front");
        let head = cam
            .project(DVec3::new(0.0, 0.0, 50.0), size)
            .expect("in front");
        assert!(left[0] > 50.0, "patient left (+x) must be right of centre");
        assert!(head[1] < 50.0, "superior (+z) must be above centre");
    }

    #[test]
    fn azimuth_and_elevation_move_the_eye_as_documented() {
        let f = Frustum::symmetric(30.0, 1.0);
        let cam = Camera::orbit(DVec3::ZERO, 100.0, 90.0, 0.0, f);
        assert!((cam.eye() - DVec3::new(100.0, 0.0, 0.0)).length() < 1e-9);
        let cam = Camera::orbit(DVec3::ZERO, 100.0, 0.0, 90.0, f);
        assert!((cam.eye() - DVec3::new(0.0, 0.0, 100.0)).length() < 1e-9);
        // Orbiting up over the head keeps rotating image-up from head towards posterior, so
        // looking down from the head the face (anterior) is at the bottom, the left still right.
        let front = cam
            .project(DVec3::new(0.0, -10.0, 0.0), [100, 100])
            .expect("in front");
        assert!(front[1] > 50.0);
        let left = cam
            .project(DVec3::new(10.0, 0.0, 0.0), [100, 100])
            .expect("in front");
        assert!(left[0] > 50.0);
    }

    #[test]
    fn asymmetric_frustum_shifts_the_axis() {
        let f = Frustum {
            tan_left: -0.5,
            tan_right: 1.5,
            tan_up: 1.0,
            tan_down: -1.0,
        };
        let cam = Camera::look_at(DVec3::ZERO, DVec3::new(0.0, 0.0, -1.0), DVec3::Y, f);
        let centre = cam
            .project(DVec3::new(0.0, 0.0, -10.0), [200, 100])
            .expect("in front");
        assert!((centre[0] - 50.0).abs() < 1e-9 && (centre[1] - 50.0).abs() < 1e-9);
    }
}
