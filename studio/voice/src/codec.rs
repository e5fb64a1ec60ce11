//! Opus through the system libopus: the one place the codec's settings live.

use twinray_lessons::event::VoiceFormat;

use crate::error::VoiceError;

/// The stream rate: Opus's native rate, and the rate of every sample index in a lesson.
pub const SAMPLE_RATE_HZ: u32 = 48_000;

/// Samples per packet: 20 ms, Opus's usual frame for speech.
pub const PACKET_SAMPLES: usize = 960;

/// Target bit rate: speech at 24 kbit/s is transparent enough to teach with and costs about
/// 11 MB an hour.
pub const BIT_RATE_BPS: i32 = 24_000;

/// The largest packet libopus writes (its recommended buffer).
const MAX_PACKET_BYTES: usize = 4000;

/// Longest stretch one decode call may produce (120 ms at 48 kHz).
pub const MAX_DECODED_SAMPLES: usize = 5760;

/// Encodes 20 ms mono frames at 48 kHz.
pub struct OpusEncoder {
    inner: opus::Encoder,
    format: VoiceFormat,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl OpusEncoder {
    /// A voice encoder at [`BIT_RATE_BPS`].
    ///
    /// # Errors
    /// If libopus refuses the settings.
    pub fn new() -> Result<Self, VoiceError> {
        let mut inner = opus::Encoder::new(
            SAMPLE_RATE_HZ,
            opus::Channels::Mono,
            opus::Application::Voip,
        )
        .map_err(|e| VoiceError::codec("creating the encoder", &e))?;
        inner
            .set_bitrate(opus::Bitrate::Bits(BIT_RATE_BPS))
            .map_err(|e| VoiceError::codec("setting the bit rate", &e))?;
        let lookahead = inner
            .get_lookahead()
            .map_err(|e| VoiceError::codec("asking the look-ahead", &e))?;
        let pre_skip = u16::try_from(lookahead).map_err(|_| VoiceError::Codec {
            what: "asking the look-ahead",
            message: format!("{lookahead} samples"),
        })?;
        Ok(Self {
            inner,
            format: VoiceFormat::opus_mono(pre_skip),
            scratch: vec![0; MAX_PACKET_BYTES],
        })
    }

    /// The format the packets have (pre-skip included).
    #[must_use]
    pub fn format(&self) -> VoiceFormat {
        self.format
    }

    /// Encodes one frame of [`PACKET_SAMPLES`] samples.
    ///
    /// # Errors
    /// If libopus fails (a frame of the wrong length).
    pub fn encode(&mut self, frame: &[f32]) -> Result<Vec<u8>, VoiceError> {
        let n = self
            .inner
            .encode_float(frame, &mut self.scratch)
            .map_err(|e| VoiceError::codec("encoding", &e))?;
        Ok(self.scratch[..n].to_vec())
    }
}

/// Decodes a mono 48 kHz stream.
pub struct OpusDecoder {
    inner: opus::Decoder,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder").finish_non_exhaustive()
    }
}

impl OpusDecoder {
    /// A fresh decoder.
    ///
    /// # Errors
    /// If libopus cannot create one.
    pub fn new() -> Result<Self, VoiceError> {
        Ok(Self {
            inner: opus::Decoder::new(SAMPLE_RATE_HZ, opus::Channels::Mono)
                .map_err(|e| VoiceError::codec("creating the decoder", &e))?,
        })
    }

    /// Decodes one packet into `out` (at least [`MAX_DECODED_SAMPLES`] long); returns the
    /// samples written.
    ///
    /// # Errors
    /// If the packet is not valid Opus.
    pub fn decode(&mut self, packet: &[u8], out: &mut [f32]) -> Result<usize, VoiceError> {
        self.inner
            .decode_float(packet, out, false)
            .map_err(|e| VoiceError::codec("decoding", &e))
    }

    /// Conceals `samples` samples of a lost packet (libopus's packet-loss concealment).
    ///
    /// # Errors
    /// If libopus fails.
    pub fn conceal(&mut self, out: &mut [f32]) -> Result<usize, VoiceError> {
        self.inner
            .decode_float(&[], out, false)
            .map_err(|e| VoiceError::codec("concealing a lost packet", &e))
    }
}

/// The libopus version string ("libopus 1.3.1"), for Ogg's vendor field.
#[must_use]
pub fn library_version() -> &'static str {
    opus::version()
}
