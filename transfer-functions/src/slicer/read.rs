//! Reading Slicer's three preset formats into [`VolumeProperty`]s, quirks and all (see the
//! parent module for what Slicer does and why).

use std::path::Path;

use serde_json::{Map, Value};

use super::{ControlPoint, Function, Interpolation, VolumeProperty};

/// Which of Slicer's preset files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `presets.xml` or a scene (`.mrml`): `VolumeProperty` elements.
    Xml,
    /// `.vp.json`: Slicer's JSON volume property (`volume-property-schema-v1.0.0`).
    Json,
    /// `.vp`: the nine-line text of Slicer before 5.9.
    Vp,
}

impl Format {
    /// The format of a preset file by its name (`.xml`, `.mrml`, `.json`, `.vp`), else by its
    /// first character (`<` XML, `{` JSON); `None` for twinray's own `.toml` and anything else.
    pub fn of(path: &Path, text: &str) -> Option<Self> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        if name.ends_with(".toml") {
            None
        } else if name.ends_with(".xml") || name.ends_with(".mrml") {
            Some(Self::Xml)
        } else if name.ends_with(".json") {
            Some(Self::Json)
        } else if name.ends_with(".vp") {
            Some(Self::Vp)
        } else {
            match text.trim_start().chars().next() {
                Some('<') => Some(Self::Xml),
                Some('{') => Some(Self::Json),
                _ => None,
            }
        }
    }
}

/// A preset's name and the preset, or what is wrong with it.
pub(super) type Entry = (String, Result<VolumeProperty, String>);

/// The presets of a file; an error only when the file as a whole cannot be read as `format`.
pub(super) fn entries(text: &str, path: &Path, format: Format) -> Result<Vec<Entry>, String> {
    match format {
        Format::Xml => xml_entries(text),
        Format::Json => json_entries(text, &single_name(path)),
        Format::Vp => {
            let name = single_name(path);
            let property = vp_property(text, &name);
            Ok(vec![(name, property)])
        }
    }
}

/// The name of the one preset in a `.vp.json` or `.vp` file: the file's name without those.
fn single_name(path: &Path) -> String {
    let file = path
        .file_name()
        .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
    let lower = file.to_ascii_lowercase();
    let keep = [".vp.json", ".json", ".vp"]
        .iter()
        .find(|ext| lower.ends_with(*ext))
        .map_or(file.len(), |ext| file.len() - ext.len());
    file[..keep].to_owned()
}

/// Shading as VTK's `vtkVolumeProperty` defaults it, before a file says otherwise.
struct Lighting {
    shade: bool,
    ambient: f64,
    diffuse: f64,
    specular: f64,
    specular_power: f64,
}

