//! The sound hardware through cpal (ALSA on Linux): the microphone as a [`VoiceSource`] and
//! the speakers as an [`OutputSink`]. Everything here may find no device (a server, CI, a
//! laptop with its card in use): that is an error the studio shows, never a panic.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, InputCallbackInfo, SampleFormat, SizedSample};
use crossbeam_channel::{Receiver, Sender};

use crate::error::VoiceError;
use crate::source::{CapturedBuffer, VoiceSource};

/// Capture buffers the channel holds (several seconds at usual buffer sizes).
const CAPTURE_QUEUE: usize = 512;

/// Runs `f` with alsa-lib's messages on this thread caught rather than printed on stderr, and
/// returns them (the last line, which names the cause) with `f`'s result. A studio on a machine
/// without a sound card would otherwise fill the terminal with "cannot find card" lines; the
/// user gets one error that says it instead.
fn catching_alsa_messages<T>(f: impl FnOnce() -> T) -> (T, Option<String>) {
    #[cfg(target_os = "linux")]
    {
        let caught = alsa::Output::local_error_handler().ok();
        let value = f();
        let text = caught.map(|o| o.borrow().to_string()).unwrap_or_default();
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_owned());
        (value, last)
    }
    #[cfg(not(target_os = "linux"))]
    {
        (f(), None)
    }
}

/// `error` with what alsa-lib said, when it said something.
fn with_alsa(error: String, alsa: Option<&String>) -> String {
    match alsa {
        Some(said) => format!("{error} (ALSA: {said})"),
        None => error,
    }
}

/// The input devices the host lists, by name (the studio's chooser). Empty when there are
/// none or the host cannot list them.
#[must_use]
pub fn input_device_names() -> Vec<String> {
    catching_alsa_messages(|| {
        let host = cpal::default_host();
        host.input_devices()
            .map(|devices| devices.map(|d| d.to_string()).collect())
            .unwrap_or_default()
    })
    .0
}

/// The microphone. See the module docs.
pub struct MicrophoneSource {
    stream: cpal::Stream,
    receiver: Receiver<CapturedBuffer>,
    name: String,
    rate_hz: u32,
    error: Arc<Mutex<Option<String>>>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for MicrophoneSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MicrophoneSource")
            .field("name", &self.name)
            .field("rate_hz", &self.rate_hz)
            .finish_non_exhaustive()
    }
}

impl MicrophoneSource {
    /// Opens the input device called `name` (the default one for `None`) at its default
    /// format, and starts it.
    ///
    /// # Errors
    /// [`VoiceError::NoInput`] with the reason when there is no such device or it cannot be
    /// opened.
    pub fn open(name: Option<&str>) -> Result<Self, VoiceError> {
        let (opened, alsa) = catching_alsa_messages(|| Self::open_quietly(name));
        opened.map_err(|e| match e {
            VoiceError::NoInput(reason) => VoiceError::NoInput(with_alsa(reason, alsa.as_ref())),
            other => other,
        })
    }

    fn open_quietly(name: Option<&str>) -> Result<Self, VoiceError> {
        let host = cpal::default_host();
        let device = match name {
            None => host
                .default_input_device()
                .ok_or_else(|| VoiceError::NoInput("the system has no input device".into()))?,
            Some(wanted) => host
                .input_devices()
                .map_err(|e| VoiceError::NoInput(format!("listing input devices: {e}")))?
                .find(|d| d.to_string() == wanted)
                .ok_or_else(|| VoiceError::NoInput(format!("no input device called {wanted:?}")))?,
        };
        let device_name = device.to_string();
        let supported = device
            .default_input_config()
            .map_err(|e| VoiceError::NoInput(format!("{device_name}: {e}")))?;
        let config = supported.config();
        let rate_hz = config.sample_rate;
        let (sender, receiver) = crossbeam_channel::bounded(CAPTURE_QUEUE);
        let error = Arc::new(Mutex::new(None));
        let dropped = Arc::new(AtomicU64::new(0));
        let ctx = Callback {
            sender,
            channels: usize::from(config.channels.max(1)),
            dropped: Arc::clone(&dropped),
        };
        let stream = match supported.sample_format() {
            SampleFormat::F32 => build_input::<f32>(&device, config, ctx, Arc::clone(&error)),
            SampleFormat::I16 => build_input::<i16>(&device, config, ctx, Arc::clone(&error)),
            SampleFormat::I32 => build_input::<i32>(&device, config, ctx, Arc::clone(&error)),
            SampleFormat::U16 => build_input::<u16>(&device, config, ctx, Arc::clone(&error)),
            other => {
                return Err(VoiceError::NoInput(format!(
                    "{device_name}: sample format {other} is not supported"
                )))
            }
        }
        .map_err(|e| VoiceError::NoInput(format!("{device_name}: {e}")))?;
        stream
            .play()
            .map_err(|e| VoiceError::NoInput(format!("{device_name}: starting: {e}")))?;
        Ok(Self {
            stream,
            receiver,
            name: device_name,
            rate_hz,
            error,
            dropped,
        })
    }

