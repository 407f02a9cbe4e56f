//! Payloads computed as they are written. A pass that derives a large tensor from one it
//! already has (the fp16 pass's float16 weights from the float32 ones in the input map) may
//! leave the result pending: [`crate::save::save_file`] then computes it chunk by chunk straight
//! into the output file, so the converted weights never sit in memory whole. Anything else
//! that needs the bytes ([`crate::save::to_bytes`], [`crate::Model::materialize_pending`])
//! computes them in full.
//!
//! Until then the initializer's tensor holds no data: a reader that looks at `raw_data` sees
//! none (and treats the tensor as an unknown constant), never stale or wrong bytes.

use std::fmt;
use std::io::{self, Write};
use std::sync::Arc;

use bytes::Bytes;
use rustc_hash::FxHashMap as HashMap;

use crate::tensor;

/// Writes bytes `[offset, offset + out.len())` of the payload into `out`.
pub type Fill = dyn Fn(usize, &mut [u8]) + Send + Sync;

/// Bytes computed per step when a payload is streamed: large enough for the filler to spread
/// over every core, small enough to stay out of the way (two buffers are in flight).
const STEP: usize = 16 << 20;

/// A payload of known length whose bytes are computed on demand.
#[derive(Clone)]
pub struct PendingPayload {
    len: usize,
    /// Offsets and lengths handed to `fill` are multiples of this (the last length excepted).
    granule: usize,
    fill: Arc<Fill>,
}

impl fmt::Debug for PendingPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingPayload")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl PendingPayload {
    /// A payload of `len` bytes; `fill` is called with offsets (and lengths, but for the last
    /// call) that are multiples of `granule` bytes, so it can convert whole elements.
    pub fn new(
        len: usize,
        granule: usize,
        fill: impl Fn(usize, &mut [u8]) + Send + Sync + 'static,
    ) -> Self {
        Self {
            len,
            granule: granule.max(1),
            fill: Arc::new(fill),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole payload, computed now.
    pub fn materialize(&self) -> Bytes {
        tensor::new_payload(self.len, |out| (self.fill)(0, out))
    }

    /// Computes the payload step by step into `out`, the next step computed while the last
    /// one is written.
    pub fn write_to<W: Write + Send>(&self, out: &mut W) -> io::Result<()> {
        let step = STEP.next_multiple_of(self.granule).min(self.len);
        if step == 0 {
            return Ok(());
        }
        let (mut ready, mut next) = (vec![0u8; step], vec![0u8; step]);
        let mut offset = 0;
        let mut ready_len = step.min(self.len);
        (self.fill)(0, &mut ready[..ready_len]);
        loop {
            let next_offset = offset + ready_len;
            let next_len = step.min(self.len - next_offset);
            std::thread::scope(|s| {
                let writer = s.spawn(|| out.write_all(&ready[..ready_len]));
                if next_len > 0 {
                    (self.fill)(next_offset, &mut next[..next_len]);
                }
                writer
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("the payload writer panicked")))
            })?;
            if next_len == 0 {
                return Ok(());
            }
            std::mem::swap(&mut ready, &mut next);
            offset = next_offset;
            ready_len = next_len;
        }
    }
}

/// Stand-ins for pending payloads in a proto about to be streamed. Each is a read-only mapping
/// of the payload's length that nothing reads (so it takes no memory), known by its address:
/// the writer that reaches it computes the payload in its place. The proto's sizes and offsets
/// come out right because the stand-in has the payload's length.
#[derive(Default)]
pub(crate) struct Placeholders {
    by_address: HashMap<usize, PendingPayload>,
}

impl Placeholders {
    /// The stand-in for `payload`, or the payload computed now where no mapping can be made.
    pub(crate) fn stand_in(&mut self, payload: &PendingPayload) -> Bytes {
        match blank_mapping(payload.len()) {
            Some(map) => {
                let bytes = Bytes::from_owner(map);
                self.by_address
                    .insert(bytes.as_ptr() as usize, payload.clone());
                bytes
            }
            None => payload.materialize(),
        }
    }

    /// The payload `bytes` stands in for, if it is a stand-in.
    pub(crate) fn payload_for(&self, bytes: &[u8]) -> Option<&PendingPayload> {
        if self.by_address.is_empty() {
            return None;
        }
        self.by_address
            .get(&(bytes.as_ptr() as usize))
            .filter(|p| p.len() == bytes.len())
    }
}

/// `len` bytes of address space that read as zeros and cost nothing until read: a private
/// read-only map of /dev/zero (never charged against the commit limit), else anonymous memory.
fn blank_mapping(len: usize) -> Option<memmap2::Mmap> {
    if len == 0 {
        return None;
    }
    #[cfg(unix)]
    if let Ok(zero) = std::fs::File::open("/dev/zero") {
        // SAFETY: /dev/zero cannot be truncated or changed under the mapping.
        if let Ok(map) = unsafe {
            memmap2::MmapOptions::new()
                .len(len)
                .map_copy_read_only(&zero)
        } {
            return Some(map);
        }
    }
    memmap2::MmapOptions::new()
        .len(len)
        .map_anon()
        .ok()?
        .make_read_only()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counting(len: usize) -> PendingPayload {
        PendingPayload::new(len, 2, |offset, out| {
            for (i, b) in out.iter_mut().enumerate() {
                *b = ((offset + i) % 251) as u8;
            }
        })
    }

    #[test]
    fn streamed_and_materialized_bytes_agree() {
        for len in [0, 1, 2, STEP - 2, STEP, STEP + 6, 2 * STEP + 10] {
            let payload = counting(len);
            let mut streamed = Vec::new();
            payload.write_to(&mut streamed).unwrap();
            let want: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            assert_eq!(streamed, want, "streamed, {len} bytes");
            assert_eq!(
                &payload.materialize()[..],
                &want[..],
                "materialized, {len} bytes"
            );
        }
    }

    #[test]
    fn a_stand_in_is_known_by_its_address_and_length() {
        let mut placeholders = Placeholders::default();
        let payload = counting(1 << 20);
        let stand_in = placeholders.stand_in(&payload);
        assert_eq!(stand_in.len(), 1 << 20);
        assert!(placeholders.payload_for(&stand_in).is_some());
        assert!(placeholders.payload_for(&stand_in[..16]).is_none());
        assert!(placeholders.payload_for(&vec![0u8; 1 << 20]).is_none());
    }
}