impl Default for Lighting {
    fn default() -> Self {
        Self {
            shade: false,
            ambient: 0.1,
            diffuse: 0.7,
            specular: 0.2,
            specular_power: 10.0,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Numbers and functions as Slicer reads them.

/// The longest prefix of `text` that C's `strtod` reads as a decimal number, and its length in
/// bytes: `-250.0.0` gives −250 (6 bytes), `1e5x` 100000, `abc` nothing.
fn number_prefix(text: &str) -> Option<(f64, usize)> {
    let b = text.as_bytes();
    let digits_from = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut end = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let int_end = digits_from(end);
    let mut digits = int_end - end;
    end = int_end;
    if b.get(end) == Some(&b'.') {
        let frac_end = digits_from(end + 1);
        if digits > 0 || frac_end > end + 1 {
            digits += frac_end - end - 1;
            end = frac_end;
        }
    }
    if digits == 0 {
        return None;
    }
    if matches!(b.get(end), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(b.get(end + 1), Some(b'+' | b'-')));
        let exp_end = digits_from(end + 1 + sign);
        if exp_end > end + 1 + sign {
            end = exp_end;
        }
    }
    text[..end].parse().ok().map(|x| (x, end))
}

/// One number of a function string, read as Slicer's `atof` reads it (junk after the number
/// is ignored, with a note); `what` names the attribute in errors and notes.
fn atof(token: &str, what: &str, notes: &mut Vec<String>) -> Result<f64, String> {
    let Some((x, len)) = number_prefix(token) else {
        return Err(format!("{what}: '{token}' is not a number"));
    };
    if !x.is_finite() {
        return Err(format!("{what}: '{token}' is not a finite number"));
    }
    if len < token.len() {
        if x == 0.0 && token[len..].starts_with(['x', 'X']) {
            return Err(format!(
                "{what}: '{token}' is a hexadecimal number, which twinray does not read"
            ));
        }
        notes.push(format!(
            "{what}: '{token}' read as {x} (what follows the number is ignored, as in Slicer)"
        ));
    }
    Ok(x)
}

/// The numbers an input stream (`ss >> value`) reads from `text`, at most `n`: it stops where
/// a number ends, so `-250.0.0 1550.0` reads as −250, then `.0`, i.e. 0.
fn stream_numbers(text: &str, n: usize) -> Vec<f64> {
    let mut rest = text;
    let mut out = Vec::new();
    while out.len() < n {
        rest = rest.trim_start();
        let Some((x, len)) = number_prefix(rest) else {
            break;
        };
        out.push(x);
        rest = &rest[len..];
    }
    out
}

/// A function string `"N x v… x v…"` (`N` counts the numbers; `1 + M` per point for `M`
/// values), as `vtkMRMLVolumePropertyNode` reads it, shifted to increasing x.
fn function_from_string<const M: usize>(
    text: &str,
    what: &str,
    notes: &mut Vec<String>,
) -> Result<Function<M>, String> {
    let stride = M + 1;
    let mut tokens = text.split_ascii_whitespace();
    let Some(count_token) = tokens.next() else {
        return Ok(Function::default());
    };
    let count: usize = count_token.parse().map_err(|_| {
        format!("{what} must start with how many numbers follow, not '{count_token}'")
    })?;
    if !count.is_multiple_of(stride) {
        return Err(format!(
            "{what} announces {count} numbers, which is not {stride} per point (x and {})",
            if M == 1 { "a value" } else { "r g b" }
        ));
    }
    let mut numbers = Vec::with_capacity(count.min(1 << 16));
    for k in 0..count {
        let token = tokens
            .next()
            .ok_or_else(|| format!("{what} announces {count} numbers but has {k}"))?;
        numbers.push(atof(token, what, notes)?);
    }
    let extra = tokens.count();
    if extra > 0 {
        notes.push(format!(
            "{what}: {extra} number(s) after the {count} announced are ignored, as in Slicer"
        ));
    }
    let points = numbers
        .chunks_exact(stride)
        .map(|c| ControlPoint {
            x: c[0],
            value: std::array::from_fn(|i| c[1 + i]),
            midpoint: 0.5,
            sharpness: 0.0,
        })
        .collect();
    increasing(points, what, notes)
}

/// VTK's `VTK_DOUBLE_MIN`, where Slicer starts the shift.
const VTK_DOUBLE_MIN: f64 = -1.0e299;

/// The x 10 single-precision steps above `x` (from the smallest normal float at 0): what Slicer
/// keeps between neighbouring points so that they stay apart through float32 conversions
/// (`vtkMRMLVolumePropertyNode::NextHigher`).
fn next_higher(x: f64) -> f64 {
    let mut f = x as f32;
    if f == 0.0 {
        f = f32::MIN_POSITIVE;
    }
    for _ in 0..10 {
        f = f.next_up();
    }
    f64::from(f)
}

/// Slicer's shift (`vtkMRMLVolumePropertyNode::HigherAndUnique`), in the points' order: each x
/// becomes at least [`next_higher`] of the previous point's, so a repeated x keeps both points
/// (a step) and a lower x moves up to just after the point before it. Points beyond ±1e30
/// (which no image value reaches and twinray's presets cannot hold) are refused.
fn increasing<const M: usize>(
    mut points: Vec<ControlPoint<M>>,
    what: &str,
    notes: &mut Vec<String>,
) -> Result<Function<M>, String> {
    let mut previous = VTK_DOUBLE_MIN;
    for p in &mut points {
        if p.x.abs() > 1e30 {
            return Err(format!("{what}: x = {} is out of range", p.x));
        }
        let x = p.x.max(previous).max(next_higher(previous));
        if x != p.x {
            notes.push(format!(
                "{what}: the point at x = {} follows one at x = {}: shifted to {}, just after \
                 it, as Slicer does",
                readable(p.x),
                readable(previous),
                readable(x)
            ));
        }
        p.x = x;
        previous = x;
    }
    Ok(Function { points })
}

/// A number for a note: plain, or in scientific notation when tiny (a point shifted off 0
/// lands near 1e-38) or huge.
fn readable(x: f64) -> String {
    if x != 0.0 && !(1e-4..1e9).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        x.to_string()
    }
}

/// A function that must have points.
fn required<const M: usize>(f: Function<M>, what: &str) -> Result<Function<M>, String> {
    if f.points.is_empty() {
        Err(format!("{what} has no points"))
    } else {
        Ok(f)
    }
}

/// An effective range string, read as Slicer's XML reader does (an input stream; see
/// [`stream_numbers`]); `[0, -1]` (not set) when it has fewer than two numbers.
fn effective_range(text: &str, notes: &mut Vec<String>) -> [f64; 2] {
    let read = stream_numbers(text, 2);
    let [lo, hi] = read[..] else {
        notes.push(format!(
            "effectiveRange '{text}' is not two numbers: taken as not set"
        ));
        return [0.0, -1.0];
    };
    let tokenwise: Vec<f64> = text
        .split_ascii_whitespace()
        .filter_map(|t| number_prefix(t).map(|(x, _)| x))
        .take(2)
        .collect();
    if tokenwise != read {
        notes.push(format!(
            "effectiveRange '{}' reads as {lo} {hi} in Slicer (its number reader stops at the \
             second '.'); it only sets the extent of Slicer's editor",
            text.trim()
        ));
    }
    if lo > hi {
        notes.push(format!(
            "effectiveRange {lo} {hi} is not set (minimum above maximum): computed from the \
             functions, as Slicer does"
        ));
    }
    [lo, hi]
}

// ---------------------------------------------------------------------------------------------
// presets.xml and scenes.

fn xml_entries(text: &str) -> Result<Vec<Entry>, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("not valid XML: {e}"))?;
    let entries: Vec<Entry> = doc
        .descendants()
        .filter(|n| n.has_tag_name("VolumeProperty"))
        .enumerate()
        .map(|(i, node)| {
            let name = node
                .attribute("name")
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map_or_else(|| format!("VolumeProperty{}", i + 1), str::to_owned);
            let property = xml_property(node, &name);
            (name, property)
        })
        .collect();
    if entries.is_empty() {
        return Err(
            "it has no VolumeProperty element (not a 3D Slicer presets.xml or scene)".into(),
        );
    }
    Ok(entries)
}

