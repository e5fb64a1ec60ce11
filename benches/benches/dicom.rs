//! DICOM series loading time (placeholder until the DICOM loader lands; see issue 3).

fn main() {
    println!("dicom: no benchmark yet");
}
