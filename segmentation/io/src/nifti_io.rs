//! NIfTI-1 reading (`.nii` or `.nii.gz`) into [`CtVolume`] and [`LabelVolume`].
//!
//! The `nifti` crate parses the header; this module checks what it declares before reading the
//! voxels (so a hostile header cannot ask for gigabytes: [`MAX_OUTPUT_BYTES`]), then streams
//! the voxels in blocks, converting the stored type and applying the scaling straight into the
//! output, and turns the sform/qform into an LPS `patient_from_voxel` transform.

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

/// Most memory the readers give a decoded volume: 8 GiB, a float32 CT of [`MAX_VOXELS`]
/// voxels. Checked against the header's dimensions before any voxel is inflated, so a small
/// gzip that declares a huge grid (zeros compress 1000:1) is refused up front; the voxels are
/// then decoded in blocks straight into the output, so the peak is about the output's size
/// whatever the stored type (a float64 file needs no float64 copy of the volume).
pub const MAX_OUTPUT_BYTES: u64 = 8 << 30;

/// Bytes of stored voxels decoded at a time.
const BLOCK_BYTES: usize = 1 << 20;

/// Reads a CT volume in Hounsfield units (scl_slope / scl_inter applied).
pub fn read_ct(path: &Path) -> Result<CtVolume, NiftiError> {
    read_ct_from(open(path)?, path, MAX_OUTPUT_BYTES)
}

/// Reads a CT volume from the bytes of a `.nii` or `.nii.gz` (an embedded case, a bundle
/// member); `origin` names them in errors.
pub fn read_ct_bytes(bytes: &[u8], origin: &Path) -> Result<CtVolume, NiftiError> {
    read_ct_from(bytes, origin, MAX_OUTPUT_BYTES)
}

/// Reads a label map; every voxel must hold an integer id in `0..=65535`.
pub fn read_labels(path: &Path) -> Result<LabelVolume, NiftiError> {
    read_labels_from(open(path)?, path, MAX_OUTPUT_BYTES)
}

/// Reads a label map from the bytes of a `.nii` or `.nii.gz`; `origin` names them in errors.
pub fn read_labels_bytes(bytes: &[u8], origin: &Path) -> Result<LabelVolume, NiftiError> {
    read_labels_from(bytes, origin, MAX_OUTPUT_BYTES)
}

fn open(path: &Path) -> Result<BufReader<File>, NiftiError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| NiftiError::Io {
            path: path.to_path_buf(),
            source,
        })
}

fn read_ct_from(file: impl Read, path: &Path, budget: u64) -> Result<CtVolume, NiftiError> {
    let (header, mut stream) = open_stream(file, path)?;
    let voxels = read_voxels(&mut stream, &header, path, budget, "a float32 CT", |v| {
        Ok(v as f32)
    })?;
    Volume::new(header.geometry, voxels).map_err(|source| geometry_error(path, source))
}

fn read_labels_from(file: impl Read, path: &Path, budget: u64) -> Result<LabelVolume, NiftiError> {
    let (header, mut stream) = open_stream(file, path)?;
    let voxels = read_voxels(&mut stream, &header, path, budget, "16-bit labels", |v| {
        if v.fract() != 0.0 || !(0.0..=65535.0).contains(&v) {
            return Err(NiftiError::NotLabels {
                path: path.to_path_buf(),
                value: v,
            });
        }
        Ok(v as u16)
    })?;
    Volume::new(header.geometry, voxels).map_err(|source| geometry_error(path, source))
}

fn geometry_error(path: &Path, source: VolumeError) -> NiftiError {
    NiftiError::Geometry {
        path: path.to_path_buf(),
        source,
    }
}

/// What the header says about the voxels that follow it.
struct VoxelLayout {
    geometry: Geometry,
    dims: [usize; 3],
    voxel_count: usize,
    datatype: NiftiType,
    bytes_per_voxel: usize,
    little: bool,
    /// (scl_slope, scl_inter) when they change values.
    scaling: Option<(f64, f64)>,
}

