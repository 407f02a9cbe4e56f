//! A `BufMut` that streams into a file, so prost can encode a model of any size straight to
//! disk: small fields gather in a buffer, large payloads (tensor bytes borrowed from the input
//! map) are written through without a copy.

use std::io::{self, Write};
use std::mem::MaybeUninit;

use bytes::buf::UninitSlice;
use bytes::{Buf, BufMut};

use crate::pending::Placeholders;

const BUFFER: usize = 1 << 20;

pub(crate) struct WriteSink<'a, W: Write> {
    out: W,
    /// Stand-ins for payloads computed as they are written (see [`crate::pending`]).
    placeholders: Option<&'a Placeholders>,
    buffer: Vec<u8>,
    written: u64,
    /// The first write error; later writes are skipped and the caller sees this one.
    error: Option<io::Error>,
}

impl<'a, W: Write> WriteSink<'a, W> {
    pub(crate) fn new(out: W) -> Self {
        Self {
            out,
            placeholders: None,
            buffer: Vec::with_capacity(BUFFER),
            written: 0,
            error: None,
        }
    }

    /// Writes the payload a stand-in of `placeholders` stands for wherever prost puts one.
    pub(crate) fn computing(mut self, placeholders: &'a Placeholders) -> Self {
        self.placeholders = Some(placeholders);
        self
    }

    fn flush_buffer(&mut self) {
        if self.error.is_none()
            && let Err(e) = self.out.write_all(&self.buffer)
        {
            self.error = Some(e);
        }
        self.written += self.buffer.len() as u64;
        self.buffer.clear();
    }

    /// Flushes everything and returns the writer and the byte count, or the first error.
    pub(crate) fn finish(mut self) -> io::Result<(W, u64)> {
        self.flush_buffer();
        if let Some(e) = self.error {
            return Err(e);
        }
        self.out.flush()?;
        Ok((self.out, self.written))
    }
}

// SAFETY: `chunk_mut` hands out only the vector's spare capacity, and `advance_mut` only ever
// extends the length over bytes the caller has just initialized in that spare capacity (the
// `BufMut` contract), never past the capacity.
unsafe impl<W: Write + Send> BufMut for WriteSink<'_, W> {
    fn remaining_mut(&self) -> usize {
        usize::MAX - self.buffer.len()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        let new_len = self.buffer.len() + cnt;
        assert!(
            new_len <= self.buffer.capacity(),
            "advance_mut past the chunk handed out"
        );
        // SAFETY: see the impl comment; the bytes up to `new_len` were initialized by the caller.
        unsafe { self.buffer.set_len(new_len) };
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        if self.buffer.len() == self.buffer.capacity() {
            self.flush_buffer();
        }
        let spare: &mut [MaybeUninit<u8>] = self.buffer.spare_capacity_mut();
        UninitSlice::uninit(spare)
    }

    fn put_slice(&mut self, src: &[u8]) {
        if let Some(payload) = self.placeholders.and_then(|p| p.payload_for(src)) {
            self.flush_buffer();
            if self.error.is_none()
                && let Err(e) = payload.write_to(&mut self.out)
            {
                self.error = Some(e);
            }
            self.written += src.len() as u64;
        } else if src.len() >= BUFFER / 4 {
            self.flush_buffer();
            if self.error.is_none()
                && let Err(e) = self.out.write_all(src)
            {
                self.error = Some(e);
            }
            self.written += src.len() as u64;
        } else {
            if self.buffer.len() + src.len() > self.buffer.capacity() {
                self.flush_buffer();
            }
            self.buffer.extend_from_slice(src);
        }
    }

    fn put<T: Buf>(&mut self, mut src: T)
    where
        Self: Sized,
    {
        while src.has_remaining() {
            let chunk = src.chunk();
            let n = chunk.len();
            self.put_slice(chunk);
            src.advance(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onnx_rewrite_proto::{Message, TensorProto};

    #[test]
    fn streams_the_same_bytes_prost_would_produce() {
        let big = bytes::Bytes::from((0..3_000_000u32).map(|i| i as u8).collect::<Vec<u8>>());
        let tensor = TensorProto {
            name: Some("w".into()),
            dims: vec![3_000_000],
            data_type: Some(2),
            raw_data: Some(big),
            ..Default::default()
        };
        let mut sink = WriteSink::new(Vec::new());
        tensor.encode(&mut sink).unwrap();
        let (out, written) = sink.finish().unwrap();
        assert_eq!(written, out.len() as u64);
        assert_eq!(out, tensor.encode_to_vec());
    }
}