fn xml_property(node: roxmltree::Node, name: &str) -> Result<VolumeProperty, String> {
    let mut notes = Vec::new();
    let function_attr = |key: &str| {
        node.attribute(key).ok_or_else(|| {
            format!(
                "it has no {key} attribute (scenes saved by Slicer 5.9 or later keep the \
                 functions in a .vp.json file beside the scene: give that file)"
            )
        })
    };
    let number = |key: &str, default: f64| -> Result<f64, String> {
        node.attribute(key).map_or(Ok(default), |v| {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| format!("{key}=\"{v}\" is not a number"))
        })
    };
    let integer = |key: &str, default: i64| -> Result<i64, String> {
        node.attribute(key).map_or(Ok(default), |v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| format!("{key}=\"{v}\" is not an integer"))
        })
    };
    let scalar_opacity = required(
        function_from_string(function_attr("scalarOpacity")?, "scalarOpacity", &mut notes)?,
        "scalarOpacity",
    )?;
    let colour = required(
        function_from_string(function_attr("colorTransfer")?, "colorTransfer", &mut notes)?,
        "colorTransfer",
    )?;
    let gradient_opacity = match node.attribute("gradientOpacity") {
        Some(text) => function_from_string(text, "gradientOpacity", &mut notes)?,
        None => Function::default(),
    };
    let defaults = Lighting::default();
    let interpolation = match integer("interpolation", 0)? {
        i64::MIN..=0 => Interpolation::Nearest,
        1 => Interpolation::Linear,
        _ => Interpolation::Cubic,
    };
    let effective_range_stored = match node.attribute("effectiveRange") {
        Some(text) => effective_range(text, &mut notes),
        None => [0.0, -1.0],
    };
    Ok(VolumeProperty {
        name: name.to_owned(),
        scalar_opacity,
        gradient_opacity,
        colour,
        shade: integer("shade", i64::from(defaults.shade))? != 0,
        ambient: number("ambient", defaults.ambient)?,
        diffuse: number("diffuse", defaults.diffuse)?,
        specular: number("specular", defaults.specular)?,
        specular_power: number("specularPower", defaults.specular_power)?,
        interpolation,
        effective_range_stored,
        scalar_opacity_unit_mm: 1.0,
        disable_gradient_opacity: false,
        notes,
    })
}