/// Parses a NIfTI stream's header and skips to its voxels; `path` names it in errors.
fn open_stream<'r>(
    mut file: impl Read + 'r,
    path: &Path,
) -> Result<(VoxelLayout, Box<dyn Read + 'r>), NiftiError> {
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
    let mut reader: Box<dyn Read + 'r> = if n == 2 && magic == [0x1f, 0x8b] {
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
    // At most 65535³ < 2⁴⁸: no overflow.
    let voxel_count = dims[0] * dims[1] * dims[2];
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

    let (slope, inter) = (f64::from(header.scl_slope), f64::from(header.scl_inter));
    let scaling =
        (slope != 0.0 && slope.is_finite() && inter.is_finite() && (slope != 1.0 || inter != 0.0))
            .then_some((slope, inter));
    let ras_from_voxel = ras_from_voxel(&header);
    let lps_from_ras = DMat4::from_diagonal(DVec4::new(-1.0, -1.0, 1.0, 1.0));
    let geometry = Geometry::new(dims, lps_from_ras * ras_from_voxel)
        .map_err(|source| geometry_error(path, source))?;
    let layout = VoxelLayout {
        geometry,
        dims,
        voxel_count,
        datatype,
        bytes_per_voxel,
        little: header.endianness == Endianness::Little,
        scaling,
    };
    Ok((layout, reader))
}

