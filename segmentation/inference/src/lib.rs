//! Segmenting a CT with an ONNX model, the way nnU-Net does it.
//!
//! The recipe (nnU-Net v2's `predict_sliding_window_return_logits`, reproduced operation for
//! operation so that results equal `../shared/peers/onnx_sliding_window.py`'s):
//! 1. put the CT on the model's grid ([`ModelGrid`]): voxel axes permuted/flipped to the model's
//!    `axes`, resampled (trilinear) to its `spacing_mm`; an axis already at that spacing within
//!    1e-4 mm is copied exactly;
//! 2. normalise ([`Normalization`]): CT, clip to `[clip_low, clip_high]`, subtract `mean`, divide
//!    by `std`; z-score, subtract the image's own mean, divide by its standard deviation (in `f32`);
//! 3. pad with 0 (centred) to at least the patch;
//! 4. slide windows whose starts are spread evenly with step `step_fraction` of the patch
//!    ([`window::window_starts`]); run the model on each (optionally also on mirrored copies,
//!    averaged), weight its logits by nnU-Net's Gaussian ([`window::gaussian_importance`]) and
//!    accumulate logits and weights in `f32`;
//! 5. divide, take the arg-max channel, map channels to label ids, and put the labels back on
//!    the CT's own grid (nearest neighbour).
//!
//! Memory is bounded by streaming along the slowest axis: the accumulator holds one patch-deep
//! slab (`classes × patch[0] × padded[1] × padded[2]` floats), and planes are finished as soon as
//! no later window reaches them. A volume whose working set exceeds
//! [`SegmentOptions::max_memory_bytes`] is refused before anything is allocated.
//!
//! The model description format is in `segmentation/inference/models/FORMAT.md`.

pub mod grid;
pub mod model;
pub mod plausibility;
pub mod runtime;
pub mod window;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};
use twinray_volume::{CtVolume, LabelVolume, VolumeError};

pub use grid::ModelGrid;
pub use model::{Direction, ModelClass, ModelDescription, Normalization};
pub use runtime::{find_library, installed_library_path, Runtime, ORT_LIB_ENV};

use twinray_io::LabelNames;

/// Largest ONNX file accepted (protobuf's own limit is 2 GiB).
pub const MAX_MODEL_BYTES: u64 = 2 << 30;
/// Default bound on the memory a segmentation may use for its own buffers.
pub const DEFAULT_MAX_MEMORY_BYTES: usize = 4 << 30;

