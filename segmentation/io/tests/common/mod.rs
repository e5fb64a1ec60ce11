//! Helpers shared by the io tests: the repository's real CT files, scratch folders, and
//! hand-made NIfTI headers for types `write_ct` never writes.
// Each test binary uses its own subset of these.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

/// A file or folder under the repository's `data/ct` (see its README).
pub fn ct_data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/ct")
        .join(rel)
}

/// An empty folder `name` of this test binary and process.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!(
            "twinray-{}-{}",
            env!("CARGO_CRATE_NAME"),
            std::process::id()
        ))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A single-file NIfTI-1 header (352 bytes, little endian, voxels at 352) for a float64 grid
/// of 1 mm voxels with an identity sform.
pub fn float64_header(dims: [i16; 3]) -> Vec<u8> {
    let mut h = vec![0u8; 352];
    let mut put = |offset: usize, data: &[u8]| h[offset..offset + data.len()].copy_from_slice(data);
    put(0, &348i32.to_le_bytes());
    for (i, d) in [3, dims[0], dims[1], dims[2], 1, 1, 1, 1]
        .iter()
        .enumerate()
    {
        put(40 + 2 * i, &d.to_le_bytes());
    }
    put(70, &64i16.to_le_bytes()); // DT_FLOAT64
    put(72, &64i16.to_le_bytes());
    for i in 0..8 {
        put(76 + 4 * i, &1f32.to_le_bytes());
    }
    put(108, &352f32.to_le_bytes());
    put(112, &1f32.to_le_bytes()); // scl_slope
    put(123, &[2]);
    put(254, &1i16.to_le_bytes()); // sform_code
    for (row, offset) in [(0, 280), (1, 296), (2, 312)] {
        let mut r = [0f32; 4];
        r[row] = 1.0;
        for (c, x) in r.iter().enumerate() {
            put(offset + 4 * c, &x.to_le_bytes());
        }
    }
    put(344, b"n+1\0");
    h
}

/// Writes a gzip-compressed float64 NIfTI whose voxel (i, j, k) holds `value(i, j, k)`,
/// streaming one slice at a time so that writing never holds the volume.
pub fn write_float64_gz(path: &Path, dims: [i16; 3], value: impl Fn(usize, usize, usize) -> f64) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    gz.write_all(&float64_header(dims)).expect("header");
    let [nx, ny, nz] = dims.map(|d| usize::try_from(d).expect("positive"));
    let mut slice = Vec::with_capacity(nx * ny * 8);
    for k in 0..nz {
        slice.clear();
        for j in 0..ny {
            for i in 0..nx {
                slice.extend_from_slice(&value(i, j, k).to_le_bytes());
            }
        }
        gz.write_all(&slice).expect("voxels");
    }
    gz.finish().expect("finish").flush().expect("flush");
}
