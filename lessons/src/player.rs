//! Replay: the state of a lesson at any instant.
//!
//! `state_at(t)` finds the chunk holding `t` through the index (binary search), starts from
//! the nearest keyframe at or before it, and applies the few chunks of events in between; it
//! never scans back from the start. Head, hand and controller poses are interpolated between
//! the samples either side of `t`. Decoded chunks and finished strokes are cached, so
//! scrubbing forward or backward around one spot re-decodes almost nothing.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use crate::chunk::{DecodeParts, DecodedChunk};
use crate::error::LessonError;
use crate::event::{
    ControllerState, HandJoint, HandJoints, ImageBlob, ImageHash, LabelMapBlob, LabelMapHash,
    Payload, Pose, StreamId, HAND_JOINT_COUNT,
};
use crate::reader::LessonReader;
use crate::state::{
    Keyframe, KeyframeStroke, LessonState, SceneState, TimedStrokePoint, VisibleStroke,
};

/// Samples further apart than this are not interpolated, and a sample older than this is not
/// shown: the tracker had lost the hand or the head.
pub const MAX_SAMPLE_GAP_NS: i64 = 250_000_000;

/// Decoded chunks kept in memory.
const CHUNK_CACHE_CAPACITY: usize = 24;

/// A decoded chunk plus its stroke points grouped by stroke.
#[derive(Debug)]
struct CachedChunk {
    decoded: DecodedChunk,
    full: bool,
    points: HashMap<u32, Vec<TimedStrokePoint>>,
    ended: Vec<u32>,
}

impl CachedChunk {
    fn new(decoded: DecodedChunk, full: bool) -> Self {
        let mut points: HashMap<u32, Vec<TimedStrokePoint>> = HashMap::new();
        let mut ended = Vec::new();
        for e in &decoded.events {
            match &e.payload {
                Payload::StrokePoint(p) => {
                    points
                        .entry(p.stroke_id)
                        .or_default()
                        .push(TimedStrokePoint {
                            time_ns: e.time_ns,
                            position_mm: p.position_mm,
                            pressure: p.pressure,
                        });
                }
                Payload::StrokeEnd { stroke_id } => ended.push(*stroke_id),
                _ => {}
            }
        }
        Self {
            decoded,
            full,
            points,
            ended,
        }
    }
}

/// Plays a lesson back. See the module docs.
#[derive(Debug)]
pub struct Player {
    reader: LessonReader,
    keyframe_positions: Vec<usize>,
    cache: Vec<(usize, Arc<CachedChunk>)>,
    finished_strokes: HashMap<u32, Arc<Vec<TimedStrokePoint>>>,
    problems: BTreeMap<usize, String>,
}

