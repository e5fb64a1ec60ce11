//! The baked lookup table: one row per label id, one column per density bin.

use crate::palette::{LabelStyles, LABEL_IDS};
use crate::preset::Preset;

/// Lowest density the renderer distinguishes; anything below reads as this (air).
pub const HU_MIN: f32 = -1024.0;
/// Highest density the renderer distinguishes (12-bit CT range); denser reads as this.
pub const HU_MAX: f32 = 3071.0;
/// Density bins per row: 4 HU per bin over the 12-bit CT range.
pub const LUT_BINS: usize = 1024;
/// Rows: label ids 0..=255, row 0 for unlabelled tissue.
pub const LUT_ROWS: usize = LABEL_IDS;

/// RGBA per (label, density bin), with the opacity per unit distance (not yet step-corrected;
/// the unit is [`Lut::opacity_unit_mm_on`]).
///
/// Bin `b` holds the value at `HU_MIN + b · (HU_MAX − HU_MIN) / (LUT_BINS − 1)`, so a density
/// normalised to [0, 1] over `[HU_MIN, HU_MAX]` indexes bin centres exactly when the GPU samples
/// at `x = v · (BINS − 1) / BINS + 0.5 / BINS` with linear filtering.
#[derive(Debug, Clone, PartialEq)]
pub struct Lut {
    texels: Vec<[f32; 4]>,
    /// Per row, how many bins before index `b` have opacity > 0 (`LUT_BINS + 1` entries a row),
    /// so "is anything in this density range visible" is two look-ups.
    opaque_before: Vec<u32>,
    /// The preset's [`Preset::opacity_unit_mm`]: what distance the opacities are per.
    opacity_unit_mm: Option<f32>,
}

impl Lut {
    /// Bakes a preset and label styles.
    pub fn bake(preset: &Preset, labels: &LabelStyles) -> Self {
        let base: Vec<([f32; 3], f32)> = (0..LUT_BINS)
            .map(|b| {
                let hu = Self::hu_of_bin(b);
                (preset.colour_at(hu), preset.opacity_at(hu))
            })
            .collect();
        let mut texels = Vec::with_capacity(LUT_ROWS * LUT_BINS);
        for row in 0..LUT_ROWS {
            let style = labels.get(row as u8);
            for &(rgb, alpha) in &base {
                let texel = if row == 0 {
                    // Unlabelled tissue keeps the preset's colours; label 0 can still be hidden.
                    let a = if style.visible {
                        alpha * style.opacity
                    } else {
                        0.0
                    };
                    [rgb[0], rgb[1], rgb[2], a]
                } else if style.visible {
                    let c = style.rgb;
                    [c[0], c[1], c[2], alpha * style.opacity]
                } else {
                    [0.0; 4]
                };
                texels.push(texel);
            }
        }
        let mut opaque_before = Vec::with_capacity(LUT_ROWS * (LUT_BINS + 1));
        for row in texels.chunks_exact(LUT_BINS) {
            let mut count = 0u32;
            opaque_before.push(0);
            for t in row {
                count += u32::from(t[3] > 0.0);
                opaque_before.push(count);
            }
        }
        Self {
            texels,
            opaque_before,
            opacity_unit_mm: preset.opacity_unit_mm,
        }
    }

    /// The distance in mm the opacities are per, on a volume whose smallest voxel spacing is
    /// `smallest_spacing_mm` (as [`Preset::opacity_unit_mm_on`] of the preset baked).
    pub fn opacity_unit_mm_on(&self, smallest_spacing_mm: f64) -> f64 {
        self.opacity_unit_mm.map_or(smallest_spacing_mm, f64::from)
    }

    /// Density in HU at the centre of a bin.
    pub fn hu_of_bin(bin: usize) -> f32 {
        HU_MIN + bin as f32 * (HU_MAX - HU_MIN) / (LUT_BINS - 1) as f32
    }

    /// Density normalised to [0, 1] over `[HU_MIN, HU_MAX]`, as stored in the volume texture.
    pub fn normalise_hu(hu: f32) -> f32 {
        ((hu - HU_MIN) / (HU_MAX - HU_MIN)).clamp(0.0, 1.0)
    }

    /// RGBA texels, row-major: `LUT_ROWS` rows of `LUT_BINS`.
    pub fn texels(&self) -> &[[f32; 4]] {
        &self.texels
    }

    /// The texel for a label row and bin.
    pub fn texel(&self, row: u8, bin: usize) -> [f32; 4] {
        self.texels[usize::from(row) * LUT_BINS + bin.min(LUT_BINS - 1)]
    }

    /// Whether any sample of `row` with a normalised density in `[lo, hi]` can have opacity,
    /// allowing for the linear filtering between neighbouring bins.
    pub fn row_visible_in(&self, row: u8, lo: f32, hi: f32) -> bool {
        let scale = (LUT_BINS - 1) as f32;
        let first = ((lo.clamp(0.0, 1.0) * scale).floor() as usize).min(LUT_BINS - 1);
        let last = ((hi.clamp(0.0, 1.0) * scale).ceil() as usize).min(LUT_BINS - 1);
        let base = usize::from(row) * (LUT_BINS + 1);
        self.opaque_before[base + last + 1] > self.opaque_before[base + first]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Palette, TransferFunction};

    fn bone() -> TransferFunction {
        TransferFunction::new(Preset::load("ct-bone").expect("ct-bone"))
    }

    #[test]
    fn rows_follow_preset_and_label_styles() {
        let mut tf = bone();
        let bin_1000hu = ((1000.0 - HU_MIN) / (HU_MAX - HU_MIN) * (LUT_BINS - 1) as f32) as usize;
        let lut = tf.bake();
        let unlabelled = lut.texel(0, bin_1000hu);
        assert!(unlabelled[3] > 0.5, "bone is opaque in row 0");
        let l1 = lut.texel(31, bin_1000hu);
        let palette = Palette::totalsegmentator();
        assert_eq!(&l1[..3], &palette.get(31).expect("L1").rgb[..]);
        assert_eq!(l1[3], unlabelled[3]);

        tf.labels.set_visible(31, false);
        let hidden = tf.bake();
        assert_eq!(hidden.texel(31, bin_1000hu), [0.0; 4]);
        assert_eq!(hidden.texel(32, bin_1000hu), lut.texel(32, bin_1000hu));
    }

    #[test]
    fn visibility_ranges_answer_for_skipping() {
        let lut = bone().bake();
        let n = Lut::normalise_hu;
        assert!(
            !lut.row_visible_in(0, n(-1000.0), n(100.0)),
            "air to soft tissue is empty"
        );
        assert!(
            lut.row_visible_in(0, n(-1000.0), n(400.0)),
            "range reaching bone is not"
        );
        let mut tf = bone();
        tf.labels.set_visible(0, false);
        assert!(!tf.bake().row_visible_in(0, 0.0, 1.0));
    }
}
