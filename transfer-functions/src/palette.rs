//! Label names and display colours, and the per-label style a user edits.

/// Number of label ids a style table covers (ids 0..=255; 0 is "no label").
pub const LABEL_IDS: usize = 256;

/// A label's name and default colour.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelInfo {
    /// Label id as stored in label maps.
    pub id: u16,
    /// Machine name, e.g. `vertebrae_L1`.
    pub name: String,
    /// Default colour, linear RGB in [0, 1].
    pub rgb: [f32; 3],
}

/// A table of label names and colours.
#[derive(Debug, Clone, PartialEq)]
pub struct Palette {
    labels: Vec<LabelInfo>,
}

impl Palette {
    /// TotalSegmentator's 117 `total` classes with distinct colours (see `palettes/`).
    pub fn totalsegmentator() -> Self {
        let text = include_str!("../palettes/totalsegmentator.tsv");
        // The shipped table is checked by a unit test; a malformed row is simply skipped.
        let labels = text
            .lines()
            .skip(1)
            .filter_map(|line| {
                let f: Vec<&str> = line.split('\t').collect();
                let [id, name, r, g, b] = f.as_slice() else {
                    return None;
                };
                let c = |s: &str| s.parse::<f32>().ok().map(|v| v / 255.0);
                Some(LabelInfo {
                    id: id.parse().ok()?,
                    name: (*name).to_owned(),
                    rgb: [c(r)?, c(g)?, c(b)?],
                })
            })
            .collect();
        Self { labels }
    }

    /// TotalSegmentator's 50 `total_mr` classes (its MR task; ids differ from `total`'s, e.g.
    /// 19 is all vertebrae as one label and 23 the aorta). Names and ids: TotalSegmentator's
    /// `map_to_binary.py`, `class_map["total_mr"]` (wasserth/TotalSegmentator @ 0e65a448,
    /// Apache-2.0), in `palettes/totalsegmentator_total_mr.tsv`. Colours: the `total` class
    /// of the same name, so a liver looks the same on CT and MR; the MR-only classes
    /// (`vertebrae`, `intervertebral_discs`, …) take the colour of their nearest `total`
    /// relative, or a golden-angle hue.
    pub fn totalsegmentator_mr() -> Self {
        let ct = Self::totalsegmentator();
        let relative = |name: &str| match name {
            "vertebrae" => Some("vertebrae_L1"),
            "intervertebral_discs" => Some("costal_cartilages"),
            _ => None,
        };
        let labels = include_str!("../palettes/totalsegmentator_total_mr.tsv")
            .lines()
            .skip(1)
            .filter_map(|line| {
                let (id, name) = line.split_once('\t')?;
                let id: u16 = id.trim().parse().ok()?;
                let name = name.trim();
                let rgb = ct
                    .id_of(name)
                    .or_else(|| relative(name).and_then(|r| ct.id_of(r)))
                    .and_then(|ct_id| ct.get(ct_id))
                    .map_or_else(|| golden_angle_colour(usize::from(id)), |l| l.rgb);
                Some(LabelInfo {
                    id,
                    name: name.to_owned(),
                    rgb,
                })
            })
            .collect();
        Self { labels }
    }

    /// All labels, by increasing id.
    pub fn labels(&self) -> &[LabelInfo] {
        &self.labels
    }

    /// The label with this id, if the palette has one.
    pub fn get(&self, id: u16) -> Option<&LabelInfo> {
        self.labels.iter().find(|l| l.id == id)
    }

    /// The id of the label with this name.
    pub fn id_of(&self, name: &str) -> Option<u16> {
        self.labels.iter().find(|l| l.name == name).map(|l| l.id)
    }
}

/// How one label is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelStyle {
    /// Linear RGB in [0, 1]; replaces the preset's colour for voxels with this label.
    pub rgb: [f32; 3],
    /// Multiplies the preset's opacity for voxels with this label.
    pub opacity: f32,
    /// Hidden labels contribute nothing to the image.
    pub visible: bool,
}

/// Styles for every label id; id 0 is unlabelled tissue and keeps the preset's own colours.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelStyles {
    styles: Vec<LabelStyle>,
}

impl LabelStyles {
    /// Every id visible at full opacity, coloured from the palette; ids it lacks get a
    /// golden-angle hue so they still differ from their neighbours.
    pub fn from_palette(palette: &Palette) -> Self {
        let styles = (0..LABEL_IDS)
            .map(|id| {
                let rgb = palette
                    .get(id as u16)
                    .map_or_else(|| golden_angle_colour(id), |l| l.rgb);
                LabelStyle {
                    rgb,
                    opacity: 1.0,
                    visible: true,
                }
            })
            .collect();
        Self { styles }
    }

    /// The style of a label id.
    pub fn get(&self, id: u8) -> &LabelStyle {
        &self.styles[usize::from(id)]
    }

    /// Shows or hides a label.
    pub fn set_visible(&mut self, id: u8, visible: bool) {
        self.styles[usize::from(id)].visible = visible;
    }

    /// Recolours a label.
    pub fn set_colour(&mut self, id: u8, rgb: [f32; 3]) {
        self.styles[usize::from(id)].rgb = rgb;
    }

    /// Sets a label's opacity factor (clamped to [0, 1]).
    pub fn set_opacity(&mut self, id: u8, opacity: f32) {
        self.styles[usize::from(id)].opacity = opacity.clamp(0.0, 1.0);
    }
}

fn golden_angle_colour(id: usize) -> [f32; 3] {
    let hue = (id as f32 * 0.381_966) % 1.0;
    hsv_to_rgb(hue, 0.6, 0.9)
}

fn hsv_to_rgb(h: f32, s: f32, v: f32) -> [f32; 3] {
    let i = (h * 6.0).floor();
    let f = h * 6.0 - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match (i as i32).rem_euclid(6) {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totalsegmentator_palette_has_all_117_classes_with_distinct_colours() {
        let p = Palette::totalsegmentator();
        assert_eq!(p.labels().len(), 117);
        assert_eq!(p.get(5).map(|l| l.name.as_str()), Some("liver"));
        assert_eq!(p.id_of("vertebrae_T12"), Some(32));
        assert_eq!(p.id_of("costal_cartilages"), Some(117));
        // Adjacent vertebrae must be told apart at a glance.
        for id in 26..50 {
            let (a, b) = (p.get(id).expect("id").rgb, p.get(id + 1).expect("id").rgb);
            let d: f32 = a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum();
            assert!(d > 0.3, "labels {id} and {} look alike", id + 1);
        }
    }

    #[test]
    fn the_mr_table_has_its_own_ids_and_the_ct_colours_by_name() {
        let mr = Palette::totalsegmentator_mr();
        let ct = Palette::totalsegmentator();
        assert_eq!(mr.labels().len(), 50);
        assert_eq!(mr.id_of("liver"), Some(5));
        assert_eq!(mr.id_of("aorta"), Some(23), "52 in the CT table");
        assert_eq!(mr.id_of("vertebrae"), Some(19));
        let colour = |p: &Palette, name| p.get(p.id_of(name).expect("name")).expect("id").rgb;
        assert_eq!(colour(&mr, "aorta"), colour(&ct, "aorta"));
    }
}
