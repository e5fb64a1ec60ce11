//! The transfer syntaxes the README names that the WG04 set does not cover: deflated explicit VR
//! little endian and JPEG baseline (8-bit lossy), written by DCMTK from the WG04 reference slice
//! (`data/ct/dcmtk_codecs/README.md` says how).

mod common;

use common::ct_data;

use twinray_io::dicom::read_frames_hu;

fn reference() -> ([usize; 3], Vec<f32>) {
    read_frames_hu(&ct_data("wg04_codecs/CT2_UNC.dcm")).expect("the uncompressed reference")
}

#[test]
fn deflated_explicit_little_endian_decodes_bit_for_bit() {
    let (dims, hu) = read_frames_hu(&ct_data("dcmtk_codecs/CT2_deflate.dcm")).expect("deflate");
    let (ref_dims, ref_hu) = reference();
    assert_eq!(dims, ref_dims);
    assert!(
        hu == ref_hu,
        "the deflated slice differs from the reference"
    );
}

#[test]
fn jpeg_baseline_decodes_within_its_quantisation() {
    let (dims, hu) =
        read_frames_hu(&ct_data("dcmtk_codecs/CT2_jpeg_baseline.dcm")).expect("JPEG baseline");
    let (ref_dims, ref_hu) = reference();
    assert_eq!(dims, ref_dims);
    // DCMTK maps the 16-bit range onto 8 bits (rescale slope 16.06 HU per level) before a lossy
    // JPEG. Measured: mean error 8.7 HU (about half a level), worst 255 HU (16 levels, ringing at
    // the body's edge). A decoder that ignored the rescale or misread the bit depth would be off
    // by hundreds of HU everywhere.
    let slope = 16.058_82_f64;
    let errors: Vec<f64> = hu
        .iter()
        .zip(&ref_hu)
        .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs())
        .collect();
    let mean = errors.iter().sum::<f64>() / errors.len() as f64;
    let worst = errors.iter().copied().fold(0.0, f64::max);
    eprintln!("JPEG baseline vs reference: mean {mean:.1} HU, worst {worst:.1} HU");
    assert!(mean < slope, "mean error {mean:.1} HU");
    assert!(worst < 24.0 * slope, "worst error {worst:.1} HU");
}
