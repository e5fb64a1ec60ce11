//! The narration as an Ogg Opus file (RFC 7845), packets copied as recorded (no re-encoding):
//! OpusHead with the stream's pre-skip, granule positions counting decoded samples, and the
//! last page's granule set so a decoder returns exactly the recorded number of samples.

use std::io::Write;

use ogg::writing::{PacketWriteEndInfo, PacketWriter};
use twinray_lessons::reader::LessonReader;
use twinray_lessons::voice::VoiceIndex;

use crate::codec::{library_version, PACKET_SAMPLES};
use crate::error::VoiceError;

/// A TOC-only packet: one 20 ms full-band CELT frame of zero bytes, which a decoder treats as
/// a lost frame (RFC 6716 §3.2.1). Stands in for packets lost from the lesson so that the
/// granule positions stay true.
const LOST_PACKET: [u8; 1] = [0xF8];

/// Packets per Ogg page (1 s): pages must end now and then or the writer holds everything.
const PACKETS_PER_PAGE: u32 = 50;

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OggExport {
    /// Recorded samples the file decodes to (48 kHz).
    pub samples: u64,
    /// Audio packets written.
    pub packets: u64,
    /// Of those, stand-ins for lost packets.
    pub lost_packets: u64,
}

/// Writes the lesson's narration as Ogg Opus to `out`.
///
/// # Errors
/// [`VoiceError::Invalid`] if the lesson has no voice; otherwise if reading or writing fails.
pub fn export_ogg_opus(
    reader: &mut LessonReader,
    index: &VoiceIndex,
    out: &mut dyn Write,
) -> Result<OggExport, VoiceError> {
    let format = index
        .format
        .filter(|_| index.has_voice())
        .ok_or_else(|| VoiceError::Invalid("the lesson has no narration to export".into()))?;
    let io = |e: std::io::Error| VoiceError::io("<ogg output>", "writing", e);
    let serial = 0x7477_6c76; // "twlv"
    let pre_skip = u64::from(format.pre_skip);
    let total = pre_skip + index.end_sample;
    let mut pw = PacketWriter::new(out);

    let mut head = Vec::with_capacity(19);
    head.extend_from_slice(b"OpusHead");
    head.push(1);
    head.push(format.channel_count.max(1));
    head.extend_from_slice(&format.pre_skip.to_le_bytes());
    head.extend_from_slice(&format.sample_rate_hz.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes());
    head.push(0);
    pw.write_packet(head, serial, PacketWriteEndInfo::EndPage, 0)
        .map_err(io)?;
    let vendor = library_version();
    let comments = ["ENCODER=twinray lesson export-audio"];
    let mut tags = Vec::new();
    tags.extend_from_slice(b"OpusTags");
    tags.extend_from_slice(&u32::try_from(vendor.len()).unwrap_or(0).to_le_bytes());
    tags.extend_from_slice(vendor.as_bytes());
    tags.extend_from_slice(&u32::try_from(comments.len()).unwrap_or(0).to_le_bytes());
    for c in comments {
        tags.extend_from_slice(&u32::try_from(c.len()).unwrap_or(0).to_le_bytes());
        tags.extend_from_slice(c.as_bytes());
    }
    pw.write_packet(tags, serial, PacketWriteEndInfo::EndPage, 0)
        .map_err(io)?;

    // Every 960-sample slot from 0 until the decoded output covers `total` gets one packet:
    // the recorded one, or a lost-frame stand-in.
    let mut stats = OggExport {
        samples: index.end_sample,
        packets: 0,
        lost_packets: 0,
    };
    let mut granule = 0u64;
    let mut since_page = 0u32;
    let mut write = |pw: &mut PacketWriter<&mut dyn Write>,
                     data: Vec<u8>,
                     granule: u64,
                     stats: &mut OggExport|
     -> Result<bool, VoiceError> {
        stats.packets += 1;
        since_page += 1;
        let last = granule >= total;
        let end = if last {
            PacketWriteEndInfo::EndStream
        } else if since_page >= PACKETS_PER_PAGE {
            since_page = 0;
            PacketWriteEndInfo::EndPage
        } else {
            PacketWriteEndInfo::NormalPacket
        };
        pw.write_packet(data, serial, end, granule.min(total))
            .map_err(io)?;
        Ok(last)
    };
    'chunks: for chunk in index.chunks.clone() {
        // An unreadable chunk's slots are filled with lost frames below.
        let Ok(packets) = VoiceIndex::packets(reader, chunk.index_pos) else {
            continue;
        };
        for p in packets {
            if p.sample_index < granule {
                continue;
            }
            while granule < p.sample_index {
                granule += PACKET_SAMPLES as u64;
                stats.lost_packets += 1;
                if write(&mut pw, LOST_PACKET.to_vec(), granule, &mut stats)? {
                    break 'chunks;
                }
            }
            granule = p.end();
            if write(&mut pw, p.data, granule, &mut stats)? {
                break 'chunks;
            }
        }
    }
    // A recording cut short (a crash) ends before its padding: one more (lost) frame ends
    // the stream, and its granule trims the output to what the packets cover.
    if granule < total {
        let last = (granule + PACKET_SAMPLES as u64).min(total);
        stats.samples = last.saturating_sub(pre_skip).min(index.end_sample);
        pw.write_packet(
            LOST_PACKET.to_vec(),
            serial,
            PacketWriteEndInfo::EndStream,
            last,
        )
        .map_err(io)?;
        stats.packets += 1;
        stats.lost_packets += 1;
    }
    pw.into_inner().flush().map_err(io)?;
    Ok(stats)
}