// ---------------------------------------------------------------------------------------------
// .vp (Slicer before 5.9).

/// Nine lines: interpolation, shade, diffuse, ambient, specular, specular power, then the
/// scalar opacity, gradient opacity and colour strings. An empty line keeps VTK's default.
fn vp_property(text: &str, name: &str) -> Result<VolumeProperty, String> {
    const WHAT: [&str; 9] = [
        "interpolation",
        "shade",
        "diffuse",
        "ambient",
        "specular",
        "specular power",
        "scalar opacity",
        "gradient opacity",
        "colour",
    ];
    let lines: Vec<&str> = text.lines().collect();
    let line = |i: usize| lines.get(i).map_or("", |l| l.trim());
    let number = |i: usize| -> Result<Option<f64>, String> {
        let l = line(i);
        if l.is_empty() {
            return Ok(None);
        }
        number_prefix(l)
            .map(|(x, _)| Some(x))
            .filter(|x| x.is_some_and(f64::is_finite))
            .ok_or_else(|| format!("line {} ({}) is not a number: '{l}'", i + 1, WHAT[i]))
    };
    let mut notes = Vec::new();
    let defaults = Lighting::default();
    let interpolation = match number(0)?.map_or(0, |x| x as i64) {
        i64::MIN..=0 => Interpolation::Nearest,
        1 => Interpolation::Linear,
        _ => Interpolation::Cubic,
    };
    let function = |i: usize, notes: &mut Vec<String>| {
        let what = format!("line {} ({})", i + 1, WHAT[i]);
        function_from_string::<1>(line(i), &what, notes).map(|f| (f, what))
    };
    let (scalar_opacity, what) = function(6, &mut notes)?;
    let scalar_opacity = required(scalar_opacity, &what)?;
    let (gradient_opacity, _) = function(7, &mut notes)?;
    let what = format!("line 9 ({})", WHAT[8]);
    let colour = required(
        function_from_string::<3>(line(8), &what, &mut notes)?,
        &what,
    )?;
    Ok(VolumeProperty {
        name: name.to_owned(),
        scalar_opacity,
        gradient_opacity,
        colour,
        shade: number(1)?.map_or(defaults.shade, |x| x as i64 != 0),
        diffuse: number(2)?.unwrap_or(defaults.diffuse),
        ambient: number(3)?.unwrap_or(defaults.ambient),
        specular: number(4)?.unwrap_or(defaults.specular),
        specular_power: number(5)?.unwrap_or(defaults.specular_power),
        interpolation,
        effective_range_stored: [0.0, -1.0],
        scalar_opacity_unit_mm: 1.0,
        disable_gradient_opacity: false,
        notes,
    })
}

// ---------------------------------------------------------------------------------------------
// .vp.json (Slicer 5.9 and later).

