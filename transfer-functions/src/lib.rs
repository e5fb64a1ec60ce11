//! Transfer functions: how image intensities (HU on a CT, scanner units on an MR) and
//! anatomical labels become colour and opacity.
//!
//! A [`Preset`] is a readable data file (TOML, in `presets/`) with a colour ramp, an opacity ramp,
//! a blend mode and shading parameters. A [`LabelStyles`] table says how each label looks (colour,
//! opacity factor, visibility). [`TransferFunction::bake`] turns both into a [`Lut`]: one row per
//! label id, row 0 for unlabelled tissue, so that hiding or recolouring a label only rewrites a
//! small table on the GPU instead of re-uploading the volume.
//!
//! [`slicer`] imports 3D Slicer's presets (`presets.xml`, `.vp.json`, `.vp`) as [`Preset`]s:
//! [`Preset::load`] takes `presets.xml:CT-Bone` wherever a preset name is accepted.

mod lut;
mod palette;
mod preset;
pub mod slicer;

pub use lut::{DensityRange, Lut, HU_MAX, HU_MIN, LUT_BINS, LUT_ROWS};
pub use palette::{LabelInfo, LabelStyle, LabelStyles, Palette};
pub use preset::{
    Blend, ColourPoint, OpacityPoint, Placement, Preset, PresetError, PresetSource, Shading,
};

/// A preset plus per-label styles: everything the renderer needs to colour a sample.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferFunction {
    /// The HU ramps, blend mode and shading.
    pub preset: Preset,
    /// Colour, opacity and visibility per label id.
    pub labels: LabelStyles,
    /// The values the lookup table spans: the volume's ([`DensityRange::of`]); the renderer
    /// normalises its density texture over the same range.
    pub range: DensityRange,
}

impl TransferFunction {
    /// A preset with the TotalSegmentator palette for labels, over the CT range.
    pub fn new(preset: Preset) -> Self {
        Self {
            preset,
            labels: LabelStyles::from_palette(&Palette::totalsegmentator()),
            range: DensityRange::CT,
        }
    }

    /// Bakes both ramps and every label row into a lookup table over [`Self::range`].
    pub fn bake(&self) -> Lut {
        Lut::bake(&self.preset, &self.labels, self.range)
    }
}
