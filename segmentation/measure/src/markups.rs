//! 3D Slicer markups files (`.mrk.json`): points, lines, angles and curves, read and written so
//! that what an instructor measures in twinray opens in Slicer and the reverse.
//!
//! The file is Slicer's markups JSON (schema `markups-schema-v1.0.3`): a `markups` array, each
//! with a `type` (`Fiducial`, `Line`, `Angle`, `Curve`, `ClosedCurve`), a `coordinateSystem`
//! (`LPS` or `RAS`; Slicer writes `LPS`, and a file without one is read as LPS, as Slicer does)
//! and `controlPoints` with a `position`. Points come back in patient LPS millimetres, twinray's
//! frame: RAS positions have x and y negated. Everything else Slicer stores (display settings,
//! measurements, orientation) is ignored on reading; writing produces the fields Slicer needs.
//!
//! Reading is bounded: a file of at most [`MAX_FILE_BYTES`] and [`MAX_POINTS`] points in all.

use std::path::{Path, PathBuf};

use glam::DVec3;
use serde_json::{json, Value};

use crate::points::angle_deg;

/// The largest markups file read.
pub const MAX_FILE_BYTES: u64 = 16 << 20;
/// The most control points read from one file.
pub const MAX_POINTS: usize = 100_000;

/// The schema Slicer's current markups files name.
const SCHEMA: &str = "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/Schema/markups-schema-v1.0.3.json#";

/// What a markups file cannot be read or written as.
#[derive(Debug, thiserror::Error)]
pub enum MarkupsError {
    /// The file cannot be read or written.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a markups file twinray reads.
    #[error("{path}: not a 3D Slicer markups file twinray reads: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The output exists already.
    #[error("{path} already exists; markups are never written over a file")]
    Exists {
        /// The file.
        path: PathBuf,
    },
}

/// The kind of a markup, as Slicer names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkupKind {
    /// A point list (Slicer's `Fiducial`).
    Points,
    /// Two points: a distance.
    Line,
    /// Three points: the angle at the second.
    Angle,
    /// An open curve through its points.
    Curve,
    /// A closed curve through its points.
    ClosedCurve,
}

impl MarkupKind {
    /// Slicer's name for it.
    #[must_use]
    pub fn slicer_name(self) -> &'static str {
        match self {
            Self::Points => "Fiducial",
            Self::Line => "Line",
            Self::Angle => "Angle",
            Self::Curve => "Curve",
            Self::ClosedCurve => "ClosedCurve",
        }
    }

    fn from_slicer(name: &str) -> Option<Self> {
        Some(match name {
            "Fiducial" | "PointList" => Self::Points,
            "Line" => Self::Line,
            "Angle" => Self::Angle,
            "Curve" => Self::Curve,
            "ClosedCurve" => Self::ClosedCurve,
            _ => return None,
        })
    }
}

/// One control point.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlPoint {
    /// Its label (Slicer's `F-1`, …).
    pub label: String,
    /// Where, in patient LPS millimetres.
    pub position_lps_mm: DVec3,
}

/// One markup: a point list, line, angle or curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Markup {
    /// What it is.
    pub kind: MarkupKind,
    /// Its name (Slicer's `name`; may be empty).
    pub name: String,
    /// Its control points, in order.
    pub points: Vec<ControlPoint>,
}

/// A markup's value: what Slicer shows beside it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MarkupValue {
    /// A length in millimetres (a line, or along a curve).
    LengthMm(f64),
    /// An angle in degrees.
    AngleDeg(f64),
}