fn json_entries(text: &str, name: &str) -> Result<Vec<Entry>, String> {
    let root: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let properties = root
        .get("volumeProperties")
        .and_then(Value::as_array)
        .ok_or("it has no \"volumeProperties\" array (not a 3D Slicer .vp.json file)")?;
    let first = properties
        .first()
        .ok_or("its \"volumeProperties\" array is empty")?;
    let mut property = json_property(first, name);
    if let (Ok(p), true) = (&mut property, properties.len() > 1) {
        p.notes.push(format!(
            "the file holds {} volume properties: only the first is read, as in Slicer",
            properties.len()
        ));
    }
    Ok(vec![(name.to_owned(), property)])
}

fn json_property(value: &Value, name: &str) -> Result<VolumeProperty, String> {
    let mut notes = Vec::new();
    let property = value
        .as_object()
        .ok_or("volumeProperties[0] is not an object")?;
    let effective_range_stored = match property.get("effectiveRange") {
        None => [0.0, -1.0],
        Some(v) => match v.as_array().map(|a| a.iter().map(Value::as_f64).collect()) {
            Some(Some::<Vec<f64>>(r)) if r.len() == 2 => [r[0], r[1]],
            _ => {
                notes.push(format!(
                    "effectiveRange {v} is not two numbers: taken as not set"
                ));
                [0.0, -1.0]
            }
        },
    };
    let interpolation = match property.get("interpolationType").map(Value::as_str) {
        None | Some(Some("linear")) => Interpolation::Linear,
        Some(Some("cubic")) => Interpolation::Cubic,
        Some(Some("nearest")) => Interpolation::Nearest,
        Some(other) => {
            notes.push(format!(
                "interpolationType {} is unknown: nearest, as in Slicer",
                other.map_or_else(|| "(not a string)".to_owned(), str::to_owned)
            ));
            Interpolation::Nearest
        }
    };
    let components = property
        .get("components")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or("it has no \"components\" (where the transfer functions are)")?;
    if components.len() > 1 {
        notes.push(format!(
            "it has {} components (a multi-channel image): only the first is used",
            components.len()
        ));
    }
    let component = components[0]
        .as_object()
        .ok_or("components[0] is not an object")?;
    let boolean = |key: &str, default: bool| match component.get(key) {
        None => Ok(default),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| format!("components[0].{key} is not true or false")),
    };
    let defaults = Lighting::default();
    let lighting = match component.get("lighting") {
        None => None,
        Some(v) => Some(
            v.as_object()
                .ok_or("components[0].lighting is not an object")?,
        ),
    };
    let light = |key: &str, default: f64| match lighting.and_then(|l| l.get(key)) {
        None => Ok(default),
        Some(v) => v
            .as_f64()
            .ok_or_else(|| format!("components[0].lighting.{key} is not a number")),
    };
    let unit = match component.get("scalarOpacityUnitDistance") {
        None => 1.0,
        Some(v) => v.as_f64().filter(|u| *u > 0.0).ok_or_else(|| {
            format!("components[0].scalarOpacityUnitDistance {v} is not a positive distance")
        })?,
    };
    let scalar_opacity = required(
        json_function(component, "scalarOpacity", &mut notes)?
            .ok_or("it has no components[0].scalarOpacity")?,
        "scalarOpacity",
    )?;
    let colour = required(
        json_function(component, "rgbTransferFunction", &mut notes)?
            .ok_or("it has no components[0].rgbTransferFunction")?,
        "rgbTransferFunction",
    )?;
    let gradient_opacity =
        json_function(component, "gradientOpacity", &mut notes)?.unwrap_or_default();
    Ok(VolumeProperty {
        name: name.to_owned(),
        scalar_opacity,
        gradient_opacity,
        colour,
        shade: boolean("shade", defaults.shade)?,
        ambient: light("ambient", defaults.ambient)?,
        diffuse: light("diffuse", defaults.diffuse)?,
        specular: light("specular", defaults.specular)?,
        specular_power: light("specularPower", defaults.specular_power)?,
        interpolation,
        effective_range_stored,
        scalar_opacity_unit_mm: unit,
        disable_gradient_opacity: boolean("disableGradientOpacity", false)?,
        notes,
    })
}

