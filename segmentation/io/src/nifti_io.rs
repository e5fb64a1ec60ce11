//! NIfTI-1 reading (`.nii` or `.nii.gz`) into [`CtVolume`] and [`LabelVolume`].
//!
//! The `nifti` crate parses the header; this module checks what it declares before reading the
//! voxels (so a hostile header cannot ask for gigabytes), converts the stored type, applies the
//! scaling and turns the sform/qform into an LPS `patient_from_voxel` transform.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use glam::{DMat4, DQuat, DVec3, DVec4};
use nifti::{Endianness, NiftiHeader, NiftiType};
use twinray_volume::{CtVolume, Geometry, LabelVolume, Volume, VolumeError};

/// The largest volume we agree to load: 2³¹ voxels (e.g. 1024 × 1024 × 2048).
pub const MAX_VOXELS: usize = 1 << 31;

/// What can go wrong reading a NIfTI file. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum NiftiError {
    /// The file cannot be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The header is not a NIfTI-1 header.
    #[error("{path} is not a NIfTI-1 file: {reason}")]
    NotNifti {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// The header declares something we cannot load.
    #[error("{path}: {problem}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is unsupported.
        problem: String,
    },
    /// The voxel data ends before the header says it should.
    #[error("{path} is truncated: the header declares {expected} bytes of voxels, the file holds {actual}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes declared.
        expected: usize,
        /// Bytes present.
        actual: usize,
    },
    /// The geometry is degenerate (zero spacing, singular transform).
    #[error("{path}: {source}")]
    Geometry {
        /// The file.
        path: PathBuf,
        /// The geometry problem.
        source: VolumeError,
    },
    /// A label map holds values that are not label ids.
    #[error("{path} is not a label map: voxel value {value} is not an integer id in 0..=65535")]
    NotLabels {
        /// The file.
        path: PathBuf,
        /// The first offending value.
        value: f64,
    },
}

/// Reads a CT volume in Hounsfield units (scl_slope / scl_inter applied).
pub fn read_ct(path: &Path) -> Result<CtVolume, NiftiError> {
    ct_from_raw(&read_raw(open(path)?, path)?, path)
}

/// Reads a CT volume from the bytes of a `.nii` or `.nii.gz` (an embedded case, a bundle
/// member); `origin` names them in errors.
pub fn read_ct_bytes(bytes: &[u8], origin: &Path) -> Result<CtVolume, NiftiError> {
    ct_from_raw(&read_raw(bytes, origin)?, origin)
}

/// Reads a label map; every voxel must hold an integer id in `0..=65535`.
pub fn read_labels(path: &Path) -> Result<LabelVolume, NiftiError> {
    labels_from_raw(&read_raw(open(path)?, path)?, path)
}

/// Reads a label map from the bytes of a `.nii` or `.nii.gz`; `origin` names them in errors.
pub fn read_labels_bytes(bytes: &[u8], origin: &Path) -> Result<LabelVolume, NiftiError> {
    labels_from_raw(&read_raw(bytes, origin)?, origin)
}

fn open(path: &Path) -> Result<BufReader<File>, NiftiError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| NiftiError::Io {
            path: path.to_path_buf(),
            source,
        })
}

fn ct_from_raw(raw: &RawVolume, path: &Path) -> Result<CtVolume, NiftiError> {
    let voxels = raw.values.iter().map(|&v| v as f32).collect();
    Volume::new(raw.geometry, voxels).map_err(|source| geometry_error(path, source))
}

fn labels_from_raw(raw: &RawVolume, path: &Path) -> Result<LabelVolume, NiftiError> {
    let mut voxels = Vec::with_capacity(raw.values.len());
    for &v in &raw.values {
        if v.fract() != 0.0 || !(0.0..=65535.0).contains(&v) {
            return Err(NiftiError::NotLabels {
                path: path.to_path_buf(),
                value: v,
            });
        }
        voxels.push(v as u16);
    }
    Volume::new(raw.geometry, voxels).map_err(|source| geometry_error(path, source))
}