/// Everything that can go wrong finding the runtime, loading a model or running it.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// No ONNX Runtime library where we looked.
    #[error("ONNX Runtime library not found: {tried}. Run `make setup` (scripts/setup.sh installs it), or set TWINRAY_ORT_LIB to a libonnxruntime.so (version 1.31 or newer)")]
    RuntimeMissing {
        /// Where we looked.
        tried: String,
    },
    /// The library exists but cannot be used.
    #[error("cannot use {path} as the ONNX Runtime library: {reason}. Run `make setup`, or set TWINRAY_ORT_LIB to a libonnxruntime.so (version 1.31 or newer)")]
    RuntimeLoad {
        /// The library file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The model description is missing, malformed or inconsistent.
    #[error("model description {path}: {problem}")]
    Description {
        /// The description file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// An ONNX file was given without its description.
    #[error("{onnx} needs its model description ({expected} does not exist); see segmentation/inference/models/FORMAT.md, or pass --model DESCRIPTION.json")]
    DescriptionMissing {
        /// The ONNX file.
        onnx: PathBuf,
        /// Where the description was looked for.
        expected: PathBuf,
    },
    /// No built-in model in this build.
    #[error("this twinray has no built-in segmentation model; pass --model MODEL.json")]
    NoBuiltinModel,
    /// ONNX Runtime cannot parse the model.
    #[error("{model} is not an ONNX model ONNX Runtime can load: {message}")]
    NotOnnx {
        /// The model.
        model: String,
        /// What ONNX Runtime said.
        message: String,
    },
    /// The model lacks the named input or output.
    #[error("{model} has no {kind} named '{name}' (it has {available:?})")]
    NoSuchTensor {
        /// The model.
        model: String,
        /// "input" or "output".
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The names it has.
        available: Vec<String>,
    },
    /// An input or output that is not a 5-D float tensor.
    #[error("{model}: {kind} '{name}' is {found}; a segmentation model takes and returns float32 [batch, channels, D, H, W] (rank 5)")]
    WrongRank {
        /// The model.
        model: String,
        /// "input" or "output".
        kind: &'static str,
        /// Its name.
        name: String,
        /// What it is.
        found: String,
    },
    /// The input has more than one channel.
    #[error("{model}: input '{name}' has {channels} channels; twinray feeds one CT channel")]
    InputChannels {
        /// The model.
        model: String,
        /// Input name.
        name: String,
        /// Channels it declares.
        channels: i64,
    },
    /// Output channels differ from the description's classes.
    #[error("{model}: output '{name}' has {channels} channels but the description lists {classes} classes")]
    OutputChannels {
        /// The model.
        model: String,
        /// Output name.
        name: String,
        /// Channels it has.
        channels: i64,
        /// Classes described.
        classes: usize,
    },
    /// The description's patch does not fit the model's fixed input size.
    #[error("{model}: the description's patch_size {patch:?} does not match the model's fixed input size {dims:?} (D, H, W; -1 = any)")]
    PatchMismatch {
        /// The model.
        model: String,
        /// The described patch.
        patch: [usize; 3],
        /// The model's spatial input dimensions.
        dims: [i64; 3],
    },
    /// Running the model failed.
    #[error("{model}: inference failed: {message}")]
    Run {
        /// The model.
        model: String,
        /// What ONNX Runtime said, or what was wrong with its output.
        message: String,
    },
    /// The volume needs more memory than allowed.
    #[error("segmenting {shape:?} voxels (model grid, padded) with {classes} classes needs about {needed_mib} MiB, more than the {limit_mib} MiB allowed")]
    TooLarge {
        /// Padded model-grid shape.
        shape: [usize; 3],
        /// Output classes.
        classes: usize,
        /// Estimated need, MiB.
        needed_mib: usize,
        /// The limit, MiB.
        limit_mib: usize,
    },
    /// Options that cannot be honoured.
    #[error("{0}")]
    Options(String),
    /// The cancel flag was raised.
    #[error("segmentation cancelled")]
    Cancelled,
    /// The labels' grid could not be built.
    #[error(transparent)]
    Volume(#[from] VolumeError),
}

/// Where a model's ONNX bytes come from.
#[derive(Debug, Clone)]
enum OnnxSource {
    File(PathBuf),
    Static(&'static [u8]),
}

/// A model and its description, not yet loaded into ONNX Runtime.
#[derive(Debug, Clone)]
pub struct Model {
    description: ModelDescription,
    onnx: OnnxSource,
    origin: String,
    builtin: bool,
}

/// What every front end says whenever the built-in model runs: users get its labels, and must
/// know what they are worth.
pub const BUILTIN_MODEL_NOTICE: &str = "the built-in model is a demonstrator trained on two abdominal CT scans (spleen, kidneys, liver, aorta and the vertebrae as one label): expect wrong labels outside the upper abdomen. For real work, export a full TotalSegmentator or nnU-Net model to ONNX (segmentation/inference/models/FORMAT.md) and pass it with --model";

/// The model compiled into twinray: its description and ONNX bytes.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinModel {
    /// The description JSON.
    pub json: &'static str,
    /// The ONNX file.
    pub onnx: &'static [u8],
}

/// The built-in model, `segmentation/inference/models/twinray-abdomen-3mm.{json,onnx}` (1.4 MB), compiled
/// in so `twinray segment` works without any file beside the binary. An `Option` so a build
/// that drops the model (a smaller binary) still compiles and `segment` then asks for `--model`.
pub const BUILTIN_MODEL: Option<BuiltinModel> = Some(BuiltinModel {
    json: include_str!("../models/twinray-abdomen-3mm.json"),
    onnx: include_bytes!("../models/twinray-abdomen-3mm.onnx"),
});

impl Model {
    /// Opens a model from its description (`.json`), or from an ONNX file with its description
    /// beside it (same name, `.json`).
    pub fn open(path: &Path) -> Result<Self, InferenceError> {
        let is_onnx = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
        let json = if is_onnx {
            let json = model::description_beside(path);
            if !json.is_file() {
                return Err(InferenceError::DescriptionMissing {
                    onnx: path.to_path_buf(),
                    expected: json,
                });
            }
            json
        } else {
            path.to_path_buf()
        };
        let description = ModelDescription::read(&json)?;
        let onnx = json
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(&description.onnx);
        if is_onnx && onnx.file_name() != path.file_name() {
            return Err(InferenceError::Description {
                path: json,
                problem: format!(
                    "it describes '{}', not {}",
                    description.onnx,
                    path.display()
                ),
            });
        }
        if !onnx.is_file() {
            return Err(InferenceError::Description {
                path: json,
                problem: format!("its ONNX file {} does not exist", onnx.display()),
            });
        }
        Ok(Self {
            description,
            origin: onnx.display().to_string(),
            onnx: OnnxSource::File(onnx),
            builtin: false,
        })
    }

    /// A model held in memory (the built-in one, or one a test writes).
    pub fn from_static(
        json: &str,
        onnx: &'static [u8],
        origin: &str,
    ) -> Result<Self, InferenceError> {
        Ok(Self {
            description: ModelDescription::parse(json, Path::new(origin))?,
            onnx: OnnxSource::Static(onnx),
            origin: origin.to_owned(),
            builtin: false,
        })
    }

    /// The model compiled into twinray ([`BUILTIN_MODEL`]).
    pub fn builtin() -> Result<Self, InferenceError> {
        let b = BUILTIN_MODEL.ok_or(InferenceError::NoBuiltinModel)?;
        let mut model = Self::from_static(b.json, b.onnx, "built-in model twinray-abdomen-3mm")?;
        model.builtin = true;
        Ok(model)
    }

    /// Whether this is the built-in demonstrator ([`BUILTIN_MODEL_NOTICE`] says what it is).
    pub fn is_builtin(&self) -> bool {
        self.builtin
    }

    /// The description.
    pub fn description(&self) -> &ModelDescription {
        &self.description
    }

    /// Where the model came from (a path, or "built-in ..."), for messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// How to run a segmentation.
#[derive(Debug, Clone)]
pub struct SegmentOptions {
    /// Window step as a fraction of the patch; the description's when `None`.
    pub step_fraction: Option<f64>,
    /// Mirroring for test-time augmentation: array axes to flip (every combination is run and
    /// averaged, as nnU-Net does); `None` = no mirroring.
    pub mirror_axes: Option<Vec<usize>>,
    /// Windows per model call when the model's batch size is dynamic.
    pub batch_size: usize,
    /// Refuse volumes whose buffers would need more than this.
    pub max_memory_bytes: usize,
    /// Raised from another thread to stop between model calls.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        Self {
            step_fraction: None,
            mirror_axes: None,
            batch_size: 1,
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            cancel: None,
        }
    }
}

impl SegmentOptions {
    /// Mirroring as the description asks for it: its `mirror_axes`, or all three when it lists
    /// none (nnU-Net's 8 flips).
    pub fn mirrored_as(description: &ModelDescription) -> Vec<usize> {
        if description.mirror_axes.is_empty() {
            vec![0, 1, 2]
        } else {
            description.mirror_axes.clone()
        }
    }
}

/// Progress of a running segmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Windows finished.
    pub windows_done: usize,
    /// Windows in all.
    pub windows_total: usize,
}

