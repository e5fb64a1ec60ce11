//! Byte-level primitives: little-endian fixed-width values, LEB128 varints, zigzag signed
//! varints and delta-coded integer columns.
//!
//! Every read is bounds-checked and returns [`DecodeError`] instead of panicking, because all
//! of these read untrusted bytes. Delta decoding uses wrapping arithmetic for the same reason:
//! a hostile column must not trip an overflow check.

use crate::error::DecodeError;

/// Appends encoded values to a byte vector.
#[derive(Debug, Default, Clone)]
pub(crate) struct ByteWriter {
    pub(crate) buf: Vec<u8>,
}

impl ByteWriter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    pub(crate) fn u16_le(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn u32_le(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn u64_le(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn i64_le(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn f32_le(&mut self, v: f32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            // Truncation to the low 7 bits is the encoding.
            #[allow(clippy::cast_possible_truncation)]
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        #[allow(clippy::cast_possible_truncation)]
        self.buf.push(v as u8);
    }

    pub(crate) fn svarint(&mut self, v: i64) {
        self.varint(zigzag(v));
    }

    /// A length-prefixed byte string.
    pub(crate) fn blob(&mut self, v: &[u8]) {
        self.varint(v.len() as u64);
        self.bytes(v);
    }

    pub(crate) fn string(&mut self, v: &str) {
        self.blob(v.as_bytes());
    }

    /// Writes `values` as a delta column: the first value, then successive differences.
    pub(crate) fn delta_column(&mut self, values: impl IntoIterator<Item = i64>) {
        let mut prev = 0i64;
        for v in values {
            self.svarint(v.wrapping_sub(prev));
            prev = v;
        }
    }

    /// Writes `values` as delta-of-delta: ideal for sample times at a steady display rate,
    /// where every second difference is zero or tiny.
    pub(crate) fn delta2_column(&mut self, values: impl IntoIterator<Item = i64>) {
        let mut prev = 0i64;
        let mut prev_delta = 0i64;
        for v in values {
            let delta = v.wrapping_sub(prev);
            self.svarint(delta.wrapping_sub(prev_delta));
            prev = v;
            prev_delta = delta;
        }
    }

    /// Writes a record: type byte, body length, body.
    pub(crate) fn record(&mut self, record_type: u8, body: &[u8]) {
        self.u8(record_type);
        self.blob(body);
    }
}

pub(crate) fn zigzag(v: i64) -> u64 {
    // The casts reinterpret bits; that is the zigzag encoding.
    #[allow(clippy::cast_sign_loss)]
    let r = ((v << 1) ^ (v >> 63)) as u64;
    r
}

pub(crate) fn unzigzag(v: u64) -> i64 {
    #[allow(clippy::cast_possible_wrap)]
    let r = ((v >> 1) as i64) ^ -((v & 1) as i64);
    r
}

/// Reads values from an untrusted byte slice.
#[derive(Debug, Clone)]
pub(crate) struct ByteReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        match end {
            Some(end) => {
                let s = &self.data[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(DecodeError::Truncated {
                offset: self.pos,
                what,
            }),
        }
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16_le(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u32_le(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u64_le(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn i64_le(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn f32_le(&mut self, what: &'static str) -> Result<f32, DecodeError> {
        Ok(f32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn varint(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut result = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8(what)?;
            let low = u64::from(byte & 0x7f);
            if shift == 63 && low > 1 {
                return Err(DecodeError::VarintOverflow { offset: start });
            }
            result |= low << shift;
            if byte & 0x80 == 0 {
                return Ok(result);
            }
        }
        Err(DecodeError::VarintOverflow { offset: start })
    }

    pub(crate) fn svarint(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(unzigzag(self.varint(what)?))
    }

    pub(crate) fn varint_u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let offset = self.pos;
        let v = self.varint(what)?;
        u32::try_from(v).map_err(|_| DecodeError::Invalid { offset, what })
    }

    /// Reads an element count and checks it against the bytes left, assuming each element
    /// takes at least `min_bytes_each` bytes. This is what stops a hostile count from
    /// allocating gigabytes before the data runs out.
    pub(crate) fn count(
        &mut self,
        min_bytes_each: usize,
        what: &'static str,
    ) -> Result<usize, DecodeError> {
        let v = self.varint(what)?;
        let limit = (self.remaining() / min_bytes_each.max(1)) as u64;
        if v > limit {
            return Err(DecodeError::TooLarge {
                what,
                declared: v,
                limit,
            });
        }
        usize::try_from(v).map_err(|_| DecodeError::Invalid {
            offset: self.pos,
            what,
        })
    }

    pub(crate) fn blob(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let n = self.count(1, what)?;
        self.take(n, what)
    }

    pub(crate) fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let offset = self.pos;
        let b = self.blob(what)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DecodeError::Invalid { offset, what })
    }

    pub(crate) fn delta_column(
        &mut self,
        n: usize,
        what: &'static str,
    ) -> Result<Vec<i64>, DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                what,
            });
        }
        let mut out = Vec::with_capacity(n);
        let mut prev = 0i64;
        for _ in 0..n {
            prev = prev.wrapping_add(self.svarint(what)?);
            out.push(prev);
        }
        Ok(out)
    }

    pub(crate) fn delta2_column(
        &mut self,
        n: usize,
        what: &'static str,
    ) -> Result<Vec<i64>, DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                what,
            });
        }
        let mut out = Vec::with_capacity(n);
        let mut prev = 0i64;
        let mut prev_delta = 0i64;
        for _ in 0..n {
            let delta = prev_delta.wrapping_add(self.svarint(what)?);
            prev = prev.wrapping_add(delta);
            prev_delta = delta;
            out.push(prev);
        }
        Ok(out)
    }
}

/// CRC32C (Castagnoli), hardware-accelerated where the CPU has it.
pub(crate) fn crc(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may unwrap.
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        let values = [
            0u64,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ];
        let mut w = ByteWriter::new();
        for v in values {
            w.varint(v);
        }
        let mut r = ByteReader::new(&w.buf);
        for v in values {
            assert_eq!(r.varint("v").unwrap(), v);
        }
        assert!(r.is_empty());
    }

    #[test]
    fn signed_columns_round_trip() {
        let values = [0i64, -1, 1, i64::MIN, i64::MAX, 5, -7];
        let mut w = ByteWriter::new();
        w.delta_column(values);
        w.delta2_column(values);
        let mut r = ByteReader::new(&w.buf);
        assert_eq!(r.delta_column(values.len(), "c").unwrap(), values);
        assert_eq!(r.delta2_column(values.len(), "c").unwrap(), values);
    }

    #[test]
    fn overlong_varint_is_an_error_not_a_panic() {
        let bytes = [0xffu8; 11];
        let mut r = ByteReader::new(&bytes);
        assert!(matches!(
            r.varint("v"),
            Err(DecodeError::VarintOverflow { .. })
        ));
    }

    #[test]
    fn hostile_count_is_refused_before_allocating() {
        let mut w = ByteWriter::new();
        w.varint(1 << 40);
        let mut r = ByteReader::new(&w.buf);
        assert!(matches!(r.count(1, "n"), Err(DecodeError::TooLarge { .. })));
    }
}