    /// Buffers dropped because the voice thread fell behind.
    #[must_use]
    pub fn dropped_buffers(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

struct Callback {
    sender: Sender<CapturedBuffer>,
    channels: usize,
    dropped: Arc<AtomicU64>,
}

fn build_input<T>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    ctx: Callback,
    error: Arc<Mutex<Option<String>>>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    device.build_input_stream(
        config,
        move |data: &[T], info: &InputCallbackInfo| {
            // The capture instant on the process's clock: now, less how long ago the device
            // says the first frame was captured.
            let ts = info.timestamp();
            let age = ts.callback.duration_since(ts.capture);
            let now = Instant::now();
            let captured_at = now.checked_sub(age).unwrap_or(now);
            #[allow(clippy::cast_precision_loss)]
            let scale = 1.0 / ctx.channels as f32;
            let samples: Vec<f32> = data
                .chunks_exact(ctx.channels)
                .map(|f| f.iter().map(|s| s.to_sample::<f32>()).sum::<f32>() * scale)
                .collect();
            // Never block the audio thread.
            if ctx
                .sender
                .try_send(CapturedBuffer {
                    samples,
                    captured_at,
                })
                .is_err()
            {
                ctx.dropped.fetch_add(1, Ordering::Relaxed);
            }
        },
        move |e| {
            *error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
        },
        None,
    )
}

impl VoiceSource for MicrophoneSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn sample_rate_hz(&self) -> u32 {
        self.rate_hz
    }

    fn next_buffer(&mut self, timeout: Duration) -> Result<Option<CapturedBuffer>, VoiceError> {
        match self.receiver.recv_timeout(timeout) {
            Ok(b) => Ok(Some(b)),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                let failed = self
                    .error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                match failed {
                    // cpal reports overruns as errors too; they do not stop the stream.
                    Some(e) if !e.to_lowercase().contains("xrun") => {
                        Err(VoiceError::SourceEnded(format!("{}: {e}", self.name)))
                    }
                    _ => Ok(None),
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(VoiceError::SourceEnded(
                format!("{} stopped delivering sound", self.name),
            )),
        }
    }
}

impl Drop for MicrophoneSource {
    fn drop(&mut self) {
        let _ = self.stream.pause();
    }
}

/// What the output plays: fills 48 kHz mono samples, called on the audio thread (it must not
/// block for long). The second argument is how long after this call the first sample will be
/// heard (the device's own latency, from its timestamps), so a player can aim at the right
/// moment rather than lag by the device's buffer.
pub type Fill = Box<dyn FnMut(&mut [f32], Duration) + Send>;

/// The speakers, fed 48 kHz mono by a [`Fill`] function, with a volume.
pub struct OutputSink {
    stream: cpal::Stream,
    volume: Arc<AtomicU32>,
    name: String,
}

impl std::fmt::Debug for OutputSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputSink")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl OutputSink {
    /// Opens the default output at 48 kHz (any channel count: the mono signal goes to every
    /// channel) and starts it.
    ///
    /// # Errors
    /// [`VoiceError::NoOutput`] with the reason when there is no usable output.
    pub fn open(fill: Fill) -> Result<Self, VoiceError> {
        let (opened, alsa) = catching_alsa_messages(|| Self::open_quietly(fill));
        opened.map_err(|e| match e {
            VoiceError::NoOutput(reason) => VoiceError::NoOutput(with_alsa(reason, alsa.as_ref())),
            other => other,
        })
    }

    fn open_quietly(fill: Fill) -> Result<Self, VoiceError> {
        let host = cpal::default_host();
        let device = host
            .default_output_device()
            .ok_or_else(|| VoiceError::NoOutput("the system has no output device".into()))?;
        let name = device.to_string();
        let supported = device
            .default_output_config()
            .map_err(|e| VoiceError::NoOutput(format!("{name}: {e}")))?;
        let channels = supported.channels().max(1);
        let config = cpal::StreamConfig {
            channels,
            sample_rate: crate::codec::SAMPLE_RATE_HZ,
            buffer_size: cpal::BufferSize::Default,
        };
        let volume = Arc::new(AtomicU32::new(1.0f32.to_bits()));
        let stream = match supported.sample_format() {
            SampleFormat::F32 => build_output::<f32>(&device, config, fill, Arc::clone(&volume)),
            SampleFormat::I16 => build_output::<i16>(&device, config, fill, Arc::clone(&volume)),
            SampleFormat::I32 => build_output::<i32>(&device, config, fill, Arc::clone(&volume)),
            SampleFormat::U16 => build_output::<u16>(&device, config, fill, Arc::clone(&volume)),
            other => {
                return Err(VoiceError::NoOutput(format!(
                    "{name}: sample format {other} is not supported"
                )))
            }
        }
        .map_err(|e| VoiceError::NoOutput(format!("{name}: {e}")))?;
        stream
            .play()
            .map_err(|e| VoiceError::NoOutput(format!("{name}: starting: {e}")))?;
        Ok(Self {
            stream,
            volume,
            name,
        })
    }

    /// The device's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the gain, 0 (mute) to 1.
    pub fn set_volume(&self, volume: f32) {
        self.volume
            .store(volume.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
    }
}

fn build_output<T>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    mut fill: Fill,
    volume: Arc<AtomicU32>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + FromSample<f32>,
{
    let channels = usize::from(config.channels.max(1));
    let mut mono: Vec<f32> = Vec::new();
    device.build_output_stream(
        config,
        move |out: &mut [T], info: &cpal::OutputCallbackInfo| {
            let frames = out.len() / channels;
            mono.resize(frames, 0.0);
            let ts = info.timestamp();
            fill(&mut mono, ts.playback.duration_since(ts.callback));
            let gain = f32::from_bits(volume.load(Ordering::Relaxed));
            for (frame, v) in out.chunks_exact_mut(channels).zip(&mono) {
                frame.fill(T::from_sample(v * gain));
            }
        },
        |_e| {},
        None,
    )
}

impl Drop for OutputSink {
    fn drop(&mut self) {
        let _ = self.stream.pause();
    }
}