/// The result of [`Segmenter::segment`].
#[derive(Debug, Clone)]
pub struct Segmentation {
    /// Label ids on the CT's own grid.
    pub labels: LabelVolume,
    /// Names of the model's classes, by id.
    pub names: LabelNames,
    /// The model grid the model saw (unpadded), slowest axis first.
    pub model_shape: [usize; 3],
    /// Windows run (not counting mirrored copies).
    pub windows: usize,
}

/// How a model's session uses the machine's cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreUse {
    /// Beside other work (the studio renders on the same cores while it segments): ONNX
    /// Runtime's thread count, and workers sleep between operators instead of spinning, so they
    /// take no core from the renderer or other users. On shared machines under load a window
    /// took 0.43 s this way and 0.55 s spinning (median of 8, three rounds).
    Shared,
    /// A job with the machine to itself (`twinray segment`): `threads` workers (ONNX Runtime's
    /// choice, one per core, when `None`) that spin between operators, as ONNX Runtime does by
    /// default. On a quiet 2-core machine spinning took 2-3 % off a pass of small, fast
    /// operators (5.37-5.46 s against 5.51-5.65 s, tiny U-Net on `example_ct`), at 2 % more CPU.
    Exclusive {
        /// Intra-op threads.
        threads: Option<usize>,
    },
}

/// A model loaded into ONNX Runtime and checked against its description.
#[derive(Debug)]
pub struct Segmenter {
    session: Session,
    description: ModelDescription,
    origin: String,
    input_name: String,
    output_name: String,
    dynamic_batch: bool,
}

// The studio runs segmentations on a worker thread (and cancels them through the flag).
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<Segmenter>();
    assert_send::<Model>();
};

/// Shape of a tensor outlet, or a description of what it is instead.
fn tensor_shape(t: &ValueType) -> Result<Vec<i64>, String> {
    match t {
        ValueType::Tensor {
            ty: TensorElementType::Float32,
            shape,
            ..
        } => Ok(shape.to_vec()),
        ValueType::Tensor { ty, shape, .. } => Err(format!("a {ty:?} tensor of shape {shape:?}")),
        other => Err(format!("not a tensor ({other:?})")),
    }
}

