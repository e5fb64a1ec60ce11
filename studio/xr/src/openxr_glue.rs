//! The OpenXR runtime as an [`XrSource`]: a thin translation layer, no decisions.
//!
//! Instance with `XR_KHR_vulkan_enable2` (and `XR_EXT_hand_tracking` when offered), a
//! head-mounted system, a session whose Vulkan instance and device the runtime creates
//! (`xrCreateVulkanInstanceKHR` / `xrCreateVulkanDeviceKHR`, wrapped by the renderer's
//! [`GpuContext::with_external_vulkan`]), the STAGE reference space (LOCAL when the runtime has
//! no stage), one action set (trigger, squeeze, thumbstick, menu, tool and board buttons, grip
//! and aim poses per hand), one swapchain with two array layers, and the frame loop:
//! `next_frame` waits, begins, syncs actions and locates everything; `submit` copies the eye
//! images into the swapchain and ends the frame. OpenXR's metres become millimetres here and
//! nowhere else.
//!
//! The session's life cycle follows the specification: READY begins it, STOPPING ends it,
//! EXITING (or LOSS_PENDING) closes the source; every state change is printed on stderr.
//! [`XrSource::request_exit`] (a frame limit, or a stop flag set by a signal handler, see
//! [`OpenXrSource::stop_when`]) calls `xrRequestExitSession` and then ends frames without layers
//! until the runtime says STOPPING, so the runtime, not a killed process, closes the session.
//! Optional features the runtime lacks (hand tracking on a system without tracked hands) are
//! reported once and left out.
//!
//! Tested against a real runtime: Monado built headless (null compositor, simulated headset;
//! `../shared/xr-runtime/`) with the OpenXR and Vulkan validation layers, by
//! `studio/cli/tests/vr_runtime.rs`. Without a loader or runtime [`OpenXrSource::start`] fails
//! with [`XrError::NoRuntime`].

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use glam::{Quat, Vec2, Vec3};
use openxr as xr;
use twinray_lessons::event::{ControllerState, HandJoint, HandJoints, Pose, HAND_JOINT_COUNT};
use twinray_renderer::{ExternalFormat, GpuContext, RgbaImage, VulkanCreator};

use crate::source::{EyeView, Fov, XrFrame, XrSource, BOARD_BUTTON, MENU_BUTTON, TOOL_BUTTON};
use crate::XrError;

const VIEW_TYPE: xr::ViewConfigurationType = xr::ViewConfigurationType::PRIMARY_STEREO;
/// How long to wait for EXITING after ending a session the studio asked to exit.
const EXITING_TIMEOUT: Duration = Duration::from_secs(5);
const HANDS: [&str; 2] = ["/user/hand/left", "/user/hand/right"];

fn runtime_error(context: &'static str) -> impl FnOnce(xr::sys::Result) -> XrError {
    move |result| XrError::Runtime {
        context,
        result: result.to_string(),
    }
}

/// Per-hand input actions.
struct Actions {
    set: xr::ActionSet,
    trigger: xr::Action<f32>,
    squeeze: xr::Action<f32>,
    thumbstick: xr::Action<xr::Vector2f>,
    menu: xr::Action<bool>,
    tool: xr::Action<bool>,
    board: xr::Action<bool>,
    grip: xr::Action<xr::Posef>,
    aim: xr::Action<xr::Posef>,
    hand_paths: [xr::Path; 2],
}

/// A connected headset. See the module docs.
pub struct OpenXrSource {
    instance: xr::Instance,
    session: xr::Session<xr::Vulkan>,
    frame_waiter: xr::FrameWaiter,
    frame_stream: xr::FrameStream<xr::Vulkan>,
    stage: xr::Space,
    view_space: xr::Space,
    actions: Actions,
    grip_spaces: [xr::Space; 2],
    aim_spaces: [xr::Space; 2],
    hand_trackers: Option<[xr::HandTracker; 2]>,
    swapchain: xr::Swapchain<xr::Vulkan>,
    swapchain_images: Vec<u64>,
    format: ExternalFormat,
    eye_size: [u32; 2],
    blend_mode: xr::EnvironmentBlendMode,
    /// Between a successful `xrBeginSession` and `xrEndSession`.
    running: bool,
    /// `xrRequestExitSession` was called (or would have been: the session was not running).
    exit_requested: bool,
    /// When `xrEndSession` returned after an exit request: EXITING should follow.
    ended_after_exit: Option<Instant>,
    /// Set from outside (a signal handler) to end the session cleanly.
    stop: Option<Arc<AtomicBool>>,
    frame_state: Option<xr::FrameState>,
    raw_views: Vec<xr::View>,
    ctx: Arc<GpuContext>,
}

