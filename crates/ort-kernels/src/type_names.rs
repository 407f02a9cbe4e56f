//! ORT's names of element types (`float`, `int64`, `float8e4m3fn`), as its kernel registrations
//! spell type constraints, and back.

use onnx_rewrite_proto::tensor_proto::DataType;

use crate::schema::Types;

/// ORT's name of an ONNX element type (`float`, `int64`, `float8e4m3fn`...).
pub fn type_name(dtype: DataType) -> String {
    dtype.as_str_name().to_ascii_lowercase()
}

/// The element type ORT names `name` (`None`: not an element type, such as
/// `seq(tensor(float))` or `undefined`).
pub fn element_type(name: &str) -> Option<DataType> {
    Some(match name {
        "float" => DataType::Float,
        "uint8" => DataType::Uint8,
        "int8" => DataType::Int8,
        "uint16" => DataType::Uint16,
        "int16" => DataType::Int16,
        "int32" => DataType::Int32,
        "int64" => DataType::Int64,
        "string" => DataType::String,
        "bool" => DataType::Bool,
        "float16" => DataType::Float16,
        "double" => DataType::Double,
        "uint32" => DataType::Uint32,
        "uint64" => DataType::Uint64,
        "complex64" => DataType::Complex64,
        "complex128" => DataType::Complex128,
        "bfloat16" => DataType::Bfloat16,
        "float8e4m3fn" => DataType::Float8e4m3fn,
        "float8e4m3fnuz" => DataType::Float8e4m3fnuz,
        "float8e5m2" => DataType::Float8e5m2,
        "float8e5m2fnuz" => DataType::Float8e5m2fnuz,
        "uint4" => DataType::Uint4,
        "int4" => DataType::Int4,
        "float4e2m1" => DataType::Float4e2m1,
        "float8e8m0" => DataType::Float8e8m0,
        "uint2" => DataType::Uint2,
        "int2" => DataType::Int2,
        _ => return None,
    })
}

/// ORT's type names as a [`Types`] set: `float` is `tensor(float)`, `seq(tensor(float))` a
/// sequence element type; anything else (`optional(...)`, `map(...)`, `sparse_tensor(...)`)
/// sets `other`.
pub(crate) fn type_set(names: &[String]) -> Types {
    let (mut tensor, mut seq, mut other) = (0u64, 0u64, false);
    for name in names {
        let name = name.trim();
        if let Some(bit) = element_bit(name) {
            tensor |= bit;
        } else if let Some(bit) = name
            .strip_prefix("seq(tensor(")
            .and_then(|n| n.strip_suffix("))"))
            .and_then(element_bit)
        {
            seq |= bit;
        } else {
            other = true;
        }
    }
    Types::new(tensor, seq, other)
}

/// The bit of `name`'s element type in a [`Types`] set (bit `i` is `TensorProto.DataType`
/// code `i`).
fn element_bit(name: &str) -> Option<u64> {
    let code = u32::try_from(element_type(name)? as i32).ok()?;
    1u64.checked_shl(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_element_types_are_inverse() {
        let mut named = 0;
        for code in 0..64 {
            let Ok(dtype) = DataType::try_from(code) else {
                continue;
            };
            if let Some(back) = element_type(&type_name(dtype)) {
                assert_eq!(back, dtype);
                named += 1;
            }
        }
        assert_eq!(named, 26);
        assert_eq!(element_type("seq(tensor(float))"), None);
    }

    #[test]
    fn every_element_type_the_registrations_name_is_known() {
        for ep in [crate::Ep::Cpu, crate::Ep::Cuda] {
            for r in crate::kernels(ep) {
                for name in r.types.values().flatten().filter(|n| !n.contains('(')) {
                    assert!(element_type(name).is_some(), "{}: {name}", ep.name());
                }
            }
        }
    }

    #[test]
    fn a_type_set_sorts_tensors_sequences_and_the_rest() {
        let names = ["float", "seq(tensor(int64))", "optional(tensor(float))"].map(String::from);
        let t = type_set(&names);
        assert!(t.allows(DataType::Float) && !t.allows(DataType::Int64));
        assert_eq!(t.seq, 1 << DataType::Int64 as i32);
        assert!(t.other);
    }
}