impl Segmenter {
    /// Loads `model` into `runtime` and checks that it fits its description: one float input
    /// `[batch, 1, D, H, W]`, an output `[batch, classes, D, H, W]`, fixed sizes equal to the
    /// patch. `cores` says whether the session shares the machine ([`CoreUse`]).
    pub fn new(runtime: &Runtime, model: &Model, cores: CoreUse) -> Result<Self, InferenceError> {
        let origin = model.origin.clone();
        let ort_error = |e: ort::Error| InferenceError::Run {
            model: origin.clone(),
            message: e.to_string(),
        };
        // One departure from ONNX Runtime's defaults (which the Python peer keeps), measured
        // with the built-in model on the project's shared 2-core machines, labels unchanged:
        // no memory pattern: the pre-planned activation block, carved from the CPU arena, is
        // larger than what the arena reuses on its own: peak RSS 129 -> 95 MB for one 32x96x96
        // window, 413 -> 285 MB for a batch of 4, at the same speed (and the same CPU time for
        // the tiny U-Net). Spinning: see `CoreUse`.
        let (spin, threads) = match cores {
            CoreUse::Shared => (false, None),
            CoreUse::Exclusive { threads } => (true, threads),
        };
        let mut builder = Session::builder(runtime.environment())
            .map_err(ort_error)?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| ort_error(e.into()))?
            .with_memory_pattern(false)
            .map_err(|e| ort_error(e.into()))?
            .with_intra_op_spinning(spin)
            .map_err(|e| ort_error(e.into()))?;
        if let Some(n) = threads {
            builder = builder
                .with_intra_threads(n)
                .map_err(|e| ort_error(e.into()))?;
        }
        let not_onnx = |e: ort::Error| InferenceError::NotOnnx {
            model: origin.clone(),
            message: e.to_string(),
        };
        let session = match &model.onnx {
            OnnxSource::File(path) => {
                let bytes = read_model_file(path)?;
                builder.commit_from_memory(&bytes).map_err(not_onnx)?
            }
            OnnxSource::Static(bytes) => builder.commit_from_memory(bytes).map_err(not_onnx)?,
        };
        let d = &model.description;
        let pick = |kind: &'static str,
                    wanted: Option<&String>,
                    names: Vec<String>|
         -> Result<String, InferenceError> {
            match wanted {
                Some(w) if names.contains(w) => Ok(w.clone()),
                Some(w) => Err(InferenceError::NoSuchTensor {
                    model: origin.clone(),
                    kind,
                    name: w.clone(),
                    available: names,
                }),
                None => names.first().cloned().ok_or(InferenceError::NoSuchTensor {
                    model: origin.clone(),
                    kind,
                    name: "(any)".into(),
                    available: names,
                }),
            }
        };
        let input_name = pick(
            "input",
            d.input_name.as_ref(),
            session
                .inputs()
                .iter()
                .map(|o| o.name().to_owned())
                .collect(),
        )?;
        let output_name = pick(
            "output",
            d.output_name.as_ref(),
            session
                .outputs()
                .iter()
                .map(|o| o.name().to_owned())
                .collect(),
        )?;
        let shape_of = |kind: &'static str, name: &str, outlets: &[ort::value::Outlet]| {
            let outlet = outlets.iter().find(|o| o.name() == name);
            let shape = outlet
                .map(|o| tensor_shape(o.dtype()))
                .unwrap_or_else(|| Err("missing".into()));
            match shape {
                Ok(s) if s.len() == 5 => Ok(s),
                Ok(s) => Err(format!("a float32 tensor of rank {} ({s:?})", s.len())),
                Err(found) => Err(found),
            }
            .map_err(|found| InferenceError::WrongRank {
                model: origin.clone(),
                kind,
                name: name.to_owned(),
                found,
            })
        };
        let input = shape_of("input", &input_name, session.inputs())?;
        let output = shape_of("output", &output_name, session.outputs())?;
        if input[1] != 1 && input[1] >= 0 {
            return Err(InferenceError::InputChannels {
                model: origin,
                name: input_name,
                channels: input[1],
            });
        }
        if output[1] >= 0 && output[1] as usize != d.classes.len() {
            return Err(InferenceError::OutputChannels {
                model: origin,
                name: output_name,
                channels: output[1],
                classes: d.classes.len(),
            });
        }
        let dims = [input[2], input[3], input[4]];
        if (0..3).any(|a| dims[a] >= 0 && dims[a] as usize != d.patch_size[a]) {
            return Err(InferenceError::PatchMismatch {
                model: origin,
                patch: d.patch_size,
                dims,
            });
        }
        Ok(Self {
            session,
            description: d.clone(),
            origin,
            input_name,
            output_name,
            dynamic_batch: input[0] < 0,
        })
    }

    /// The model's description.
    pub fn description(&self) -> &ModelDescription {
        &self.description
    }

    /// Whether the model accepts several windows per call.
    pub fn dynamic_batch(&self) -> bool {
        self.dynamic_batch
    }

    /// Segments a CT: labels on its own grid, with the model's class names.
    pub fn segment(
        &mut self,
        ct: &CtVolume,
        options: &SegmentOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Segmentation, InferenceError> {
        let grid = ModelGrid::new(ct.geometry(), &self.description);
        let shape = grid.shape();
        // Check the budget before resampling, which allocates the model-grid copy.
        self.plan(shape, options)?;
        let hu = grid.sample(ct);
        let channels = self.predict(&hu, shape, options, progress, None)?;
        drop(hu);
        let ids = self.description.ids_by_channel();
        let labels: Vec<u16> = channels.iter().map(|&c| ids[usize::from(c)]).collect();
        let labels = grid.labels_onto_ct(&labels);
        let windows = self.plan(shape, options)?.windows;
        Ok(Segmentation {
            labels,
            names: self.description.label_names(),
            model_shape: shape,
            windows,
        })
    }

    /// Windows and memory for a model-grid shape; errors when over the budget.
    pub fn plan(
        &self,
        shape: [usize; 3],
        options: &SegmentOptions,
    ) -> Result<Plan, InferenceError> {
        let d = &self.description;
        let step = options.step_fraction.unwrap_or(d.step_fraction);
        if !(step > 0.0 && step <= 1.0) {
            return Err(InferenceError::Options(format!(
                "the window step {step} must be in (0, 1]"
            )));
        }
        if options.batch_size == 0 {
            return Err(InferenceError::Options(
                "the batch size must be at least 1".into(),
            ));
        }
        let patch = d.patch_size;
        let (before, after) = window::padding(shape, patch);
        let padded: [usize; 3] = std::array::from_fn(|a| shape[a] + before[a] + after[a]);
        let starts = window::window_starts(padded, patch, step);
        let windows = starts.iter().map(Vec::len).product();
        let classes = d.classes.len();
        let batch = if self.dynamic_batch {
            options.batch_size
        } else {
            1
        };
        let patch_voxels: usize = patch.iter().product();
        let slab = patch[0].saturating_mul(padded[1]).saturating_mul(padded[2]);
        let floats = [
            shape.iter().product::<usize>(),  // HU on the model grid
            padded.iter().product::<usize>(), // normalised, padded
            classes.saturating_add(1).saturating_mul(slab), // accumulator and weights
            patch_voxels
                .saturating_mul(batch)
                .saturating_mul(2 * classes + 2), // window I/O
        ]
        .iter()
        .fold(0usize, |a, &b| a.saturating_add(b));
        let bytes = floats
            .saturating_mul(4)
            .saturating_add(shape.iter().product::<usize>().saturating_mul(3)); // labels
        if bytes > options.max_memory_bytes {
            return Err(InferenceError::TooLarge {
                shape: padded,
                classes,
                needed_mib: bytes >> 20,
                limit_mib: options.max_memory_bytes >> 20,
            });
        }
        Ok(Plan {
            padded,
            pad_before: before,
            starts,
            windows,
            batch,
            bytes,
        })
    }

    /// The sliding window on an array already on the model grid (`hu`, HU, array order,
    /// `shape` slowest first): the arg-max channel per voxel. `logits`, when given, receives
    /// each finished plane of the weighted-average logits (`[channel][y][x]`, unpadded) with
    /// its index along axis 0, in order.
    pub fn predict(
        &mut self,
        hu: &[f32],
        shape: [usize; 3],
        options: &SegmentOptions,
        progress: &mut dyn FnMut(Progress),
        mut logits: Option<&mut LogitsSink<'_>>,
    ) -> Result<Vec<u8>, InferenceError> {
        if hu.len() != shape.iter().product::<usize>() {
            return Err(InferenceError::Options(format!(
                "{} values do not fill a {shape:?} array",
                hu.len()
            )));
        }
        let plan = self.plan(shape, options)?;
        let d = &self.description;
        let classes = d.classes.len();
        if classes > 256 {
            return Err(InferenceError::Options(format!(
                "{classes} classes: at most 256 are supported"
            )));
        }
        let mirror = match &options.mirror_axes {
            Some(axes) if axes.iter().any(|&a| a > 2) => {
                return Err(InferenceError::Options(format!(
                    "mirror axes {axes:?}: array axes are 0, 1, 2"
                )))
            }
            Some(axes) => flip_combinations(axes),
            None => vec![[false; 3]],
        };
        let patch = d.patch_size;
        let [p0, p1, p2] = plan.padded;
        let [t0, t1, t2] = patch;
        let tv = t0 * t1 * t2;

        // 2-3: normalise and pad (nnU-Net pads after normalising, with 0).
        // The z-score's statistics come from the unpadded image, as nnU-Net's (it pads later).
        let [lo, hi, mean, std] = d.normalization.parameters(hu);
        let b = plan.pad_before;
        let mut data = vec![0.0f32; p0 * p1 * p2];
        for z in 0..shape[0] {
            for y in 0..shape[1] {
                let src = &hu[(z * shape[1] + y) * shape[2]..][..shape[2]];
                let dst = &mut data[((z + b[0]) * p1 + y + b[1]) * p2 + b[2]..][..shape[2]];
                for (o, &v) in dst.iter_mut().zip(src) {
                    *o = (v.clamp(lo, hi) - mean) / std;
                }
            }
        }

        // 4: windows, one patch-deep slab of accumulators at a time.
        let g = window::gaussian_importance(patch);
        let slab = t0 * p1 * p2;
        let mut acc = vec![0.0f32; classes * slab];
        let mut wsum = vec![0.0f32; slab];
        let mut out = vec![0u8; shape.iter().product()];
        let mut plane_logits = vec![
            0.0f32;
            if logits.is_some() {
                classes * shape[1] * shape[2]
            } else {
                0
            }
        ];
        let batch = plan.batch;
        let mut input = vec![0.0f32; batch * tv];
        // Mirrored predictions are summed here before they are weighted; without mirroring,
        // windows are weighted straight out of ONNX Runtime's output, with no copy of it.
        let mut pred = vec![
            0.0f32;
            if mirror.len() > 1 {
                batch * classes * tv
            } else {
                0
            }
        ];
        let mut done = 0;
        let [starts0, starts1, starts2] = &plan.starts;
        let yx: Vec<(usize, usize)> = starts1
            .iter()
            .flat_map(|&y| starts2.iter().map(move |&x| (y, x)))
            .collect();
        let slab_dims = SlabDims {
            patch,
            padded_yx: [p1, p2],
            classes,
        };
        let mut base = 0usize;
        for (zi, &z) in starts0.iter().enumerate() {
            debug_assert_eq!(z, base);
            for chunk in yx.chunks(batch) {
                if options
                    .cancel
                    .as_ref()
                    .is_some_and(|c| c.load(Ordering::Relaxed))
                {
                    return Err(InferenceError::Cancelled);
                }
                let n = chunk.len();
                let windows: Vec<[usize; 3]> = chunk.iter().map(|&(y, x)| [z, y, x]).collect();
                let run_shape = [n, 1, t0, t1, t2];
                if let [flip] = mirror.as_slice() {
                    debug_assert_eq!(*flip, [false; 3]);
                    slab_dims.cut(&data, &windows, *flip, &mut input);
                    self.run(&input[..n * tv], run_shape, classes, |o| {
                        slab_dims.accumulate(o, &windows, &g, &mut acc, &mut wsum);
                    })?;
                } else {
                    for (fi, &flip) in mirror.iter().enumerate() {
                        slab_dims.cut(&data, &windows, flip, &mut input);
                        self.run(&input[..n * tv], run_shape, classes, |o| {
                            slab_dims.unflip_sum(o, flip, fi == 0, &mut pred[..n * classes * tv]);
                        })?;
                    }
                    let k = mirror.len() as f32;
                    pred[..n * classes * tv].iter_mut().for_each(|v| *v /= k);
                    slab_dims.accumulate(&pred, &windows, &g, &mut acc, &mut wsum);
                }
                done += n;
                progress(Progress {
                    windows_done: done,
                    windows_total: plan.windows,
                });
            }
            // 5: planes no later window reaches are final.
            let next = starts0.get(zi + 1).copied().unwrap_or(p0);
            for r in 0..next - base {
                let zp = base + r;
                if zp < b[0] || zp >= b[0] + shape[0] {
                    continue;
                }
                let zo = zp - b[0];
                for yo in 0..shape[1] {
                    for xo in 0..shape[2] {
                        let at = (r * p1 + yo + b[1]) * p2 + xo + b[2];
                        let w = wsum[at];
                        let mut best = 0usize;
                        let mut best_v = f32::NEG_INFINITY;
                        for c in 0..classes {
                            let v = acc[c * slab + at] / w;
                            if v > best_v || c == 0 {
                                best = c;
                                best_v = v;
                            }
                            if !plane_logits.is_empty() {
                                plane_logits[(c * shape[1] + yo) * shape[2] + xo] = v;
                            }
                        }
                        out[(zo * shape[1] + yo) * shape[2] + xo] = best as u8;
                    }
                }
                if let Some(sink) = logits.as_mut() {
                    sink(zo, &plane_logits);
                }
            }
            // Slide the slab: planes [next, base + t0) move to the front, the rest is cleared.
            let shift = (next - base) * p1 * p2;
            for c in 0..=classes {
                let buf = if c < classes {
                    &mut acc[c * slab..][..slab]
                } else {
                    &mut wsum[..]
                };
                if shift < slab {
                    buf.copy_within(shift.., 0);
                    buf[slab - shift..].fill(0.0);
                } else {
                    buf.fill(0.0);
                }
            }
            base = next;
        }
        Ok(out)
    }

    /// One model call; hands `consume` the output, checked to be `[n, classes, D, H, W]`,
    /// where ONNX Runtime put it (no copy).
    fn run<R>(
        &mut self,
        input: &[f32],
        shape: [usize; 5],
        classes: usize,
        consume: impl FnOnce(&[f32]) -> R,
    ) -> Result<R, InferenceError> {
        let origin = &self.origin;
        let err = |message: String| InferenceError::Run {
            model: origin.clone(),
            message,
        };
        let tensor = TensorRef::from_array_view((shape, input)).map_err(|e| err(e.to_string()))?;
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(|e| err(e.to_string()))?;
        let value = outputs
            .get(&self.output_name)
            .ok_or_else(|| err(format!("no output '{}'", self.output_name)))?;
        let (out_shape, data) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| err(e.to_string()))?;
        let expected = [
            shape[0] as i64,
            classes as i64,
            shape[2] as i64,
            shape[3] as i64,
            shape[4] as i64,
        ];
        if out_shape.len() == 5 && out_shape[1] != classes as i64 {
            return Err(InferenceError::OutputChannels {
                model: origin.clone(),
                name: self.output_name.clone(),
                channels: out_shape[1],
                classes,
            });
        }
        if out_shape[..] != expected[..] {
            return Err(err(format!(
                "output '{}' has shape {:?} for an input of {shape:?}; expected {expected:?} (a patch size the network cannot take?)",
                self.output_name,
                &out_shape[..]
            )));
        }
        Ok(consume(data))
    }
}