/// A byte count for messages: GiB from 1 GiB up, MiB below.
fn size(bytes: u64) -> String {
    let mib = bytes as f64 / f64::from(1u32 << 20);
    if mib >= 1024.0 {
        format!("{:.1} GiB", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB")
    }
}

/// Decodes the voxels that follow the header into a `Vec<T>`, `BLOCK_BYTES` of stored data at
/// a time: each value is converted to f64, scaled, and handed to `convert` (which may refuse
/// it). The output is sized from the header only once that size is within `budget` and
/// [`MAX_VOXELS`]; a stream that ends early is `Truncated`.
fn read_voxels<T>(
    reader: &mut dyn Read,
    layout: &VoxelLayout,
    path: &Path,
    budget: u64,
    what: &str,
    mut convert: impl FnMut(f64) -> Result<T, NiftiError>,
) -> Result<Vec<T>, NiftiError> {
    let count = layout.voxel_count;
    let out_bytes = count as u64 * std::mem::size_of::<T>() as u64;
    if count > MAX_VOXELS || out_bytes > budget {
        let [nx, ny, nz] = layout.dims;
        return Err(NiftiError::Unsupported {
            path: path.to_path_buf(),
            problem: format!(
                "declares {nx}x{ny}x{nz} = {count} voxels of {:?} ({} uncompressed); as {what} \
                 they would take {} of memory, more than twinray's limit of {} and \
                 {MAX_VOXELS} voxels",
                layout.datatype,
                size(count as u64 * layout.bytes_per_voxel as u64),
                size(out_bytes),
                size(budget)
            ),
        });
    }
    let mut out = Vec::new();
    out.try_reserve_exact(count)
        .map_err(|_| NiftiError::Unsupported {
            path: path.to_path_buf(),
            problem: format!(
                "cannot allocate {} for the declared voxels",
                size(out_bytes)
            ),
        })?;
    let expected = count * layout.bytes_per_voxel;
    // A multiple of every voxel size, so blocks never split a voxel.
    let mut block = vec![0u8; BLOCK_BYTES.min(expected)];
    let mut done = 0;
    while done < expected {
        let want = block.len().min(expected - done);
        let got = fill(reader, &mut block[..want]).map_err(|source| NiftiError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if got < want {
            return Err(NiftiError::Truncated {
                path: path.to_path_buf(),
                expected,
                actual: done + got,
            });
        }
        decode_block(&block[..want], layout, &mut out, &mut convert)?;
        done += want;
    }
    Ok(out)
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn fill(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Converts one block of stored voxels (whole voxels) and appends them to `out`.
fn decode_block<T>(
    bytes: &[u8],
    layout: &VoxelLayout,
    out: &mut Vec<T>,
    convert: &mut impl FnMut(f64) -> Result<T, NiftiError>,
) -> Result<(), NiftiError> {
    let little = layout.little;
    let (slope, inter) = layout.scaling.unwrap_or((1.0, 0.0));
    let scaled = layout.scaling.is_some();
    let mut push = |v: f64| -> Result<(), NiftiError> {
        out.push(convert(if scaled { v * slope + inter } else { v })?);
        Ok(())
    };
    macro_rules! each {
        ($t:ty, $n:expr) => {
            for c in bytes.chunks_exact($n) {
                let mut a = [0u8; $n];
                a.copy_from_slice(c);
                push(
                    (if little {
                        <$t>::from_le_bytes(a)
                    } else {
                        <$t>::from_be_bytes(a)
                    }) as f64,
                )?;
            }
        };
    }
    match layout.datatype {
        NiftiType::Uint8 => each!(u8, 1),
        NiftiType::Int8 => each!(i8, 1),
        NiftiType::Uint16 => each!(u16, 2),
        NiftiType::Int16 => each!(i16, 2),
        NiftiType::Uint32 => each!(u32, 4),
        NiftiType::Int32 => each!(i32, 4),
        NiftiType::Float32 => each!(f32, 4),
        NiftiType::Uint64 => each!(u64, 8),
        NiftiType::Int64 => each!(i64, 8),
        _ => each!(f64, 8),
    }
    Ok(())
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
    let (datatype, bytes) = ct_voxel_bytes(ct);
    write_nifti(path, ct.geometry(), datatype, &bytes)
}

/// The bytes of an uncompressed `.nii` of `ct`, as [`write_ct`] writes it (a bundle member);
/// `origin` names the volume in errors.
pub fn ct_nifti_bytes(ct: &CtVolume, origin: &Path) -> Result<Vec<u8>, NiftiError> {
    let (datatype, bytes) = ct_voxel_bytes(ct);
    let mut out = nifti_header(origin, ct.geometry(), datatype)?;
    out.extend_from_slice(&bytes);
    Ok(out)
}

/// The bytes of an uncompressed `.nii` of `labels`, as [`write_labels`] writes it.
pub fn labels_nifti_bytes(labels: &LabelVolume, origin: &Path) -> Result<Vec<u8>, NiftiError> {
    let (datatype, bytes) = label_voxel_bytes(labels);
    let mut out = nifti_header(origin, labels.geometry(), datatype)?;
    out.extend_from_slice(&bytes);
    Ok(out)
}

/// int16 when every value is an integer HU in range, float32 otherwise: (datatype, voxels).
fn ct_voxel_bytes(ct: &CtVolume) -> (i16, Vec<u8>) {
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
    (datatype, bytes)
}

/// Writes a label map as NIfTI-1: uint8 when every id fits, uint16 otherwise.
pub fn write_labels(path: &Path, labels: &LabelVolume) -> Result<(), NiftiError> {
    let (datatype, bytes) = label_voxel_bytes(labels);
    write_nifti(path, labels.geometry(), datatype, &bytes)
}

/// uint8 when every id fits, uint16 otherwise: (datatype, voxels).
fn label_voxel_bytes(labels: &LabelVolume) -> (i16, Vec<u8>) {
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
    (datatype, bytes)
}

/// Writes a single-file NIfTI-1 with the voxels in `bytes` (little endian, `datatype` code).
fn write_nifti(
    path: &Path,
    geometry: &Geometry,
    datatype: i16,
    bytes: &[u8],
) -> Result<(), NiftiError> {
    let h = nifti_header(path, geometry, datatype)?;
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

/// The 352-byte single-file NIfTI-1 header (voxels at 352) for `geometry` and `datatype`;
/// `path` names the volume in errors.
fn nifti_header(path: &Path, geometry: &Geometry, datatype: i16) -> Result<Vec<u8>, NiftiError> {
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
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A NIfTI-1 header (352 bytes, voxels at 352) in either byte order.
    fn header(dims: [i16; 3], datatype: i16, bitpix: i16, scaling: [f32; 2], big: bool) -> Vec<u8> {
        let mut h = vec![0u8; 352];
        let mut put =
            |offset: usize, data: &[u8]| h[offset..offset + data.len()].copy_from_slice(data);
        let i16b = |v: i16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let f32b = |v: f32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        put(
            0,
            &if big {
                348i32.to_be_bytes()
            } else {
                348i32.to_le_bytes()
            },
        );
        for (i, d) in [3, dims[0], dims[1], dims[2], 1, 1, 1, 1]
            .iter()
            .enumerate()
        {
            put(40 + 2 * i, &i16b(*d));
        }
        put(70, &i16b(datatype));
        put(72, &i16b(bitpix));
        for i in 0..8 {
            put(76 + 4 * i, &f32b(1.0));
        }
        put(108, &f32b(352.0));
        put(112, &f32b(scaling[0]));
        put(116, &f32b(scaling[1]));
        put(344, b"n+1\0");
        h
    }

    #[test]
    fn big_endian_int16_with_scaling_spans_several_blocks() {
        // 1024x600 int16 is 1.2 MB of voxels: the 1 MiB block boundary falls inside the volume.
        let stored = |n: usize| (n % 4001) as i16 - 2000;
        let mut bytes = header([1024, 600, 1], 4, 16, [2.0, -1000.0], true);
        for n in 0..1024 * 600 {
            bytes.extend_from_slice(&stored(n).to_be_bytes());
        }
        let ct = read_ct_bytes(&bytes, Path::new("be.nii")).expect("loads");
        for n in [0, 1, 524_287, 524_288, 524_289, 614_399] {
            let expected = f64::from(stored(n)) * 2.0 - 1000.0;
            assert_eq!(ct.voxels()[n], expected as f32, "voxel {n}");
        }
        // As labels, the scaled values are negative or odd multiples: the first bad one is named.
        let err = read_labels_bytes(&bytes, Path::new("be.nii")).expect_err("not labels");
        assert!(
            matches!(err, NiftiError::NotLabels { value, .. } if value == -5000.0),
            "{err}"
        );
    }

    #[test]
    fn labels_accept_integral_scaled_values_and_refuse_fractions() {
        let mut ok = header([4, 3, 2], 512, 16, [1.0, 3.0], false);
        for n in 0u16..24 {
            ok.extend_from_slice(&n.to_le_bytes());
        }
        let labels = read_labels_bytes(&ok, Path::new("u16.nii")).expect("labels");
        assert_eq!(labels.voxels(), (3u16..27).collect::<Vec<_>>());
        let mut half = header([4, 3, 2], 2, 8, [0.5, 0.0], false);
        half.extend((0u8..24).map(|n| n * 2 + u8::from(n == 13)));
        let err = read_labels_bytes(&half, Path::new("u8.nii")).expect_err("13.5");
        assert!(
            matches!(err, NiftiError::NotLabels { value, .. } if value == 13.5),
            "{err}"
        );
    }

    #[test]
    fn output_budget_is_checked_from_the_header_before_reading() {
        // 64^3 float32 is 1 MiB as a CT: over a budget one byte short, before any voxel is read
        // (the file has none); at exactly the budget it is read, and ends as Truncated.
        let bytes = header([64, 64, 64], 16, 32, [1.0, 0.0], false);
        let path = Path::new("budget.nii");
        let err = read_ct_from(&bytes[..], path, (1 << 20) - 1).expect_err("over budget");
        let message = err.to_string();
        assert!(
            message.contains("1.0 MiB of memory") && message.contains("limit of 1.0 MiB"),
            "{message}"
        );
        let err = read_ct_from(&bytes[..], path, 1 << 20).expect_err("no voxels");
        assert!(
            matches!(
                err,
                NiftiError::Truncated {
                    expected: 1_048_576,
                    actual: 0,
                    ..
                }
            ),
            "{err}"
        );
        // Labels take 2 bytes a voxel: the same file fits half the budget.
        let err = read_labels_from(&bytes[..], path, 1 << 19).expect_err("no voxels");
        assert!(matches!(err, NiftiError::Truncated { .. }), "{err}");
    }
}