/// `component[key].points`, sorted by x (stably, as Slicer's JSON reader does) and shifted to
/// increasing x; `None` when the component has no `key`. Values are `y` for opacity and
/// `color` for colour (`M` = 1 or 3).
fn json_function<const M: usize>(
    component: &Map<String, Value>,
    key: &str,
    notes: &mut Vec<String>,
) -> Result<Option<Function<M>>, String> {
    let Some(function) = component.get(key) else {
        return Ok(None);
    };
    let points = function
        .get("points")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("components[0].{key} has no \"points\" array"))?;
    let mut out = Vec::with_capacity(points.len());
    for (i, point) in points.iter().enumerate() {
        let at = format!("components[0].{key}.points[{i}]");
        let number = |field: &str| point.get(field).map(Value::as_f64);
        let x = number("x")
            .flatten()
            .ok_or_else(|| format!("{at} has no number \"x\""))?;
        let value: [f64; M] = if M == 1 {
            let y = number("y")
                .flatten()
                .ok_or_else(|| format!("{at} has no number \"y\""))?;
            [y; M]
        } else {
            let colour: Option<Vec<f64>> = point
                .get("color")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().map(Value::as_f64).collect());
            match colour {
                Some(c) if c.len() == M => std::array::from_fn(|j| c[j]),
                _ => return Err(format!("{at} has no \"color\" of three numbers")),
            }
        };
        let shape = |field: &str, default: f64| match number(field) {
            None => Ok(default),
            Some(Some(v)) if (0.0..=1.0).contains(&v) => Ok(v),
            Some(_) => Err(format!("{at}.{field} is not a number in [0, 1]")),
        };
        out.push(ControlPoint {
            x,
            value,
            midpoint: shape("midpoint", 0.5)?,
            sharpness: shape("sharpness", 0.0)?,
        });
    }
    out.sort_by(|a, b| a.x.partial_cmp(&b.x).unwrap_or(std::cmp::Ordering::Equal));
    increasing(out, key, notes).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_atof_and_as_a_stream() {
        assert_eq!(number_prefix("-250.0.0"), Some((-250.0, 6)));
        assert_eq!(number_prefix("1e5x"), Some((1e5, 3)));
        assert_eq!(number_prefix("2.e"), Some((2.0, 2)));
        assert_eq!(number_prefix(".5"), Some((0.5, 2)));
        assert_eq!(number_prefix("+3"), Some((3.0, 2)));
        assert_eq!(number_prefix("abc"), None);
        assert_eq!(number_prefix("-"), None);
        assert_eq!(number_prefix("."), None);
        assert_eq!(stream_numbers("-250.0.0 1550.0", 2), vec![-250.0, 0.0]);
        assert_eq!(stream_numbers("  0 -1 ", 2), vec![0.0, -1.0]);
    }

    #[test]
    fn next_higher_is_ten_float_steps() {
        let up = next_higher(200.0);
        assert!(up > 200.0 && up < 200.0 + 11.0 * f64::from(f32::EPSILON) * 128.0);
        assert_eq!((up as f32).to_bits() - 200.0f32.to_bits(), 10);
        assert!(next_higher(0.0) > 0.0);
        // Slicer's starting point: far below any real value, and no overflow.
        assert!(next_higher(VTK_DOUBLE_MIN) < -1e38);
    }

    #[test]
    fn notes_write_tiny_shifts_readably() {
        assert_eq!(readable(200.5), "200.5");
        assert_eq!(readable(0.0), "0");
        assert_eq!(readable(next_higher(0.0)), "1.1754957521207518e-38");
    }

    #[test]
    fn single_preset_files_are_named_after_the_file() {
        assert_eq!(single_name(Path::new("/a/My-Bone.vp.json")), "My-Bone");
        assert_eq!(single_name(Path::new("old.VP")), "old");
        assert_eq!(single_name(Path::new("x.json")), "x");
    }
}