/// The shapes one window pass works with: the patch, the padded array's rows and planes, the
/// model's classes. Windows are `[z, y, x]` starts in the padded array; the slab of
/// accumulators starts at the windows' `z`.
#[derive(Debug, Clone, Copy)]
struct SlabDims {
    patch: [usize; 3],
    padded_yx: [usize; 2],
    classes: usize,
}

impl SlabDims {
    /// Copies each window of `data` (normalised, padded) into `input`, flipped along the axes
    /// `flip` marks.
    fn cut(&self, data: &[f32], windows: &[[usize; 3]], flip: [bool; 3], input: &mut [f32]) {
        let [t0, t1, t2] = self.patch;
        let [p1, p2] = self.padded_yx;
        let tv = t0 * t1 * t2;
        for (w, &[z, y, x]) in windows.iter().enumerate() {
            let dst = &mut input[w * tv..][..tv];
            for dz in 0..t0 {
                for dy in 0..t1 {
                    let src = &data[((z + dz) * p1 + y + dy) * p2 + x..][..t2];
                    let fz = if flip[0] { t0 - 1 - dz } else { dz };
                    let fy = if flip[1] { t1 - 1 - dy } else { dy };
                    let row = &mut dst[(fz * t1 + fy) * t2..][..t2];
                    if flip[2] {
                        row.iter_mut().rev().zip(src).for_each(|(o, &v)| *o = v);
                    } else {
                        row.copy_from_slice(src);
                    }
                }
            }
        }
    }