fn geometry_error(path: &Path, source: VolumeError) -> NiftiError {
    NiftiError::Geometry {
        path: path.to_path_buf(),
        source,
    }
}

struct RawVolume {
    geometry: Geometry,
    values: Vec<f64>,
}

/// Parses a NIfTI stream; `path` names it in errors.
fn read_raw(mut file: impl Read, path: &Path) -> Result<RawVolume, NiftiError> {
    let io = |source| NiftiError::Io {
        path: path.to_path_buf(),
        source,
    };
    let unsupported = |problem: String| NiftiError::Unsupported {
        path: path.to_path_buf(),
        problem,
    };
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(io)?;
    let head = std::io::Cursor::new(magic[..n].to_vec());
    // Sniff gzip by content, not by name: files get renamed.
    let mut reader: Box<dyn Read + '_> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(head.chain(file)))
    } else {
        Box::new(head.chain(file))
    };

    let header = NiftiHeader::from_reader(&mut reader).map_err(|e| NiftiError::NotNifti {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if &header.magic != b"n+1\0" {
        return Err(unsupported(
            "only single-file NIfTI-1 (.nii, magic n+1) is supported; for a .hdr/.img pair, \
             convert it to .nii first"
                .into(),
        ));
    }
    let dim = header
        .dim()
        .map_err(|e| unsupported(format!("invalid dimensions {:?}: {e}", header.dim)))?;
    if dim.len() > 3 && dim[3..].iter().any(|&d| d > 1) {
        return Err(unsupported(format!(
            "has {} dimensions {:?}; twinray loads one 3D volume (4th and higher dimensions must be 1)",
            dim.len(),
            dim
        )));
    }
    let dims = [0, 1, 2].map(|a| dim.get(a).map_or(1, |&d| usize::from(d)));
    let voxel_count = dims[0] * dims[1] * dims[2];
    if voxel_count > MAX_VOXELS {
        return Err(unsupported(format!(
            "declares {dims:?} = {voxel_count} voxels, more than the {MAX_VOXELS} twinray loads"
        )));
    }
    let datatype = header
        .data_type()
        .map_err(|e| unsupported(format!("unknown datatype code {}: {e}", header.datatype)))?;
    let bytes_per_voxel = match datatype {
        NiftiType::Uint8 | NiftiType::Int8 => 1,
        NiftiType::Uint16 | NiftiType::Int16 => 2,
        NiftiType::Uint32 | NiftiType::Int32 | NiftiType::Float32 => 4,
        NiftiType::Uint64 | NiftiType::Int64 | NiftiType::Float64 => 8,
        other => {
            return Err(unsupported(format!(
                "voxel type {other:?} is not a scalar type twinray reads"
            )))
        }
    };

    // Skip extensions between the 348-byte header and the voxels.
    let vox_offset = header.vox_offset;
    if !(348.0..=1.0e7).contains(&vox_offset) {
        return Err(unsupported(format!(
            "vox_offset {vox_offset} is outside 348..10000000"
        )));
    }
    let skip = vox_offset as u64 - 348;
    std::io::copy(&mut (&mut reader).take(skip), &mut std::io::sink()).map_err(io)?;

    let expected = voxel_count * bytes_per_voxel;
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(expected).map_err(|_| {
        unsupported(format!(
            "cannot allocate {expected} bytes for the declared voxels"
        ))
    })?;
    reader
        .take(expected as u64)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() != expected {
        return Err(NiftiError::Truncated {
            path: path.to_path_buf(),
            expected,
            actual: bytes.len(),
        });
    }

    let mut values = decode(&bytes, datatype, header.endianness);
    let (slope, inter) = (f64::from(header.scl_slope), f64::from(header.scl_inter));
    if slope != 0.0 && slope.is_finite() && inter.is_finite() && (slope != 1.0 || inter != 0.0) {
        for v in &mut values {
            *v = *v * slope + inter;
        }
    }
    let ras_from_voxel = ras_from_voxel(&header);
    let lps_from_ras = DMat4::from_diagonal(DVec4::new(-1.0, -1.0, 1.0, 1.0));
    let geometry = Geometry::new(dims, lps_from_ras * ras_from_voxel)
        .map_err(|source| geometry_error(path, source))?;
    Ok(RawVolume { geometry, values })
}

fn decode(bytes: &[u8], datatype: NiftiType, endianness: Endianness) -> Vec<f64> {
    let little = endianness == Endianness::Little;
    macro_rules! conv {
        ($t:ty, $n:expr) => {
            bytes
                .chunks_exact($n)
                .map(|c| {
                    let mut a = [0u8; $n];
                    a.copy_from_slice(c);
                    (if little {
                        <$t>::from_le_bytes(a)
                    } else {
                        <$t>::from_be_bytes(a)
                    }) as f64
                })
                .collect()
        };
    }
    match datatype {
        NiftiType::Uint8 => bytes.iter().map(|&b| f64::from(b)).collect(),
        NiftiType::Int8 => bytes.iter().map(|&b| f64::from(b as i8)).collect(),
        NiftiType::Uint16 => conv!(u16, 2),
        NiftiType::Int16 => conv!(i16, 2),
        NiftiType::Uint32 => conv!(u32, 4),
        NiftiType::Int32 => conv!(i32, 4),
        NiftiType::Float32 => conv!(f32, 4),
        NiftiType::Uint64 => conv!(u64, 8),
        NiftiType::Int64 => conv!(i64, 8),
        _ => conv!(f64, 8),
    }
}

/// The NIfTI voxel-to-RAS transform: sform when set, else qform, else the pixdim scaling
/// (the three methods of the NIfTI-1 standard, in its order of preference).
fn ras_from_voxel(h: &NiftiHeader) -> DMat4 {
    let pix = |i: usize| {
        let v = f64::from(h.pixdim[i]);
        if v.is_finite() && v > 0.0 {
            v
        } else {
            1.0
        }
    };
    if h.sform_code > 0 {
        let row = |r: [f32; 4]| r.map(f64::from);
        let (x, y, z) = (row(h.srow_x), row(h.srow_y), row(h.srow_z));
        return DMat4::from_cols(
            DVec4::new(x[0], y[0], z[0], 0.0),
            DVec4::new(x[1], y[1], z[1], 0.0),
            DVec4::new(x[2], y[2], z[2], 0.0),
            DVec4::new(x[3], y[3], z[3], 1.0),
        );
    }
    if h.qform_code > 0 {
        let (b, c, d) = (
            f64::from(h.quatern_b),
            f64::from(h.quatern_c),
            f64::from(h.quatern_d),
        );
        let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
        let rotation = glam::DMat3::from_quat(DQuat::from_xyzw(b, c, d, a).normalize());
        let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let scale = DVec3::new(pix(1), pix(2), pix(3) * qfac);
        let linear = rotation * glam::DMat3::from_diagonal(scale);
        let offset = DVec3::new(
            f64::from(h.quatern_x),
            f64::from(h.quatern_y),
            f64::from(h.quatern_z),
        );
        return DMat4::from_cols(
            linear.x_axis.extend(0.0),
            linear.y_axis.extend(0.0),
            linear.z_axis.extend(0.0),
            offset.extend(1.0),
        );
    }
    DMat4::from_diagonal(DVec4::new(pix(1), pix(2), pix(3), 1.0))
}

/// Writes a CT volume as NIfTI-1 (gzip-compressed when the name ends in `.gz`): int16 when every
/// value is an integer HU in range, float32 otherwise; the geometry goes in the sform (RAS).
pub fn write_ct(path: &Path, ct: &CtVolume) -> Result<(), NiftiError> {
    let integral = ct
        .voxels()
        .iter()
        .all(|&v| v.fract() == 0.0 && (-32768.0..=32767.0).contains(&v));
    let (datatype, bytes): (i16, Vec<u8>) = if integral {
        (
            4,
            ct.voxels()
                .iter()
                .flat_map(|&v| (v as i16).to_le_bytes())
                .collect(),
        )
    } else {
        (
            16,
            ct.voxels().iter().flat_map(|v| v.to_le_bytes()).collect(),
        )
    };
    write_nifti(path, ct.geometry(), datatype, &bytes)
}

/// Writes a label map as NIfTI-1: uint8 when every id fits, uint16 otherwise.
pub fn write_labels(path: &Path, labels: &LabelVolume) -> Result<(), NiftiError> {
    let small = labels.voxels().iter().all(|&v| v <= 255);
    let (datatype, bytes): (i16, Vec<u8>) = if small {
        (2, labels.voxels().iter().map(|&v| v as u8).collect())
    } else {
        (
            512,
            labels
                .voxels()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        )
    };
    write_nifti(path, labels.geometry(), datatype, &bytes)
}

/// Writes a single-file NIfTI-1 with the voxels in `bytes` (little endian, `datatype` code).
fn write_nifti(
    path: &Path,
    geometry: &Geometry,
    datatype: i16,
    bytes: &[u8],
) -> Result<(), NiftiError> {
    let bitpix: i16 = match datatype {
        2 => 8,
        4 | 512 => 16,
        _ => 32,
    };
    let ras_from_lps = DMat4::from_diagonal(DVec4::new(-1.0, -1.0, 1.0, 1.0));
    let m = ras_from_lps * geometry.patient_from_voxel;
    let spacing = geometry.spacing_mm();
    let mut h = vec![0u8; 352];
    let mut put = |offset: usize, data: &[u8]| h[offset..offset + data.len()].copy_from_slice(data);
    put(0, &348i32.to_le_bytes());
    put(38, b"r");
    let mut dim = [1i16; 8];
    dim[0] = 3;
    for a in 0..3 {
        // Grids above i16::MAX voxels per side cannot be written as NIfTI-1.
        dim[a + 1] = i16::try_from(geometry.dims[a]).map_err(|_| NiftiError::Unsupported {
            path: path.to_path_buf(),
            problem: format!(
                "{} voxels along axis {a} exceed NIfTI-1's 32767",
                geometry.dims[a]
            ),
        })?;
    }
    for (i, d) in dim.iter().enumerate() {
        put(40 + 2 * i, &d.to_le_bytes());
    }
    put(70, &datatype.to_le_bytes());
    put(72, &bitpix.to_le_bytes());
    let mut pixdim = [1f32; 8];
    for a in 0..3 {
        pixdim[a + 1] = spacing[a] as f32;
    }
    for (i, p) in pixdim.iter().enumerate() {
        put(76 + 4 * i, &p.to_le_bytes());
    }
    put(108, &352f32.to_le_bytes());
    put(112, &1f32.to_le_bytes());
    put(123, &[2]); // spatial unit: millimetres
    put(148, b"twinray");
    put(254, &1i16.to_le_bytes()); // sform_code: scanner anatomical
    for (row, offset) in [(0, 280), (1, 296), (2, 312)] {
        let r = m.row(row);
        for (c, v) in r.to_array().iter().enumerate() {
            put(offset + 4 * c, &(*v as f32).to_le_bytes());
        }
    }
    put(344, b"n+1\0");

    let io = |source| NiftiError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Write beside the target and rename, so a crash never leaves a half-written file there.
    let tmp = path.with_extension("partial");
    let mut file = std::io::BufWriter::new(File::create(&tmp).map_err(io)?);
    if path.extension().is_some_and(|e| e == "gz") {
        let mut gz = flate2::write::GzEncoder::new(&mut file, flate2::Compression::fast());
        gz.write_all(&h).map_err(io)?;
        gz.write_all(bytes).map_err(io)?;
        gz.finish().map_err(io)?;
    } else {
        file.write_all(&h).map_err(io)?;
        file.write_all(bytes).map_err(io)?;
    }
    file.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