impl std::fmt::Debug for OpenXrSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenXrSource")
            .field("eye_size", &self.eye_size)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// Creates the Vulkan instance and device through the runtime, for the renderer.
struct RuntimeVulkan<'a> {
    instance: &'a xr::Instance,
    system: xr::SystemId,
}

impl VulkanCreator for RuntimeVulkan<'_> {
    unsafe fn create_instance(
        &mut self,
        get_instance_proc_addr: *const c_void,
        create_info: *const c_void,
    ) -> Result<u64, String> {
        // SAFETY: the renderer passes the loader's vkGetInstanceProcAddr and a valid create info.
        unsafe {
            let gipa: xr::sys::platform::VkGetInstanceProcAddr =
                std::mem::transmute(get_instance_proc_addr);
            match self
                .instance
                .create_vulkan_instance(self.system, gipa, create_info.cast())
            {
                Ok(Ok(raw)) => Ok(raw as u64),
                Ok(Err(vk)) => Err(format!("vkCreateInstance returned {vk}")),
                Err(xr) => Err(format!("xrCreateVulkanInstanceKHR returned {xr}")),
            }
        }
    }

    unsafe fn physical_device(&mut self, instance: u64) -> Result<u64, String> {
        // SAFETY: `instance` was created through this runtime.
        unsafe {
            self.instance
                .vulkan_graphics_device(self.system, instance as _)
        }
        .map(|p| p as u64)
        .map_err(|e| format!("xrGetVulkanGraphicsDevice2KHR returned {e}"))
    }

    unsafe fn create_device(
        &mut self,
        get_instance_proc_addr: *const c_void,
        physical_device: u64,
        create_info: *const c_void,
    ) -> Result<u64, String> {
        // SAFETY: as for `create_instance`.
        unsafe {
            let gipa: xr::sys::platform::VkGetInstanceProcAddr =
                std::mem::transmute(get_instance_proc_addr);
            match self.instance.create_vulkan_device(
                self.system,
                gipa,
                physical_device as _,
                create_info.cast(),
            ) {
                Ok(Ok(raw)) => Ok(raw as u64),
                Ok(Err(vk)) => Err(format!("vkCreateDevice returned {vk}")),
                Err(xr) => Err(format!("xrCreateVulkanDeviceKHR returned {xr}")),
            }
        }
    }
}