    /// Undoes `flip` on the model's output `o` while summing it into `pred`, in the
    /// reference's order (o0 + o1 + ...); `first` overwrites instead of adding.
    fn unflip_sum(&self, o: &[f32], flip: [bool; 3], first: bool, pred: &mut [f32]) {
        let [t0, t1, t2] = self.patch;
        let tv = t0 * t1 * t2;
        for (src, dst) in o.chunks_exact(tv).zip(pred.chunks_exact_mut(tv)) {
            for dz in 0..t0 {
                let fz = if flip[0] { t0 - 1 - dz } else { dz };
                for dy in 0..t1 {
                    let fy = if flip[1] { t1 - 1 - dy } else { dy };
                    let s = &src[(fz * t1 + fy) * t2..][..t2];
                    let r = &mut dst[(dz * t1 + dy) * t2..][..t2];
                    match (first, flip[2]) {
                        (true, false) => r.copy_from_slice(s),
                        (true, true) => {
                            r.iter_mut().zip(s.iter().rev()).for_each(|(r, &v)| *r = v);
                        }
                        (false, false) => {
                            r.iter_mut().zip(s).for_each(|(r, &v)| *r += v);
                        }
                        (false, true) => {
                            r.iter_mut().zip(s.iter().rev()).for_each(|(r, &v)| *r += v);
                        }
                    }
                }
            }
        }
    }

