//! Streaming resampling of a mono source to 48 kHz (rubato), with its delay removed so that
//! output sample `j` means input time `j / 48 000` s from the first input sample.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use crate::codec::SAMPLE_RATE_HZ;
use crate::error::VoiceError;

/// Input frames per resampler call: 10 ms at 48 kHz, about a capture buffer.
const CHUNK_FRAMES: usize = 480;

/// Resamples a mono stream to [`SAMPLE_RATE_HZ`]. See the module docs.
pub struct StreamResampler {
    inner: Fft<f32>,
    from_hz: u32,
    pending: Vec<f32>,
    out: Vec<f32>,
    to_trim: usize,
    total_in: u64,
    total_out: u64,
}

impl std::fmt::Debug for StreamResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamResampler")
            .field("from_hz", &self.from_hz)
            .finish_non_exhaustive()
    }
}

impl StreamResampler {
    /// A resampler from `from_hz`.
    ///
    /// # Errors
    /// If rubato refuses the rate.
    pub fn new(from_hz: u32) -> Result<Self, VoiceError> {
        let err = |e: &dyn std::fmt::Display| VoiceError::Resample {
            from_hz,
            message: e.to_string(),
        };
        let inner = Fft::<f32>::new(
            from_hz as usize,
            SAMPLE_RATE_HZ as usize,
            CHUNK_FRAMES,
            1,
            FixedSync::Input,
        )
        .map_err(|e| err(&e))?;
        let out = vec![0.0; inner.output_frames_max()];
        let to_trim = inner.output_delay();
        Ok(Self {
            inner,
            from_hz,
            pending: Vec::new(),
            out,
            to_trim,
            total_in: 0,
            total_out: 0,
        })
    }

    fn run_chunk(&mut self, partial: Option<usize>, sink: &mut Vec<f32>) -> Result<(), VoiceError> {
        let err = |e: &dyn std::fmt::Display| VoiceError::Resample {
            from_hz: self.from_hz,
            message: e.to_string(),
        };
        let need = self.inner.input_frames_next();
        let padded;
        let input: &[f32] = if self.pending.len() >= need {
            &self.pending[..need]
        } else {
            let mut p = self.pending.clone();
            p.resize(need, 0.0);
            padded = p;
            &padded
        };
        let inp = InterleavedSlice::new(input, 1, need).map_err(|e| err(&e))?;
        let cap = self.out.len();
        let mut outp = InterleavedSlice::new_mut(&mut self.out, 1, cap).map_err(|e| err(&e))?;
        let indexing = partial.map(|n| Indexing::new().partial_len(n));
        let (n_in, n_out) = self
            .inner
            .process_into_buffer(&inp, &mut outp, indexing.as_ref())
            .map_err(|e| err(&e))?;
        let consumed = partial.unwrap_or(n_in).min(self.pending.len());
        self.pending.drain(..consumed);
        let skip = self.to_trim.min(n_out);
        self.to_trim -= skip;
        sink.extend_from_slice(&self.out[skip..n_out]);
        self.total_out += (n_out - skip) as u64;
        Ok(())
    }

    /// Resamples `input`, appending what is ready to `sink`.
    ///
    /// # Errors
    /// If rubato fails.
    pub fn push(&mut self, input: &[f32], sink: &mut Vec<f32>) -> Result<(), VoiceError> {
        self.total_in += input.len() as u64;
        self.pending.extend_from_slice(input);
        while self.pending.len() >= self.inner.input_frames_next() {
            self.run_chunk(None, sink)?;
        }
        Ok(())
    }

    /// Ends the stream: appends the rest, so that the output holds exactly
    /// `round(input × 48 000 / rate)` samples.
    ///
    /// # Errors
    /// If rubato fails.
    pub fn flush(&mut self, sink: &mut Vec<f32>) -> Result<(), VoiceError> {
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let expected = (self.total_in as f64 * f64::from(SAMPLE_RATE_HZ) / f64::from(self.from_hz))
            .round() as u64;
        let before = sink.len();
        if !self.pending.is_empty() {
            let n = self.pending.len();
            self.run_chunk(Some(n), sink)?;
        }
        // Each call yields at least some frames once the delay is spent; bound the loop anyway.
        let mut guard = 0;
        while self.total_out < expected && guard < 64 {
            self.run_chunk(Some(0), sink)?;
            guard += 1;
        }
        let extra = usize::try_from(self.total_out.saturating_sub(expected)).unwrap_or(0);
        let keep = sink.len().saturating_sub(extra).max(before);
        sink.truncate(keep);
        self.total_out = self.total_out.min(expected);
        Ok(())
    }
}