impl OpenXrSource {
    /// Loads the OpenXR loader, connects to the runtime and starts a session.
    ///
    /// # Errors
    /// [`XrError::NoRuntime`] without a loader or runtime; other variants when the runtime
    /// lacks Vulkan support or a call fails.
    pub fn start() -> Result<Self, XrError> {
        // SAFETY: the loader named by the OpenXR ABI (libopenxr_loader.so.1) is trusted to
        // follow the specification.
        let entry = unsafe { xr::Entry::load(&()) }.map_err(|e| XrError::NoRuntime {
            detail: Some(format!("{e}")),
        })?;
        let available = entry
            .enumerate_extensions()
            .map_err(|e| XrError::NoRuntime {
                detail: Some(format!("listing extensions: {e}")),
            })?;
        if !available.khr_vulkan_enable2 {
            return Err(XrError::Unsupported {
                runtime: "found".into(),
                what: "XR_KHR_vulkan_enable2".into(),
            });
        }
        let mut extensions = xr::ExtensionSet::default();
        extensions.khr_vulkan_enable2 = true;
        extensions.ext_hand_tracking = available.ext_hand_tracking;
        let instance = entry
            .create_instance(
                &xr::ApplicationInfo {
                    application_name: "twinray",
                    application_version: 0,
                    engine_name: "twinray",
                    engine_version: 0,
                    api_version: xr::Version::new(1, 0, 0),
                },
                &extensions,
                &[],
                &(),
            )
            .map_err(|e| match e {
                xr::sys::Result::ERROR_RUNTIME_UNAVAILABLE
                | xr::sys::Result::ERROR_RUNTIME_FAILURE => XrError::NoRuntime {
                    detail: Some(e.to_string()),
                },
                other => runtime_error("creating the instance")(other),
            })?;
        let runtime = instance
            .properties()
            .map(|p| format!("{} {}", p.runtime_name, p.runtime_version))
            .unwrap_or_else(|_| "(unnamed)".into());
        let system = instance
            .system(xr::FormFactor::HEAD_MOUNTED_DISPLAY)
            .map_err(|e| XrError::NoRuntime {
                detail: Some(format!("{runtime} has no headset connected ({e})")),
            })?;
        let requirements = instance
            .graphics_requirements::<xr::Vulkan>(system)
            .map_err(runtime_error("reading the Vulkan requirements"))?;
        if xr::Version::new(1, 1, 0) < requirements.min_api_version_supported {
            return Err(XrError::Unsupported {
                runtime,
                what: format!(
                    "Vulkan 1.1 (it needs {} or newer)",
                    requirements.min_api_version_supported
                ),
            });
        }
        let (ctx, handles) = GpuContext::with_external_vulkan(&mut RuntimeVulkan {
            instance: &instance,
            system,
        })?;
        // SAFETY: the handles are the runtime-created instance and device, alive as long as
        // `ctx`, which this source holds for as long as the session.
        let (session, frame_waiter, frame_stream) = unsafe {
            instance.create_session::<xr::Vulkan>(
                system,
                &xr::vulkan::SessionCreateInfo {
                    instance: handles.instance as _,
                    physical_device: handles.physical_device as _,
                    device: handles.device as _,
                    queue_family_index: handles.queue_family_index,
                    queue_index: handles.queue_index,
                },
            )
        }
        .map_err(runtime_error("creating the session"))?;

        let actions = create_actions(&instance)?;
        session
            .attach_action_sets(&[&actions.set])
            .map_err(runtime_error("attaching the actions"))?;
        let space = |action: &xr::Action<xr::Posef>, i: usize| {
            action
                .create_space(&session, actions.hand_paths[i], xr::Posef::IDENTITY)
                .map_err(runtime_error("creating controller spaces"))
        };
        let grip_spaces = [space(&actions.grip, 0)?, space(&actions.grip, 1)?];
        let aim_spaces = [space(&actions.aim, 0)?, space(&actions.aim, 1)?];
        let stage_type = if session
            .enumerate_reference_spaces()
            .map_err(runtime_error("listing reference spaces"))?
            .contains(&xr::ReferenceSpaceType::STAGE)
        {
            xr::ReferenceSpaceType::STAGE
        } else {
            xr::ReferenceSpaceType::LOCAL
        };
        let stage = session
            .create_reference_space(stage_type, xr::Posef::IDENTITY)
            .map_err(runtime_error("creating the stage space"))?;
        let view_space = session
            .create_reference_space(xr::ReferenceSpaceType::VIEW, xr::Posef::IDENTITY)
            .map_err(runtime_error("creating the view space"))?;
        // Hand tracking is optional: without it the controllers draw and grab. A runtime may
        // offer the extension on a system that tracks no hands (Monado's simulated headset
        // answers XR_ERROR_FEATURE_UNSUPPORTED); that is said once, here, and not an error.
        let (hand_trackers, hand_tracking) = if extensions.ext_hand_tracking {
            match session
                .create_hand_tracker(xr::Hand::LEFT)
                .and_then(|l| Ok([l, session.create_hand_tracker(xr::Hand::RIGHT)?]))
            {
                Ok(trackers) => (Some(trackers), "on".to_owned()),
                Err(e) => (
                    None,
                    format!(
                        "off (XR_EXT_hand_tracking is offered, but xrCreateHandTrackerEXT \
                         returned XR_{e:?}: {e}); controllers only"
                    ),
                ),
            }
        } else {
            (None, "off (XR_EXT_hand_tracking not offered)".to_owned())
        };

        let views = instance
            .enumerate_view_configuration_views(system, VIEW_TYPE)
            .map_err(runtime_error("reading the view configuration"))?;
        let view = views.first().ok_or_else(|| XrError::Unsupported {
            runtime: runtime.clone(),
            what: "a stereo view configuration".into(),
        })?;
        let eye_size = [
            view.recommended_image_rect_width,
            view.recommended_image_rect_height,
        ];
        let formats = session
            .enumerate_swapchain_formats()
            .map_err(runtime_error("listing swapchain formats"))?;
        let format = ExternalFormat::PREFERRED
            .into_iter()
            .find(|f| formats.iter().any(|&raw| i64::from(raw) == f.vk_format()))
            .ok_or_else(|| XrError::Unsupported {
                runtime: runtime.clone(),
                what: "an 8-bit RGBA or BGRA swapchain format".into(),
            })?;
        let swapchain = session
            .create_swapchain(&xr::SwapchainCreateInfo {
                create_flags: xr::SwapchainCreateFlags::EMPTY,
                usage_flags: xr::SwapchainUsageFlags::COLOR_ATTACHMENT
                    | xr::SwapchainUsageFlags::TRANSFER_DST,
                format: format.vk_format() as u32,
                sample_count: 1,
                width: eye_size[0],
                height: eye_size[1],
                face_count: 1,
                array_size: 2,
                mip_count: 1,
            })
            .map_err(runtime_error("creating the swapchain"))?;
        let swapchain_images = swapchain
            .enumerate_images()
            .map_err(runtime_error("listing swapchain images"))?;
        let blend_mode = instance
            .enumerate_environment_blend_modes(system, VIEW_TYPE)
            .map_err(runtime_error("listing blend modes"))?
            .first()
            .copied()
            .unwrap_or(xr::EnvironmentBlendMode::OPAQUE);
        crate::say!(
            "vr: {runtime}, {}x{} per eye, hand tracking {hand_tracking}",
            eye_size[0],
            eye_size[1],
        );
        Ok(Self {
            instance,
            session,
            frame_waiter,
            frame_stream,
            stage,
            view_space,
            actions,
            grip_spaces,
            aim_spaces,
            hand_trackers,
            swapchain,
            swapchain_images,
            format,
            eye_size,
            blend_mode,
            running: false,
            exit_requested: false,
            ended_after_exit: None,
            stop: None,
            frame_state: None,
            raw_views: Vec::new(),
            ctx,
        })
    }