    /// Adds each window's logits (`pred`, `[window][class][D][H][W]`) weighted by the Gaussian
    /// `g` to `acc` (`[class][slab plane][row][column]`), and `g` to `wsum`.
    fn accumulate(
        &self,
        pred: &[f32],
        windows: &[[usize; 3]],
        g: &[f32],
        acc: &mut [f32],
        wsum: &mut [f32],
    ) {
        let [t0, t1, t2] = self.patch;
        let [p1, p2] = self.padded_yx;
        let tv = t0 * t1 * t2;
        let slab = wsum.len();
        for (w, &[_, y, x]) in windows.iter().enumerate() {
            for c in 0..self.classes {
                let p = &pred[(w * self.classes + c) * tv..][..tv];
                let a = &mut acc[c * slab..][..slab];
                for dz in 0..t0 {
                    for dy in 0..t1 {
                        let at = (dz * p1 + y + dy) * p2 + x;
                        let row = (dz * t1 + dy) * t2;
                        for ((a, &p), &g) in a[at..at + t2]
                            .iter_mut()
                            .zip(&p[row..row + t2])
                            .zip(&g[row..row + t2])
                        {
                            *a += p * g;
                        }
                    }
                }
            }
            for dz in 0..t0 {
                for dy in 0..t1 {
                    let at = (dz * p1 + y + dy) * p2 + x;
                    let row = (dz * t1 + dy) * t2;
                    for (a, &g) in wsum[at..at + t2].iter_mut().zip(&g[row..row + t2]) {
                        *a += g;
                    }
                }
            }
        }
    }
}

