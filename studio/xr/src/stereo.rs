//! Per-eye cameras from XR views, in the renderer's world (the patient frame).
//!
//! The runtime gives each eye's pose in stage space; the twin's placement maps the stage to the
//! patient frame the ray-marcher works in. A scaled twin is the same as a camera that moved
//! closer by the scale: positions divide by it, directions and the frustum angles do not change.

use glam::{DMat4, DQuat, DVec3, DVec4};
use twinray_renderer::{Camera, RgbaImage};

use crate::input::TwinPlacement;
use crate::source::EyeView;

/// The camera for one eye, in patient coordinates (LPS mm).
#[must_use]
pub fn eye_camera(view: &EyeView, twin: &TwinPlacement) -> Camera {
    let eye_patient = twin.patient_from_stage(view.pose.position_mm).as_dvec3();
    let patient_from_stage_rotation = twin.stage_from_patient.orientation.inverse().as_dquat();
    let rotation: DQuat = patient_from_stage_rotation * view.pose.orientation.as_dquat();
    let (right, up, back) = (
        rotation * DVec3::X,
        rotation * DVec3::Y,
        rotation * DVec3::Z,
    );
    Camera {
        world_from_view: DMat4::from_cols(
            right.extend(0.0),
            up.extend(0.0),
            back.extend(0.0),
            DVec4::new(eye_patient.x, eye_patient.y, eye_patient.z, 1.0),
        ),
        frustum: view.fov.frustum(),
    }
}

/// Both eyes' cameras.
#[must_use]
pub fn eye_cameras(views: &[EyeView; 2], twin: &TwinPlacement) -> [Camera; 2] {
    [eye_camera(&views[0], twin), eye_camera(&views[1], twin)]
}

/// Horizontal disparity of a patient point between the two eyes' images of `size` pixels: its
/// x in the left image minus its x in the right (positive for points nearer than infinity).
#[must_use]
pub fn disparity_px(cameras: &[Camera; 2], point_patient: DVec3, size: [u32; 2]) -> Option<f64> {
    let l = cameras[0].project(point_patient, size)?;
    let r = cameras[1].project(point_patient, size)?;
    Some(l[0] - r[0])
}

/// Nearest-neighbour resize (for eye images rendered below the recommended size).
#[must_use]
pub fn resized(image: &RgbaImage, size: [u32; 2]) -> RgbaImage {
    if [image.width, image.height] == size {
        return image.clone();
    }
    let mut pixels = Vec::with_capacity(size[0] as usize * size[1] as usize * 4);
    for y in 0..size[1] {
        let sy = (u64::from(y) * u64::from(image.height) / u64::from(size[1])) as u32;
        for x in 0..size[0] {
            let sx = (u64::from(x) * u64::from(image.width) / u64::from(size[0])) as u32;
            pixels.extend_from_slice(&image.pixel(sx, sy));
        }
    }
    RgbaImage {
        width: size[0],
        height: size[1],
        pixels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Fov, SimulatedXr, QUEST_LEFT_FOV};
    use glam::{Quat, Vec3};
    use twinray_lessons::event::Pose;

    fn setup() -> ([Camera; 2], SimulatedXr, TwinPlacement) {
        let target = Vec3::new(0.0, 1000.0, -500.0);
        let xr = SimulatedXr::new(target, [160, 168], 1);
        // Patient frame turned 90° about stage x (LPS superior = stage up) and centred on the
        // target, as a twin lying on a table would be placed.
        let twin = TwinPlacement::rigid(Pose {
            position_mm: target,
            orientation: Quat::from_rotation_x(-std::f32::consts::FRAC_PI_2),
        });
        let frame = xr.frame_at(0.0);
        (eye_cameras(&frame.views, &twin), xr, twin)
    }

    #[test]
    fn a_near_point_sits_further_right_in_the_left_eye_and_far_points_less() {
        let (cams, xr, twin) = setup();
        let frame = xr.frame_at(0.0);
        let forward = frame.head.orientation * Vec3::NEG_Z;
        let at = |d: f32| {
            twin.patient_from_stage(frame.head.position_mm + forward * d)
                .as_dvec3()
        };
        let size = [160, 168];
        let near = disparity_px(&cams, at(300.0), size).expect("visible");
        let far = disparity_px(&cams, at(3000.0), size).expect("visible");
        // With asymmetric frustums even a point at infinity lands at different x in the two
        // images (each eye's axis is off-centre, to the outside); disparity is measured from it.
        let infinity = disparity_px(&cams, at(1e8), size).expect("visible");
        assert!(
            near > 0.0,
            "near point must be further right in the left eye: {near}"
        );
        assert!(near - infinity > 10.0, "near {near} infinity {infinity}");
        assert!(
            far > infinity && far - infinity < (near - infinity) / 5.0,
            "near {near} far {far}"
        );
    }

    #[test]
    fn asymmetric_frustum_edges_land_on_the_image_edges() {
        let (cams, xr, twin) = setup();
        let frame = xr.frame_at(0.0);
        let size = [160, 168];
        for (eye, cam) in frame.views.iter().zip(&cams) {
            let Fov {
                angle_left,
                angle_right,
                angle_up,
                angle_down,
            } = eye.fov;
            // A point 1 m away along the direction of each frustum edge, in the eye's frame.
            let edge = |yaw: f32, pitch: f32| {
                let dir = Vec3::new(yaw.tan(), pitch.tan(), -1.0);
                let stage = eye.pose.position_mm + eye.pose.orientation * (dir * 1000.0);
                cam.project(twin.patient_from_stage(stage).as_dvec3(), size)
                    .expect("in front")
            };
            let left = edge(angle_left, 0.0);
            let right = edge(angle_right, 0.0);
            let top = edge(0.0, angle_up);
            let bottom = edge(0.0, angle_down);
            assert!(left[0].abs() < 1e-2 && (right[0] - 160.0).abs() < 1e-2);
            assert!(top[1].abs() < 1e-2 && (bottom[1] - 168.0).abs() < 1e-2);
            // The straight-ahead point is off-centre by the asymmetry.
            let ahead = edge(0.0, 0.0);
            let expected_x = 160.0 * f64::from(-angle_left.tan())
                / f64::from(angle_right.tan() - angle_left.tan());
            assert!((ahead[0] - expected_x).abs() < 1e-2);
        }
        assert_ne!(frame.views[0].fov, QUEST_LEFT_FOV.mirrored());
    }

    #[test]
    fn scaling_the_twin_moves_the_eye_not_the_frustum() {
        let (_, xr, twin) = setup();
        let frame = xr.frame_at(0.0);
        let big = TwinPlacement { scale: 2.0, ..twin };
        let a = eye_camera(&frame.views[0], &twin);
        let b = eye_camera(&frame.views[0], &big);
        assert_eq!(a.frustum, b.frustum);
        assert!((b.eye().length() * 2.0 - a.eye().length()).abs() < 1e-3);
    }
}