impl Player {
    /// Opens a lesson file (from its footer, or by scanning if the footer is missing).
    ///
    /// # Errors
    /// If the file cannot be opened or its header is invalid.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LessonError> {
        Ok(Self::new(LessonReader::open(path)?))
    }

    /// Plays an already opened lesson.
    #[must_use]
    pub fn new(reader: LessonReader) -> Self {
        let keyframe_positions = reader
            .index()
            .iter()
            .enumerate()
            .filter(|(_, e)| e.keyframe)
            .map(|(i, _)| i)
            .collect();
        Self {
            reader,
            keyframe_positions,
            cache: Vec::new(),
            finished_strokes: HashMap::new(),
            problems: BTreeMap::new(),
        }
    }

    /// The underlying reader (header, index).
    #[must_use]
    pub fn reader(&self) -> &LessonReader {
        &self.reader
    }

    /// Earliest and latest event time: the range a front end replays over (a slider, a
    /// frame count). `None` when no chunk is readable.
    ///
    /// Whatever the file holds, `start <= end` and both lie within
    /// ±[`crate::format::MAX_TIME_NS`] (100 days), so `end - start` and the like cannot
    /// overflow; chunks whose claimed times are impossible are damage and left out, and
    /// events outside their chunk's range make it unreadable ([`Self::problems`]). See
    /// [`LessonReader::time_range_ns`]. `state_at` accepts any `i64`, in range or not.
    #[must_use]
    pub fn time_range_ns(&self) -> Option<(i64, i64)> {
        self.reader.time_range_ns()
    }

    /// Chunks that could not be read while playing (index position → what was wrong). The
    /// player skips them and shows what the rest of the file holds.
    #[must_use]
    pub fn problems(&self) -> &BTreeMap<usize, String> {
        &self.problems
    }

    /// Whether the lesson stores label maps (a segmentation ran while it was recorded): a
    /// player that never needs to swap labels keeps no copy of the image to re-upload.
    #[must_use]
    pub fn holds_label_maps(&self) -> bool {
        self.reader
            .index()
            .iter()
            .any(|e| e.stream(StreamId::LabelMaps as u8).is_some())
    }

    /// The label map stored in the lesson under `hash` (what a state's
    /// `scene.label_map` names), still compressed; `None` when no readable chunk holds it
    /// (its chunk is damaged: see [`Self::problems`]). Only chunks whose index entry lists
    /// label maps are read, never the whole file.
    pub fn label_map(&mut self, hash: &LabelMapHash) -> Option<LabelMapBlob> {
        self.find_blob(StreamId::LabelMaps, |p| match p {
            Payload::LabelMap(map) if &map.hash == hash => Some(map.as_ref().clone()),
            _ => None,
        })
    }

    /// The board image stored in the lesson under `hash` (what a state's
    /// `scene.boards[id].image` names; 1.3), still compressed; `None` when no readable chunk
    /// holds it. Only chunks whose index entry lists images are read.
    pub fn image(&mut self, hash: &ImageHash) -> Option<ImageBlob> {
        self.find_blob(StreamId::Images, |p| match p {
            Payload::Image(image) if &image.hash == hash => Some(image.as_ref().clone()),
            _ => None,
        })
    }

    /// The first event of `stream` that `pick` takes, reading only the chunks whose index
    /// entry lists that stream.
    fn find_blob<T>(
        &mut self,
        stream: StreamId,
        pick: impl Fn(&Payload) -> Option<T>,
    ) -> Option<T> {
        let holding: Vec<usize> = self
            .reader
            .index()
            .iter()
            .enumerate()
            .filter(|(_, e)| e.stream(stream as u8).is_some())
            .map(|(i, _)| i)
            .collect();
        for pos in holding {
            let Some(chunk) = self.chunk(pos, false) else {
                continue;
            };
            if let Some(found) = chunk.decoded.events.iter().find_map(|e| pick(&e.payload)) {
                return Some(found);
            }
        }
        None
    }

    /// The state of the lesson at `time_ns`.
    pub fn state_at(&mut self, time_ns: i64) -> LessonState {
        let mut state = LessonState {
            time_ns,
            ..LessonState::new(SceneState::default())
        };
        let index_len = self.reader.index().len();
        if index_len == 0 {
            return state;
        }
        // Last chunk starting at or before t (or the first chunk, for t before the start).
        let k = self
            .reader
            .index()
            .partition_point(|e| e.t_start_ns <= time_ns)
            .saturating_sub(1);

        // The discrete state (scene, chapter, which strokes) is the keyframe's, brought
        // forward to t by the same rule the encoder used to write keyframes.
        let (start, mut keyframe) = self.keyframe_for(k);
        for pos in start..=k {
            let Some(chunk) = self.chunk(pos, false) else {
                continue;
            };
            let seq = self.reader.index()[pos].seq;
            for e in chunk
                .decoded
                .events
                .iter()
                .take_while(|e| e.time_ns <= time_ns)
            {
                keyframe.apply(e, seq);
            }
        }

        state.scene = keyframe.scene;
        state.chapter = keyframe.chapter;
        state.strokes = keyframe
            .strokes
            .values()
            .map(|s| VisibleStroke {
                begin: s.begin,
                begin_time_ns: s.begin_time_ns,
                points: self.stroke_points(s, k, time_ns),
            })
            .collect();

        state.head = self.sampled(k, time_ns, |c| &c.head, Pose::interpolate);
        for hand in 0..2 {
            state.hands[hand] = self.sampled(k, time_ns, |c| &c.hands[hand], interpolate_hand);
            state.controllers[hand] =
                self.sampled(k, time_ns, |c| &c.controllers[hand], interpolate_controller);
        }
        state
    }

    /// The position to replay from and the keyframe state there: the latest readable
    /// keyframe at or before `k`, else the start with the default state.
    fn keyframe_for(&mut self, k: usize) -> (usize, Keyframe) {
        let candidates = self.keyframe_positions.partition_point(|&p| p <= k);
        for i in (0..candidates).rev() {
            let pos = self.keyframe_positions[i];
            if let Some(kf) = self
                .chunk(pos, false)
                .and_then(|c| c.decoded.keyframe.clone())
            {
                return (pos, kf);
            }
        }
        (0, Keyframe::default())
    }

    /// Points of stroke `s` drawn up to `time_ns`, reading forward from its first chunk.
    fn stroke_points(
        &mut self,
        s: &KeyframeStroke,
        k: usize,
        time_ns: i64,
    ) -> Vec<TimedStrokePoint> {
        let id = s.begin.stroke_id;
        let all = if let Some(done) = self.finished_strokes.get(&id) {
            Arc::clone(done)
        } else {
            let first = self
                .reader
                .index()
                .partition_point(|e| e.seq < s.first_chunk_seq);
            let mut points = Vec::new();
            let mut finished = false;
            for pos in first..self.reader.index().len() {
                if pos > k && !finished {
                    // Past the chunk holding t: nothing later is visible yet.
                    if self.reader.index()[pos].t_start_ns > time_ns {
                        break;
                    }
                }
                let Some(chunk) = self.chunk(pos, false) else {
                    continue;
                };
                if let Some(p) = chunk.points.get(&id) {
                    points.extend_from_slice(p);
                }
                if chunk.ended.contains(&id) {
                    finished = true;
                    break;
                }
            }
            let points = Arc::new(points);
            if finished {
                self.finished_strokes.insert(id, Arc::clone(&points));
            }
            points
        };
        all.iter()
            .filter(|p| p.time_ns <= time_ns)
            .copied()
            .collect()
    }

    /// The interpolated value of one sampled stream at `time_ns`, from the samples either
    /// side of it, looking into the neighbouring chunk when `time_ns` is at a chunk edge.
    fn sampled<S: Sample>(
        &mut self,
        k: usize,
        time_ns: i64,
        samples: impl Fn(&DecodedChunk) -> &[S],
        lerp: impl Fn(&S::Value, &S::Value, f32) -> S::Value,
    ) -> Option<S::Value> {
        let chunk = self.chunk(k, true)?;
        let list = samples(&chunk.decoded);
        let split = list.partition_point(|s| s.time_ns() <= time_ns);
        let before = if split > 0 {
            list.get(split - 1).copied()
        } else if k > 0 {
            self.chunk(k - 1, true)
                .and_then(|c| samples(&c.decoded).last().copied())
        } else {
            None
        };
        let after = if split < list.len() {
            list.get(split).copied()
        } else if k + 1 < self.reader.index().len() {
            self.chunk(k + 1, true)
                .and_then(|c| samples(&c.decoded).first().copied())
        } else {
            None
        };
        let before = before?;
        let after = after.and_then(|s| s.value().map(|v| (s.time_ns(), v)));
        interpolate(time_ns, (before.time_ns(), before.value()?), after, lerp)
    }

    /// A chunk from the cache, or read and decoded; `None` (and a recorded problem) if it is
    /// damaged.
    fn chunk(&mut self, pos: usize, full: bool) -> Option<Arc<CachedChunk>> {
        if let Some(i) = self
            .cache
            .iter()
            .position(|(p, c)| *p == pos && (c.full || !full))
        {
            let entry = self.cache.remove(i);
            let chunk = Arc::clone(&entry.1);
            self.cache.push(entry);
            return Some(chunk);
        }
        if self.problems.contains_key(&pos) {
            return None;
        }
        let parts = if full {
            DecodeParts::ALL
        } else {
            DecodeParts::EVENTS
        };
        match self.reader.read_chunk(pos, parts) {
            Ok(decoded) => {
                let chunk = Arc::new(CachedChunk::new(decoded, full));
                self.cache.retain(|(p, _)| *p != pos);
                if self.cache.len() >= CHUNK_CACHE_CAPACITY {
                    self.cache.remove(0);
                }
                self.cache.push((pos, Arc::clone(&chunk)));
                Some(chunk)
            }
            Err(e) => {
                self.problems.insert(pos, crate::error::full_message(&e));
                None
            }
        }
    }
}