/// Receives finished planes of logits: index along array axis 0, `[channel][y][x]` values.
pub type LogitsSink<'a> = dyn FnMut(usize, &[f32]) + 'a;

/// What a segmentation of one volume will do.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Padded model-grid shape.
    pub padded: [usize; 3],
    /// Padding before each axis.
    pub pad_before: [usize; 3],
    /// Window starts per axis.
    pub starts: [Vec<usize>; 3],
    /// Windows in all.
    pub windows: usize,
    /// Windows per model call.
    pub batch: usize,
    /// Estimated bytes of the buffers.
    pub bytes: usize,
}

/// Every subset of `axes`, smallest first and in lexicographic order within a size, as the
/// reference builds them with `itertools.combinations`.
fn flip_combinations(axes: &[usize]) -> Vec<[bool; 3]> {
    let mut axes = axes.to_vec();
    axes.sort_unstable();
    axes.dedup();
    let n = axes.len();
    let mut out = Vec::new();
    for size in 0..=n {
        // Index combinations of `size` out of `n`, lexicographic.
        let mut idx: Vec<usize> = (0..size).collect();
        loop {
            let mut f = [false; 3];
            for &i in &idx {
                f[axes[i]] = true;
            }
            out.push(f);
            let Some(pos) = (0..size).rev().find(|&i| idx[i] < n - size + i) else {
                break;
            };
            idx[pos] += 1;
            for i in pos + 1..size {
                idx[i] = idx[i - 1] + 1;
            }
        }
    }
    out
}

fn read_model_file(path: &Path) -> Result<Vec<u8>, InferenceError> {
    model::read_bounded(path, MAX_MODEL_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_come_in_the_reference_order() {
        let f = flip_combinations(&[0, 1, 2]);
        let t = true;
        let n = false;
        assert_eq!(
            f,
            vec![
                [n, n, n],
                [t, n, n],
                [n, t, n],
                [n, n, t],
                [t, t, n],
                [t, n, t],
                [n, t, t],
                [t, t, t]
            ]
        );
        assert_eq!(flip_combinations(&[2]), vec![[n, n, n], [n, n, t]]);
    }
}