    /// The renderer's context on the runtime's device: render with this one, so the eye images
    /// can be copied into the swapchain.
    #[must_use]
    pub fn gpu(&self) -> Arc<GpuContext> {
        self.ctx.clone()
    }

    /// Ends the session cleanly once `stop` is set (checked between frames and while waiting
    /// for the runtime, so also while the headset shows nothing).
    #[must_use]
    pub fn stop_when(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Handles runtime events; `false` when the session is over.
    fn pump_events(&mut self) -> Result<bool, XrError> {
        let mut storage = xr::EventDataBuffer::new();
        while let Some(event) = self
            .instance
            .poll_event(&mut storage)
            .map_err(runtime_error("polling events"))?
        {
            match event {
                xr::Event::SessionStateChanged(e) => {
                    let state = e.state();
                    crate::say!("vr: session {state:?}");
                    match state {
                        // After an exit request a READY session is not begun: nothing to show.
                        xr::SessionState::READY if !self.exit_requested => {
                            self.session
                                .begin(VIEW_TYPE)
                                .map_err(runtime_error("beginning the session"))?;
                            self.running = true;
                        }
                        xr::SessionState::STOPPING => {
                            self.session
                                .end()
                                .map_err(runtime_error("ending the session"))?;
                            self.running = false;
                            if self.exit_requested {
                                self.ended_after_exit = Some(Instant::now());
                            }
                        }
                        xr::SessionState::EXITING | xr::SessionState::LOSS_PENDING => {
                            return Ok(false)
                        }
                        _ => {}
                    }
                }
                xr::Event::InstanceLossPending(_) => {
                    crate::say!("vr: the OpenXR instance is being lost");
                    return Ok(false);
                }
                _ => {}
            }
        }
        Ok(true)
    }

    /// Tracked hands now; a runtime that fails to locate them is said once, then not asked.
    fn hands(&mut self, time: xr::Time) -> [Option<HandJoints>; 2] {
        match (self.hand(0, time), self.hand(1, time)) {
            (Ok(l), Ok(r)) => [l, r],
            (Err(e), _) | (_, Err(e)) => {
                crate::say!("vr: hand tracking off from now on: {e}");
                self.hand_trackers = None;
                [None, None]
            }
        }
    }

    fn controller(&self, i: usize, time: xr::Time) -> Result<Option<ControllerState>, XrError> {
        let path = self.actions.hand_paths[i];
        let err = runtime_error("reading controllers");
        let grip = self.grip_spaces[i].locate(&self.stage, time).map_err(err)?;
        let aim = self.aim_spaces[i]
            .locate(&self.stage, time)
            .map_err(runtime_error("reading controllers"))?;
        let tracked = |l: &xr::SpaceLocation| {
            l.location_flags.contains(
                xr::SpaceLocationFlags::POSITION_VALID | xr::SpaceLocationFlags::ORIENTATION_VALID,
            )
        };
        if !tracked(&grip) {
            return Ok(None);
        }
        let read = |a: &xr::Action<f32>| {
            a.state(&self.session, path)
                .map(|s| s.current_state)
                .map_err(runtime_error("reading controllers"))
        };
        let menu = self
            .actions
            .menu
            .state(&self.session, path)
            .map_err(runtime_error("reading controllers"))?
            .current_state;
        let tool = self
            .actions
            .tool
            .state(&self.session, path)
            .map_err(runtime_error("reading controllers"))?
            .current_state;
        let board = self
            .actions
            .board
            .state(&self.session, path)
            .map_err(runtime_error("reading controllers"))?
            .current_state;
        let stick = self
            .actions
            .thumbstick
            .state(&self.session, path)
            .map_err(runtime_error("reading controllers"))?
            .current_state;
        let thumbstick = Vec2::new(stick.x, stick.y);
        Ok(Some(ControllerState {
            grip: pose_mm(grip.pose),
            aim: if tracked(&aim) {
                pose_mm(aim.pose)
            } else {
                pose_mm(grip.pose)
            },
            buttons: if menu { MENU_BUTTON } else { 0 }
                | if tool { TOOL_BUTTON } else { 0 }
                | if board { BOARD_BUTTON } else { 0 },
            trigger: read(&self.actions.trigger)?,
            squeeze: read(&self.actions.squeeze)?,
            thumbstick,
        }))
    }

    fn hand(&self, i: usize, time: xr::Time) -> Result<Option<HandJoints>, XrError> {
        let Some(trackers) = &self.hand_trackers else {
            return Ok(None);
        };
        let Some(locations) = self
            .stage
            .locate_hand_joints(&trackers[i], time)
            .map_err(runtime_error("reading hand joints"))?
        else {
            return Ok(None);
        };
        let mut joints = HandJoints {
            tracked_mask: 0,
            ..HandJoints::default()
        };
        for (j, (out, location)) in joints.joints.iter_mut().zip(locations.iter()).enumerate() {
            *out = HandJoint {
                pose: pose_mm(location.pose),
                radius_mm: location.radius * 1000.0,
            };
            if location
                .location_flags
                .contains(xr::SpaceLocationFlags::POSITION_TRACKED)
            {
                joints.tracked_mask |= 1 << j;
            }
        }
        debug_assert_eq!(locations.len(), HAND_JOINT_COUNT);
        Ok(Some(joints))
    }
}

fn create_actions(instance: &xr::Instance) -> Result<Actions, XrError> {
    let err = || runtime_error("creating actions");
    let hand_paths = [
        instance.string_to_path(HANDS[0]).map_err(err())?,
        instance.string_to_path(HANDS[1]).map_err(err())?,
    ];
    let set = instance
        .create_action_set("twinray", "twinray", 0)
        .map_err(err())?;
    let actions = Actions {
        trigger: set
            .create_action("draw", "Draw", &hand_paths)
            .map_err(err())?,
        squeeze: set
            .create_action("grab", "Grab the twin", &hand_paths)
            .map_err(err())?,
        thumbstick: set
            .create_action("move", "Move, turn and scale the twin", &hand_paths)
            .map_err(err())?,
        menu: set
            .create_action("menu", "Record / chapter", &hand_paths)
            .map_err(err())?,
        tool: set
            .create_action("tool", "Next measure tool", &hand_paths)
            .map_err(err())?,
        board: set
            .create_action("board", "Place the next image board", &hand_paths)
            .map_err(err())?,
        grip: set
            .create_action("grip_pose", "Grip pose", &hand_paths)
            .map_err(err())?,
        aim: set
            .create_action("aim_pose", "Pen pose", &hand_paths)
            .map_err(err())?,
        set,
        hand_paths,
    };
    // Suggested bindings: the generic controller every runtime offers, and Touch controllers
    // (also what Quest, Pico and most SteamVR controllers emulate).
    let path = |s: &str| instance.string_to_path(s).map_err(err());
    let mut simple = Vec::new();
    let mut touch = Vec::new();
    for hand in HANDS {
        simple.push(xr::Binding::new(
            &actions.trigger,
            path(&format!("{hand}/input/select/click"))?,
        ));
        simple.push(xr::Binding::new(
            &actions.menu,
            path(&format!("{hand}/input/menu/click"))?,
        ));
        simple.push(xr::Binding::new(
            &actions.grip,
            path(&format!("{hand}/input/grip/pose"))?,
        ));
        simple.push(xr::Binding::new(
            &actions.aim,
            path(&format!("{hand}/input/aim/pose"))?,
        ));
        touch.push(xr::Binding::new(
            &actions.trigger,
            path(&format!("{hand}/input/trigger/value"))?,
        ));
        touch.push(xr::Binding::new(
            &actions.squeeze,
            path(&format!("{hand}/input/squeeze/value"))?,
        ));
        touch.push(xr::Binding::new(
            &actions.thumbstick,
            path(&format!("{hand}/input/thumbstick"))?,
        ));
        touch.push(xr::Binding::new(
            &actions.grip,
            path(&format!("{hand}/input/grip/pose"))?,
        ));
        touch.push(xr::Binding::new(
            &actions.aim,
            path(&format!("{hand}/input/aim/pose"))?,
        ));
    }
    // Touch has a menu button on the left only; the right one's A button stands in for it.
    touch.push(xr::Binding::new(
        &actions.menu,
        path("/user/hand/left/input/menu/click")?,
    ));
    touch.push(xr::Binding::new(
        &actions.menu,
        path("/user/hand/right/input/a/click")?,
    ));
    // The simple controller has no spare button: its users cannot change the measure tool.
    touch.push(xr::Binding::new(
        &actions.tool,
        path("/user/hand/left/input/x/click")?,
    ));
    touch.push(xr::Binding::new(
        &actions.tool,
        path("/user/hand/right/input/b/click")?,
    ));
    // Y, the one face button left: boards brought in with `--board` (the simple controller
    // has none to spare either).
    touch.push(xr::Binding::new(
        &actions.board,
        path("/user/hand/left/input/y/click")?,
    ));
    instance
        .suggest_interaction_profile_bindings(
            path("/interaction_profiles/khr/simple_controller")?,
            &simple,
        )
        .map_err(err())?;
    instance
        .suggest_interaction_profile_bindings(
            path("/interaction_profiles/oculus/touch_controller")?,
            &touch,
        )
        .map_err(err())?;
    Ok(actions)
}

/// An OpenXR pose (metres) as a lesson pose (millimetres).
fn pose_mm(p: xr::Posef) -> Pose {
    Pose {
        position_mm: Vec3::new(p.position.x, p.position.y, p.position.z) * 1000.0,
        orientation: Quat::from_xyzw(
            p.orientation.x,
            p.orientation.y,
            p.orientation.z,
            p.orientation.w,
        )
        .normalize(),
    }
}

impl XrSource for OpenXrSource {
    fn recommended_eye_size(&self) -> [u32; 2] {
        self.eye_size
    }

