//! WAV files in (any PCM or float layout, mixed down to mono) and out (48 kHz mono 16-bit),
//! read in pieces so that an hour of voice never sits in memory at once.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::error::VoiceError;

/// Frames handed out per [`WavReader::next_block`].
const BLOCK_FRAMES: usize = 4800;

/// Reads a WAV file as mono f32 blocks.
pub struct WavReader {
    path: PathBuf,
    inner: hound::WavReader<BufReader<File>>,
    spec: hound::WavSpec,
    remaining_frames: u64,
}

impl std::fmt::Debug for WavReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavReader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl WavReader {
    /// Opens `path`.
    ///
    /// # Errors
    /// [`VoiceError::BadAudio`] naming the file if it is not a WAV file hound can read, or
    /// has no channels or no sample rate.
    pub fn open(path: &Path) -> Result<Self, VoiceError> {
        let bad = |reason: String| VoiceError::BadAudio {
            path: path.to_path_buf(),
            reason,
        };
        let inner = hound::WavReader::open(path).map_err(|e| match e {
            hound::Error::IoError(io) => VoiceError::io(path, "opening", io),
            other => bad(format!("not a WAV file twinray can read ({other})")),
        })?;
        let spec = inner.spec();
        if spec.channels == 0 || spec.sample_rate == 0 {
            return Err(bad(format!(
                "{} channels at {} Hz",
                spec.channels, spec.sample_rate
            )));
        }
        if spec.sample_rate < 8_000 || spec.sample_rate > 384_000 {
            return Err(bad(format!(
                "sample rate {} Hz is outside 8–384 kHz",
                spec.sample_rate
            )));
        }
        let remaining_frames = u64::from(inner.duration());
        Ok(Self {
            path: path.to_path_buf(),
            inner,
            spec,
            remaining_frames,
        })
    }

    /// Sample rate, hertz.
    #[must_use]
    pub fn sample_rate_hz(&self) -> u32 {
        self.spec.sample_rate
    }

    /// Frames in the file.
    #[must_use]
    pub fn duration_frames(&self) -> u64 {
        self.remaining_frames
    }

    /// The next block of mono samples; empty at the end.
    ///
    /// # Errors
    /// [`VoiceError::BadAudio`] if the file is truncated or its samples cannot be read.
    pub fn next_block(&mut self) -> Result<Vec<f32>, VoiceError> {
        let channels = usize::from(self.spec.channels);
        let frames = usize::try_from(self.remaining_frames.min(BLOCK_FRAMES as u64)).unwrap_or(0);
        let mut out = Vec::with_capacity(frames);
        let bad = |e: hound::Error, path: &Path| VoiceError::BadAudio {
            path: path.to_path_buf(),
            reason: format!("reading samples: {e}"),
        };
        let scale = match self.spec.sample_format {
            hound::SampleFormat::Float => 1.0,
            hound::SampleFormat::Int => {
                let bits = i32::from(self.spec.bits_per_sample.clamp(1, 32)) - 1;
                #[allow(clippy::cast_precision_loss)]
                let full = (1i64 << bits) as f32;
                1.0 / full
            }
        };
        let mut frame_sum = 0.0f32;
        let mut in_frame = 0usize;
        let path = self.path.clone();
        let total = frames * channels;
        let float = self.spec.sample_format == hound::SampleFormat::Float;
        if float {
            for s in self.inner.samples::<f32>().take(total) {
                frame_sum += s.map_err(|e| bad(e, &path))?;
                in_frame += 1;
                if in_frame == channels {
                    #[allow(clippy::cast_precision_loss)]
                    out.push(frame_sum / channels as f32);
                    frame_sum = 0.0;
                    in_frame = 0;
                }
            }
        } else {
            for s in self.inner.samples::<i32>().take(total) {
                #[allow(clippy::cast_precision_loss)]
                let v = s.map_err(|e| bad(e, &path))? as f32 * scale;
                frame_sum += v;
                in_frame += 1;
                if in_frame == channels {
                    #[allow(clippy::cast_precision_loss)]
                    out.push(frame_sum / channels as f32);
                    frame_sum = 0.0;
                    in_frame = 0;
                }
            }
        }
        if out.len() < frames {
            return Err(VoiceError::BadAudio {
                path: self.path.clone(),
                reason: format!(
                    "the file ends early: its header promises {} more frames",
                    self.remaining_frames - out.len() as u64
                ),
            });
        }
        self.remaining_frames -= out.len() as u64;
        Ok(out)
    }
}

/// Writes 48 kHz (or `rate_hz`) mono 16-bit WAV.
///
/// # Errors
/// If the file cannot be written.
pub fn write_wav(path: &Path, rate_hz: u32, samples: &[f32]) -> Result<(), VoiceError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate_hz,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let err = |e: hound::Error| match e {
        hound::Error::IoError(io) => VoiceError::io(path, "writing", io),
        other => VoiceError::BadAudio {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(err)?;
    for &s in samples {
        #[allow(clippy::cast_possible_truncation)]
        w.write_sample((s.clamp(-1.0, 1.0) * f32::from(i16::MAX)) as i16)
            .map_err(err)?;
    }
    w.finalize().map_err(err)
}
