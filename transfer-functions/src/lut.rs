//! The baked lookup table: one row per label id, one column per density bin.

use twinray_volume::{Intensity, Modality};

use crate::palette::{LabelStyles, LABEL_IDS};
use crate::preset::Preset;

/// Lowest density the renderer distinguishes on a CT; anything below reads as this (air).
pub const HU_MIN: f32 = -1024.0;
/// Highest density the renderer distinguishes on a CT (12-bit CT range); denser reads as this.
pub const HU_MAX: f32 = 3071.0;
/// Density bins per row: 4 HU per bin over the 12-bit CT range.
pub const LUT_BINS: usize = 1024;

/// The span of values that the lookup table's bins and the renderer's 16-bit density texture
/// both cover: the two must agree, so both are built from one `DensityRange`.
///
/// A CT always gets [`DensityRange::CT`] (−1024…3071 HU, the 12-bit CT range: its presets sit
/// at fixed HU and 4 HU bins resolve them). Any other image gets its own minimum…maximum, so
/// an MR whose values span 0…800 uses every bin instead of a fifth of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DensityRange {
    /// Value of bin 0 and of texture value 0.
    pub low: f32,
    /// Value of the last bin and of texture value 65535; above `low`.
    pub high: f32,
}

impl DensityRange {
    /// The CT range, −1024…3071 HU.
    pub const CT: Self = Self {
        low: HU_MIN,
        high: HU_MAX,
    };

    /// The range an image is rendered over: [`Self::CT`] for a CT, else its own value range
    /// (widened to at least one unit so a flat image still normalises).
    #[must_use]
    pub fn of(intensity: &Intensity) -> Self {
        match intensity.modality {
            Modality::Ct => Self::CT,
            Modality::Mr => {
                let [low, high] = intensity.range;
                Self {
                    low,
                    high: high.max(low + 1.0),
                }
            }
        }
    }

    /// A value normalised to [0, 1] over the range, as stored in the volume texture.
    #[must_use]
    pub fn normalise(self, value: f32) -> f32 {
        ((value - self.low) / (self.high - self.low)).clamp(0.0, 1.0)
    }

    /// A value as the renderer's R16_UNORM texture stores it.
    #[must_use]
    pub fn to_u16(self, value: f32) -> u16 {
        (self.normalise(value) * 65535.0).round() as u16
    }

    /// The value at the centre of lookup-table bin `bin`.
    #[must_use]
    pub fn value_of_bin(self, bin: usize) -> f32 {
        self.low + bin as f32 * self.bin_width()
    }

    /// The distance between neighbouring bins, in the image's units.
    #[must_use]
    pub fn bin_width(self) -> f32 {
        (self.high - self.low) / (LUT_BINS - 1) as f32
    }
}
/// Rows: label ids 0..=255, row 0 for unlabelled tissue.
pub const LUT_ROWS: usize = LABEL_IDS;

/// RGBA per (label, density bin), with the opacity per unit distance (not yet step-corrected;
/// the unit is [`Lut::opacity_unit_mm_on`]).
///
/// Bin `b` holds the value at `low + b · (high − low) / (LUT_BINS − 1)` of its [`DensityRange`],
/// so a density normalised to [0, 1] over that range indexes bin centres exactly when the GPU
/// samples at `x = v · (BINS − 1) / BINS + 0.5 / BINS` with linear filtering.
#[derive(Debug, Clone, PartialEq)]
pub struct Lut {
    texels: Vec<[f32; 4]>,
    /// Per row, how many bins before index `b` have opacity > 0 (`LUT_BINS + 1` entries a row),
    /// so "is anything in this density range visible" is two look-ups.
    opaque_before: Vec<u32>,
    /// The preset's [`Preset::opacity_unit_mm`]: what distance the opacities are per.
    opacity_unit_mm: Option<f32>,
    /// The values the bins cover.
    range: DensityRange,
}

impl Lut {
    /// Bakes a preset and label styles over `range` (the volume's: see [`DensityRange::of`]).
    pub fn bake(preset: &Preset, labels: &LabelStyles, range: DensityRange) -> Self {
        let base: Vec<([f32; 3], f32)> = (0..LUT_BINS)
            .map(|b| {
                let hu = range.value_of_bin(b);
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
            range,
        }
    }

    /// The values the bins cover.
    pub fn range(&self) -> DensityRange {
        self.range
    }

    /// The distance in mm the opacities are per, on a volume whose smallest voxel spacing is
    /// `smallest_spacing_mm` (as [`Preset::opacity_unit_mm_on`] of the preset baked).
    pub fn opacity_unit_mm_on(&self, smallest_spacing_mm: f64) -> f64 {
        self.opacity_unit_mm.map_or(smallest_spacing_mm, f64::from)
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
        let n = |hu| DensityRange::CT.normalise(hu);
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

    #[test]
    fn an_mr_range_spreads_the_bins_over_the_image() {
        let mr = twinray_volume::Intensity::measure(Modality::Mr, &[-47.0, 100.0, 833.0], None);
        let range = DensityRange::of(&mr);
        assert_eq!((range.low, range.high), (-47.0, 833.0));
        assert_eq!(range.value_of_bin(LUT_BINS - 1), 833.0);
        assert_eq!(range.to_u16(833.0), 65535);
        assert_eq!(range.to_u16(-47.0), 0);
        let ct = twinray_volume::Intensity::measure(Modality::Ct, &[-1000.0, 2000.0], None);
        assert_eq!(
            DensityRange::of(&ct),
            DensityRange::CT,
            "CT presets sit at fixed HU"
        );
        // The same preset baked over another range puts the same value in another bin.
        let mut tf = bone();
        tf.range = range;
        let lut = tf.bake();
        assert_eq!(lut.range(), range);
        let bin = |v: f32| ((v - range.low) / range.bin_width()).round() as usize;
        assert!(lut.texel(0, bin(500.0))[3] > 0.0, "bone ramp above 150");
        assert_eq!(lut.texel(0, bin(140.0))[3], 0.0, "nothing below 150");
    }
}