    fn next_frame(&mut self) -> Result<Option<XrFrame>, XrError> {
        loop {
            if !self.pump_events()? {
                return Ok(None);
            }
            if self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
                self.request_exit()?;
            }
            if !self.running {
                match self.ended_after_exit {
                    // Asked to exit before the session began: nothing to end.
                    None if self.exit_requested => return Ok(None),
                    Some(ended) if ended.elapsed() > EXITING_TIMEOUT => {
                        crate::say!(
                            "vr: the runtime did not report EXITING within {} s; closing anyway",
                            EXITING_TIMEOUT.as_secs()
                        );
                        return Ok(None);
                    }
                    _ => {}
                }
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            let state = self
                .frame_waiter
                .wait()
                .map_err(runtime_error("waiting for a frame"))?;
            self.frame_stream
                .begin()
                .map_err(runtime_error("beginning a frame"))?;
            // Nothing to show, or on the way out (frames go on until STOPPING): end the frame
            // without layers.
            if !state.should_render || self.exit_requested {
                self.frame_stream
                    .end(state.predicted_display_time, self.blend_mode, &[])
                    .map_err(runtime_error("ending a frame"))?;
                continue;
            }
            let time = state.predicted_display_time;
            self.session
                .sync_actions(&[(&self.actions.set).into()])
                .map_err(runtime_error("syncing actions"))?;
            let (_, views) = self
                .session
                .locate_views(VIEW_TYPE, time, &self.stage)
                .map_err(runtime_error("locating the views"))?;
            let head = self
                .view_space
                .locate(&self.stage, time)
                .map_err(runtime_error("locating the head"))?;
            let eye = |v: &xr::View| EyeView {
                pose: pose_mm(v.pose),
                fov: Fov {
                    angle_left: v.fov.angle_left,
                    angle_right: v.fov.angle_right,
                    angle_up: v.fov.angle_up,
                    angle_down: v.fov.angle_down,
                },
            };
            let (Some(left), Some(right)) = (views.first(), views.get(1)) else {
                return Err(XrError::Runtime {
                    context: "locating the views",
                    result: format!("{} views instead of 2", views.len()),
                });
            };
            let frame = XrFrame {
                predicted_display_time_ns: time.as_nanos(),
                display_period_ns: state.predicted_display_period.as_nanos(),
                views: [eye(left), eye(right)],
                head: pose_mm(head.pose),
                hands: self.hands(time),
                controllers: [self.controller(0, time)?, self.controller(1, time)?],
            };
            self.frame_state = Some(state);
            self.raw_views = views;
            return Ok(Some(frame));
        }
    }

