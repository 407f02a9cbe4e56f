//! The words of the syntax: element-type names, attribute-type names, keywords, and the
//! identifier rule that decides whether a name prints bare or quoted.

use onnx_rewrite_proto::attribute_proto::AttributeType;
use onnx_rewrite_proto::tensor_proto::DataType;

/// What the printer writes for a data type or attribute type it has no name for (`0` or a value
/// outside the enum). onnx.printer writes the same word; no parser accepts it.
pub(crate) const UNDEFINED: &str = "undefined";

/// Element-type names, as `PrimitiveTypeNameMap` in onnx's `parser.h` spells them.
const DATA_TYPES: &[(&str, DataType)] = &[
    ("float", DataType::Float),
    ("uint8", DataType::Uint8),
    ("int8", DataType::Int8),
    ("uint16", DataType::Uint16),
    ("int16", DataType::Int16),
    ("int32", DataType::Int32),
    ("int64", DataType::Int64),
    ("string", DataType::String),
    ("bool", DataType::Bool),
    ("float16", DataType::Float16),
    ("double", DataType::Double),
    ("uint32", DataType::Uint32),
    ("uint64", DataType::Uint64),
    ("complex64", DataType::Complex64),
    ("complex128", DataType::Complex128),
    ("bfloat16", DataType::Bfloat16),
    ("float8e4m3fn", DataType::Float8e4m3fn),
    ("float8e4m3fnuz", DataType::Float8e4m3fnuz),
    ("float8e5m2", DataType::Float8e5m2),
    ("float8e5m2fnuz", DataType::Float8e5m2fnuz),
    ("float8e8m0", DataType::Float8e8m0),
    ("uint4", DataType::Uint4),
    ("int4", DataType::Int4),
    ("float4e2m1", DataType::Float4e2m1),
    ("uint2", DataType::Uint2),
    ("int2", DataType::Int2),
    ("float6e2m3", DataType::Float6e2m3),
    ("float6e3m2", DataType::Float6e3m2),
];

/// Attribute-type names, as `AttributeTypeNameMap` spells them.
const ATTRIBUTE_TYPES: &[(&str, AttributeType)] = &[
    ("float", AttributeType::Float),
    ("int", AttributeType::Int),
    ("string", AttributeType::String),
    ("tensor", AttributeType::Tensor),
    ("graph", AttributeType::Graph),
    ("sparse_tensor", AttributeType::SparseTensor),
    ("type_proto", AttributeType::TypeProto),
    ("floats", AttributeType::Floats),
    ("ints", AttributeType::Ints),
    ("strings", AttributeType::Strings),
    ("tensors", AttributeType::Tensors),
    ("graphs", AttributeType::Graphs),
    ("sparse_tensors", AttributeType::SparseTensors),
    ("type_protos", AttributeType::TypeProtos),
];

/// Keywords that open a non-tensor type: `seq(T)`, `map(K, V)`, `optional(T)`,
/// `sparse_tensor(T)`, `opaque(domain, name)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeKeyword {
    Seq,
    Map,
    Optional,
    SparseTensor,
    Opaque,
}

impl TypeKeyword {
    pub(crate) fn lookup(word: &str) -> Option<Self> {
        Some(match word {
            "seq" => Self::Seq,
            "map" => Self::Map,
            "optional" => Self::Optional,
            "sparse_tensor" => Self::SparseTensor,
            "opaque" => Self::Opaque,
            _ => return None,
        })
    }
}

/// The name of an element type (`TensorProto.data_type`, `TypeProto.Tensor.elem_type`), or
/// `"undefined"` for `0` and unknown values.
pub(crate) fn data_type_name(data_type: i32) -> &'static str {
    DATA_TYPES
        .iter()
        .find(|(_, t)| *t as i32 == data_type)
        .map_or(UNDEFINED, |(name, _)| name)
}

/// The element type a name denotes; `None` for words that are not element types.
pub(crate) fn data_type_by_name(name: &str) -> Option<DataType> {
    DATA_TYPES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Whether `data_type` is an element type the syntax can name (so it prints and parses back).
pub(crate) fn is_named_data_type(data_type: i32) -> bool {
    data_type_name(data_type) != UNDEFINED
}

pub(crate) fn attribute_type_name(attribute_type: i32) -> &'static str {
    ATTRIBUTE_TYPES
        .iter()
        .find(|(_, t)| *t as i32 == attribute_type)
        .map_or(UNDEFINED, |(name, _)| name)
}

pub(crate) fn attribute_type_by_name(name: &str) -> Option<AttributeType> {
    ATTRIBUTE_TYPES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
}

/// Whether a word starts a type where a type may appear (`NextIsType` in onnx's parser): an
/// element-type name or a type keyword. A value named like this cannot be written without its
/// type, and a function input so named cannot be written at all.
pub(crate) fn starts_type(word: &str) -> bool {
    data_type_by_name(word).is_some() || TypeKeyword::lookup(word).is_some()
}

/// `[A-Za-z_][A-Za-z0-9_]*`, ASCII only, as onnx's `IsValidIdentifier` decides: such names print
/// bare, every other name prints as a quoted string.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A domain as node and opaque types print it: empty, or identifiers joined by dots.
pub(crate) fn is_dotted_identifier(s: &str) -> bool {
    s.split('.').all(is_identifier)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (name, data_type) in DATA_TYPES {
            assert_eq!(data_type_name(*data_type as i32), *name);
            assert_eq!(data_type_by_name(name), Some(*data_type));
        }
        assert_eq!(data_type_name(0), "undefined");
        assert_eq!(data_type_name(999), "undefined");
        for (name, attribute_type) in ATTRIBUTE_TYPES {
            assert_eq!(attribute_type_name(*attribute_type as i32), *name);
        }
        assert_eq!(attribute_type_name(0), "undefined");
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("x"));
        assert!(is_identifier("_x9"));
        assert!(!is_identifier(""));
        assert!(!is_identifier("9x"));
        assert!(!is_identifier("a.b"));
        assert!(!is_identifier("é"));
        assert!(is_dotted_identifier("ai.onnx.ml"));
        assert!(!is_dotted_identifier("ai..ml"));
        assert!(!is_dotted_identifier(""));
    }
}