/// A timestamped sample of a sampled stream; `value()` is `None` while not tracked.
trait Sample: Copy {
    type Value: Copy;
    fn time_ns(&self) -> i64;
    fn value(&self) -> Option<Self::Value>;
}

impl Sample for (i64, Pose) {
    type Value = Pose;
    fn time_ns(&self) -> i64 {
        self.0
    }
    fn value(&self) -> Option<Pose> {
        Some(self.1)
    }
}

impl<T: Copy> Sample for (i64, Option<T>) {
    type Value = T;
    fn time_ns(&self) -> i64 {
        self.0
    }
    fn value(&self) -> Option<T> {
        self.1
    }
}

/// The value at `time_ns` from the sample `before` it and the next one, if close enough.
///
/// `time_ns` comes from the caller and the sample times from the file, so their differences
/// saturate rather than overflow (a saturated difference is far over the gap limit anyway).
fn interpolate<T: Copy>(
    time_ns: i64,
    before: (i64, T),
    after: Option<(i64, T)>,
    lerp: impl Fn(&T, &T, f32) -> T,
) -> Option<T> {
    let since_before = time_ns.saturating_sub(before.0);
    match after {
        Some((t1, v1))
            if t1 > before.0
                && t1.saturating_sub(before.0) <= MAX_SAMPLE_GAP_NS
                && time_ns >= before.0 =>
        {
            // Ratio of two small nanosecond spans (both at most the gap limit); f32 is ample.
            #[allow(clippy::cast_precision_loss)]
            let s = (since_before as f64 / t1.saturating_sub(before.0) as f64) as f32;
            Some(lerp(&before.1, &v1, s.clamp(0.0, 1.0)))
        }
        _ if since_before <= MAX_SAMPLE_GAP_NS => Some(before.1),
        _ => None,
    }
}

fn interpolate_hand(a: &HandJoints, b: &HandJoints, s: f32) -> HandJoints {
    let mut out = *a;
    out.tracked_mask = a.tracked_mask & b.tracked_mask;
    for j in 0..HAND_JOINT_COUNT {
        out.joints[j] = HandJoint {
            pose: a.joints[j].pose.interpolate(&b.joints[j].pose, s),
            radius_mm: a.joints[j].radius_mm + (b.joints[j].radius_mm - a.joints[j].radius_mm) * s,
        };
    }
    out
}

fn interpolate_controller(a: &ControllerState, b: &ControllerState, s: f32) -> ControllerState {
    ControllerState {
        grip: a.grip.interpolate(&b.grip, s),
        aim: a.aim.interpolate(&b.aim, s),
        // Buttons are discrete: the state of the last sample holds until the next.
        buttons: a.buttons,
        trigger: a.trigger + (b.trigger - a.trigger) * s,
        squeeze: a.squeeze + (b.squeeze - a.squeeze) * s,
        thumbstick: a.thumbstick.lerp(b.thumbstick, s),
    }
}