impl Markup {
    /// Its value: a line's length, the angle at an angle's middle point, a curve's length along
    /// its points (closed: back to the first). `None` for point lists and for a markup with too
    /// few points (Slicer saves half-placed ones).
    #[must_use]
    pub fn value(&self) -> Option<MarkupValue> {
        let p: Vec<DVec3> = self.points.iter().map(|c| c.position_lps_mm).collect();
        let path = |closed: bool| {
            let mut length: f64 = p.windows(2).map(|w| w[0].distance(w[1])).sum();
            if closed && p.len() > 2 {
                length += p[p.len() - 1].distance(p[0]);
            }
            length
        };
        match (self.kind, p.len()) {
            (MarkupKind::Line, 2) => Some(MarkupValue::LengthMm(p[0].distance(p[1]))),
            (MarkupKind::Angle, 3) => angle_deg(p[0], p[1], p[2]).ok().map(MarkupValue::AngleDeg),
            (MarkupKind::Curve, n) if n >= 2 => Some(MarkupValue::LengthMm(path(false))),
            (MarkupKind::ClosedCurve, n) if n >= 2 => Some(MarkupValue::LengthMm(path(true))),
            _ => None,
        }
    }
}

/// Reads the markups in a `.mrk.json` file.
///
/// # Errors
/// If the file cannot be read, is larger than [`MAX_FILE_BYTES`], is not markups JSON, names a
/// coordinate system other than LPS or RAS or units other than mm, or holds a position that is
/// not three finite numbers.
pub fn read_markups(path: &Path) -> Result<Vec<Markup>, MarkupsError> {
    let size = std::fs::metadata(path)
        .map_err(|source| MarkupsError::Io {
            path: path.to_path_buf(),
            what: "reading",
            source,
        })?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(MarkupsError::Invalid {
            path: path.to_path_buf(),
            reason: format!("{size} bytes, more than the {MAX_FILE_BYTES} a markups file may have"),
        });
    }
    let bytes = std::fs::read(path).map_err(|source| MarkupsError::Io {
        path: path.to_path_buf(),
        what: "reading",
        source,
    })?;
    parse_markups(&bytes, path)
}

/// Parses markups JSON; `path` names the file in errors.
///
/// # Errors
/// As [`read_markups`].
pub fn parse_markups(bytes: &[u8], path: &Path) -> Result<Vec<Markup>, MarkupsError> {
    let bad = |reason: String| MarkupsError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let root: Value =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let list = root
        .get("markups")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no \"markups\" array".to_owned()))?;
    let mut out = Vec::with_capacity(list.len().min(1024));
    let mut total_points = 0usize;
    for (i, m) in list.iter().enumerate() {
        let at = |what: String| bad(format!("markup {}: {what}", i + 1));
        let type_name = m
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| at("no \"type\"".to_owned()))?;
        let kind = MarkupKind::from_slicer(type_name).ok_or_else(|| {
            at(format!(
                "type \"{type_name}\" (twinray reads Fiducial, Line, Angle, Curve and ClosedCurve)"
            ))
        })?;
        let ras = match m.get("coordinateSystem").and_then(Value::as_str) {
            None => false,
            Some(s) if s.eq_ignore_ascii_case("LPS") => false,
            Some(s) if s.eq_ignore_ascii_case("RAS") => true,
            Some(s) => return Err(at(format!("coordinate system \"{s}\" (LPS or RAS)"))),
        };
        if let Some(units) = m.get("coordinateUnits").and_then(Value::as_str) {
            if units != "mm" {
                return Err(at(format!(
                    "coordinate units \"{units}\" (twinray reads mm)"
                )));
            }
        }
        let name = m
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut points = Vec::new();
        for (j, c) in m
            .get("controlPoints")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            // Points Slicer has not placed yet carry no position worth reading.
            if c.get("positionStatus")
                .and_then(Value::as_str)
                .is_some_and(|s| s == "undefined" || s == "missing")
            {
                continue;
            }
            total_points += 1;
            if total_points > MAX_POINTS {
                return Err(bad(format!("more than {MAX_POINTS} control points")));
            }
            let xyz: Vec<f64> = c
                .get("position")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default();
            let [x, y, z] = xyz[..] else {
                return Err(at(format!(
                    "control point {}: position is not three numbers",
                    j + 1
                )));
            };
            if !(x.is_finite() && y.is_finite() && z.is_finite()) {
                return Err(at(format!(
                    "control point {}: position is not finite",
                    j + 1
                )));
            }
            let position_lps_mm = if ras {
                DVec3::new(-x, -y, z)
            } else {
                DVec3::new(x, y, z)
            };
            points.push(ControlPoint {
                label: c
                    .get("label")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                position_lps_mm,
            });
        }
        out.push(Markup { kind, name, points });
    }
    Ok(out)
}