    fn submit(&mut self, _frame: &XrFrame, eyes: &[RgbaImage; 2]) -> Result<(), XrError> {
        let Some(state) = self.frame_state.take() else {
            return Ok(());
        };
        let index = self
            .swapchain
            .acquire_image()
            .map_err(runtime_error("acquiring a swapchain image"))?;
        self.swapchain
            .wait_image(xr::Duration::INFINITE)
            .map_err(runtime_error("waiting for a swapchain image"))?;
        let image = self.swapchain_images[index as usize];
        for (layer, eye) in eyes.iter().enumerate() {
            let eye = crate::stereo::resized(eye, self.eye_size);
            // SAFETY: `image` is the acquired swapchain image of this session's device, created
            // above with TRANSFER_DST usage, this format, size and two layers; after
            // `wait_image` OpenXR guarantees it is in COLOR_ATTACHMENT_OPTIMAL.
            unsafe {
                self.ctx.copy_into_external_image(
                    image,
                    self.format,
                    self.eye_size,
                    2,
                    layer as u32,
                    &eye.pixels,
                )
            }?;
        }
        self.swapchain
            .release_image()
            .map_err(runtime_error("releasing a swapchain image"))?;
        let rect = xr::Rect2Di {
            offset: xr::Offset2Di { x: 0, y: 0 },
            extent: xr::Extent2Di {
                width: self.eye_size[0] as i32,
                height: self.eye_size[1] as i32,
            },
        };
        let projection_views: Vec<xr::CompositionLayerProjectionView<'_, xr::Vulkan>> = self
            .raw_views
            .iter()
            .take(2)
            .enumerate()
            .map(|(layer, v)| {
                xr::CompositionLayerProjectionView::new()
                    .pose(v.pose)
                    .fov(v.fov)
                    .sub_image(
                        xr::SwapchainSubImage::new()
                            .swapchain(&self.swapchain)
                            .image_array_index(layer as u32)
                            .image_rect(rect),
                    )
            })
            .collect();
        self.frame_stream
            .end(
                state.predicted_display_time,
                self.blend_mode,
                &[&xr::CompositionLayerProjection::new()
                    .space(&self.stage)
                    .views(&projection_views)],
            )
            .map_err(runtime_error("ending a frame"))
    }

    fn request_exit(&mut self) -> Result<(), XrError> {
        if self.exit_requested {
            return Ok(());
        }
        self.exit_requested = true;
        // A session that is not running (not yet begun, or already ended) has nothing to
        // stop: `next_frame` closes the source.
        if self.running {
            crate::say!("vr: requesting the end of the session");
            self.session
                .request_exit()
                .map_err(runtime_error("requesting the end of the session"))?;
        }
        Ok(())
    }
}
