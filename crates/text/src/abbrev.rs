//! Abbreviated tensors: large tensors print as their type, shape, name and a content hash, so
//! that snapshots of real models stay readable and still change when a weight changes.
//!
//! # The form, and why it is this one
//!
//! An abbreviated initializer prints as
//!
//! ```text
//! float[1024,1024] w = ["sha256": "3f2a9c0d1e4b5a67"]
//! ```
//!
//! which is the grammar's external-data form: the key-value list that a tensor stored outside
//! the model carries, here with a single `sha256` entry instead of a `location`. Both this
//! crate's parser and `onnx.parser` read it back as a `TensorProto` with its name, element type
//! and dims, `data_location = EXTERNAL` and no data. That choice keeps the parsed graph well
//! formed: the name is still an initializer with a known type and shape, where the alternative
//! (a bare `float[1024,1024] w` value-info entry, hash in a `#` comment) would parse as a value
//! with no producer and lose the hash to any reformatting. And anything that needs the values
//! fails loudly, because external data without a `location` cannot be loaded, rather than
//! computing with made-up numbers. [`abbreviated_hash`] recognises such placeholders.
//!
//! Tensor-valued attributes (a `Constant` node's `value`, which exporters also use for weights)
//! abbreviate the same way, written `float[1024,1024] = ["sha256": "…"]` so that the unnamed
//! form also parses with `onnx.parser`. Tensors that already live in external data print as they
//! are: their key-value list is short and says where the data is.
//!
//! # The hash
//!
//! The first 16 hex digits (64 bits) of the SHA-256 of the tensor's values laid out as
//! little-endian `raw_data` would hold them, whichever field holds them: a tensor hashes the
//! same whether its values sit in `raw_data` or in `float_data`, `int32_data` and the like (for
//! every element type of a whole number of bytes; packed sub-byte types in `int32_data` hash
//! those `int32` values). Strings hash as a little-endian `u64` length and the bytes, each.
//! Element type and dims are printed beside the hash, so they are not part of it.
//! For a numeric tensor it is `hashlib.sha256(array.tobytes()).hexdigest()[:16]` of the
//! little-endian NumPy array of its values, so a snapshot's hash can be checked outside Rust.

use std::borrow::Cow;

use onnx_rewrite_proto::tensor_proto::{DataLocation, DataType};
use onnx_rewrite_proto::{StringStringEntryProto, TensorProto};
use sha2::{Digest, Sha256};

use crate::PrintOptions;
use crate::tensor_data::element_count;

/// The external-data key under which an abbreviated tensor carries its content hash.
pub const CONTENT_HASH_KEY: &str = "sha256";

/// Hex digits of the SHA-256 that an abbreviated tensor shows.
const HASH_HEX_DIGITS: usize = 16;

/// The content hash of a tensor's values, as abbreviated tensors print it (16 hex digits).
pub fn content_hash(tensor: &TensorProto) -> String {
    let mut hasher = Sha256::new();
    if let Some(raw) = &tensor.raw_data {
        hasher.update(raw);
    } else {
        hash_typed_fields(tensor, &mut hasher);
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(HASH_HEX_DIGITS);
    for byte in digest.iter().take(HASH_HEX_DIGITS / 2) {
        hex.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
        hex.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
    }
    hex
}

/// The content hash of a tensor that an abbreviated text stood for, or `None` when `tensor` is
/// not such a placeholder (see the module docs for the form).
pub fn abbreviated_hash(tensor: &TensorProto) -> Option<&str> {
    if tensor.data_location != Some(DataLocation::External as i32) {
        return None;
    }
    match tensor.external_data.as_slice() {
        [entry] if entry.key.as_deref() == Some(CONTENT_HASH_KEY) => entry.value.as_deref(),
        _ => None,
    }
}

/// The key-value list `tensor` prints in place of its data under `options`, or `None` when it
/// prints in full. A placeholder read back from abbreviated text prints as it was, with its hash,
/// so that printing a parsed snapshot gives the snapshot again.
pub(crate) fn abbreviation<'t>(
    tensor: &'t TensorProto,
    options: &PrintOptions,
) -> Option<Cow<'t, [StringStringEntryProto]>> {
    let limit = options.abbreviate_initializers_over?;
    if abbreviated_hash(tensor).is_some() {
        return Some(Cow::Borrowed(&tensor.external_data));
    }
    if tensor.data_location == Some(DataLocation::External as i32) {
        return None;
    }
    // Dims that do not describe a tensor (negative, overflowing) abbreviate too: such a tensor
    // is broken, and its data says nothing more useful than its hash.
    if element_count(&tensor.dims).is_some_and(|count| count <= limit) {
        return None;
    }
    Some(Cow::Owned(vec![StringStringEntryProto {
        key: Some(CONTENT_HASH_KEY.to_owned()),
        value: Some(content_hash(tensor)),
    }]))
}

/// Feeds the typed value fields in the byte layout `raw_data` would have for the element type.
fn hash_typed_fields(tensor: &TensorProto, hasher: &mut Sha256) {
    use DataType as D;
    let data_type = DataType::try_from(tensor.data_type.unwrap_or(0)).ok();
    let int32_width = match data_type {
        Some(D::Int8 | D::Uint8 | D::Bool) => 1,
        Some(
            D::Float8e4m3fn | D::Float8e4m3fnuz | D::Float8e5m2 | D::Float8e5m2fnuz | D::Float8e8m0,
        ) => 1,
        Some(D::Int16 | D::Uint16 | D::Float16 | D::Bfloat16) => 2,
        _ => 4,
    };
    for value in &tensor.int32_data {
        hasher.update(&value.to_le_bytes()[..int32_width]);
    }
    for value in &tensor.int64_data {
        hasher.update(value.to_le_bytes());
    }
    for value in &tensor.uint64_data {
        if data_type == Some(D::Uint32) {
            // uint32 values live in uint64_data; raw_data holds them in four bytes.
            hasher.update(&value.to_le_bytes()[..4]);
        } else {
            hasher.update(value.to_le_bytes());
        }
    }
    for value in &tensor.float_data {
        hasher.update(value.to_le_bytes());
    }
    for value in &tensor.double_data {
        hasher.update(value.to_le_bytes());
    }
    for value in &tensor.string_data {
        hasher.update((value.len() as u64).to_le_bytes());
        hasher.update(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn raw_and_typed_storage_hash_alike() {
        let typed = TensorProto {
            data_type: Some(DataType::Float as i32),
            dims: vec![2],
            float_data: vec![1.0, -2.5],
            ..Default::default()
        };
        let raw_bytes: Vec<u8> = [1.0f32, -2.5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let raw = TensorProto {
            raw_data: Some(Bytes::from(raw_bytes)),
            float_data: vec![],
            ..typed.clone()
        };
        assert_eq!(content_hash(&typed), content_hash(&raw));
        assert_eq!(content_hash(&typed).len(), 16);

        let fp16 = TensorProto {
            data_type: Some(DataType::Float16 as i32),
            dims: vec![1],
            int32_data: vec![0x3c00],
            ..Default::default()
        };
        let fp16_raw = TensorProto {
            raw_data: Some(Bytes::from_static(&[0x00, 0x3c])),
            int32_data: vec![],
            ..fp16.clone()
        };
        assert_eq!(content_hash(&fp16), content_hash(&fp16_raw));
    }

    #[test]
    fn different_values_hash_differently() {
        let a = TensorProto {
            float_data: vec![1.0],
            ..Default::default()
        };
        let b = TensorProto {
            float_data: vec![2.0],
            ..Default::default()
        };
        assert_ne!(content_hash(&a), content_hash(&b));
    }
}