/// The markups as Slicer's JSON, in LPS millimetres.
#[must_use]
pub fn to_json(markups: &[Markup]) -> String {
    let list: Vec<Value> = markups
        .iter()
        .map(|m| {
            let points: Vec<Value> = m
                .points
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let p = c.position_lps_mm;
                    json!({
                        "id": (i + 1).to_string(),
                        "label": c.label,
                        "description": "",
                        "associatedNodeID": "",
                        "position": [p.x, p.y, p.z],
                        "orientation": [-1.0, -0.0, -0.0, -0.0, -1.0, -0.0, 0.0, 0.0, 1.0],
                        "selected": true,
                        "locked": false,
                        "visibility": true,
                        "positionStatus": "defined"
                    })
                })
                .collect();
            let mut markup = json!({
                "type": m.kind.slicer_name(),
                "coordinateSystem": "LPS",
                "coordinateUnits": "mm",
                "locked": false,
                "labelFormat": "%N-%d",
                "controlPoints": points,
            });
            if !m.name.is_empty() {
                markup["name"] = json!(m.name);
            }
            markup
        })
        .collect();
    let doc = json!({ "@schema": SCHEMA, "markups": list });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// Writes the markups to a new `.mrk.json` file (never over an existing one; a failed write
/// leaves nothing).
///
/// # Errors
/// If the file exists or cannot be written.
pub fn write_markups(path: &Path, markups: &[Markup]) -> Result<(), MarkupsError> {
    use std::io::Write;
    let io = |what, source| MarkupsError::Io {
        path: path.to_path_buf(),
        what,
        source,
    };
    let mut file = match std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(MarkupsError::Exists {
                path: path.to_path_buf(),
            })
        }
        Err(e) => return Err(io("creating", e)),
    };
    let written = file
        .write_all(to_json(markups).as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(path);
        return Err(io("writing", e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(a: [f64; 3], b: [f64; 3]) -> Markup {
        Markup {
            kind: MarkupKind::Line,
            name: "L".into(),
            points: [a, b]
                .iter()
                .map(|p| ControlPoint {
                    label: String::new(),
                    position_lps_mm: DVec3::from_array(*p),
                })
                .collect(),
        }
    }

    #[test]
    fn values_of_lines_angles_and_curves() {
        assert_eq!(
            line([0.0, 0.0, 0.0], [3.0, 4.0, 0.0]).value(),
            Some(MarkupValue::LengthMm(5.0))
        );
        let mut closed = line([0.0, 0.0, 0.0], [10.0, 0.0, 0.0]);
        closed.kind = MarkupKind::ClosedCurve;
        closed.points.push(ControlPoint {
            label: String::new(),
            position_lps_mm: DVec3::new(10.0, 10.0, 0.0),
        });
        let Some(MarkupValue::LengthMm(l)) = closed.value() else {
            panic!("a length")
        };
        assert!((l - (20.0 + 200f64.sqrt())).abs() < 1e-9);
        let mut half = line([0.0, 0.0, 0.0], [1.0, 0.0, 0.0]);
        half.kind = MarkupKind::Angle;
        assert_eq!(half.value(), None, "an angle with two points has no value");
    }

    #[test]
    fn bad_files_are_named_errors() {
        let p = Path::new("x.mrk.json");
        for (text, says) in [
            ("{", "not valid JSON"),
            ("{}", "no \"markups\""),
            (r#"{"markups":[{"type":"Plane"}]}"#, "type \"Plane\""),
            (
                r#"{"markups":[{"type":"Line","coordinateSystem":"XYZ"}]}"#,
                "coordinate system",
            ),
            (
                r#"{"markups":[{"type":"Line","controlPoints":[{"position":[1,2]}]}]}"#,
                "three numbers",
            ),
        ] {
            let e = parse_markups(text.as_bytes(), p).expect_err(text);
            let msg = e.to_string();
            assert!(msg.contains("x.mrk.json") && msg.contains(says), "{msg}");
        }
    }
}
