//! Reading node attributes from an untrusted model.
//!
//! An attribute can be absent (the schema default applies), present and usable, or present
//! but unusable: it refers to an attribute of an enclosing function (`ref_attr_name`, whose value
//! is not known here) or holds the wrong kind of value. The last case must not fall back to the
//! default, so lookups return `Result<Option<_>, Unusable>`: `Ok(None)` is "absent".

use onnx_rewrite_proto::attribute_proto::AttributeType;
use onnx_rewrite_proto::{AttributeProto, GraphProto, TensorProto};

/// An attribute is present but its value cannot be used.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Unusable;

pub type Lookup<T> = Result<Option<T>, Unusable>;

/// The attributes of one node.
#[derive(Clone, Copy)]
pub struct Attrs<'a>(pub &'a [AttributeProto]);

impl<'a> Attrs<'a> {
    /// The attribute called `name`, if present; unusable when it references a function attribute.
    pub fn get(&self, name: &str) -> Lookup<&'a AttributeProto> {
        let Some(a) = self.0.iter().find(|a| a.name.as_deref() == Some(name)) else {
            return Ok(None);
        };
        if a.ref_attr_name.as_deref().is_some_and(|r| !r.is_empty()) {
            return Err(Unusable);
        }
        Ok(Some(a))
    }

    /// Whether an attribute of this name is present at all (usable or not).
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|a| a.name.as_deref() == Some(name))
    }

    /// The attribute's declared kind; old writers (IR < 2) left it out, then the field decides.
    fn kind(a: &AttributeProto) -> Option<AttributeType> {
        a.r#type.and_then(|t| AttributeType::try_from(t).ok())
    }

    pub fn int(&self, name: &str) -> Lookup<i64> {
        let Some(a) = self.get(name)? else {
            return Ok(None);
        };
        match (Self::kind(a), a.i) {
            (Some(AttributeType::Int) | None, Some(i)) => Ok(Some(i)),
            (Some(AttributeType::Int), None) => Ok(Some(0)),
            _ => Err(Unusable),
        }
    }

    /// The int attribute, or `default` when absent; `None` when unusable.
    pub fn int_or(&self, name: &str, default: i64) -> Option<i64> {
        self.int(name).ok().map(|v| v.unwrap_or(default))
    }

    pub fn float(&self, name: &str) -> Lookup<f32> {
        let Some(a) = self.get(name)? else {
            return Ok(None);
        };
        match (Self::kind(a), a.f) {
            (Some(AttributeType::Float) | None, Some(f)) => Ok(Some(f)),
            (Some(AttributeType::Float), None) => Ok(Some(0.0)),
            _ => Err(Unusable),
        }
    }

    pub fn ints(&self, name: &str) -> Lookup<&'a [i64]> {
        let Some(a) = self.get(name)? else {
            return Ok(None);
        };
        match Self::kind(a) {
            Some(AttributeType::Ints) => Ok(Some(&a.ints)),
            None if a.i.is_none() && a.f.is_none() && a.floats.is_empty() => Ok(Some(&a.ints)),
            _ => Err(Unusable),
        }
    }

    pub fn floats(&self, name: &str) -> Lookup<&'a [f32]> {
        let Some(a) = self.get(name)? else {
            return Ok(None);
        };
        match Self::kind(a) {
            Some(AttributeType::Floats) => Ok(Some(&a.floats)),
            None if a.f.is_none() && a.i.is_none() && a.ints.is_empty() => Ok(Some(&a.floats)),
            _ => Err(Unusable),
        }
    }

    /// A string attribute, as bytes (ONNX strings are UTF-8 by convention, not by the wire).
    pub fn string(&self, name: &str) -> Lookup<&'a [u8]> {
        let Some(a) = self.get(name)? else {
            return Ok(None);
        };
        match (Self::kind(a), &a.s) {
            (Some(AttributeType::String) | None, Some(s)) => Ok(Some(s)),
            (Some(AttributeType::String), None) => Ok(Some(b"")),
            _ => Err(Unusable),
        }
    }

    pub fn strings(&self, name: &str) -> Lookup<usize> {
        let Some(a) = self.get(name)? else {
            return Ok(None);
        };
        match Self::kind(a) {
            Some(AttributeType::Strings) | None => Ok(Some(a.strings.len())),
            _ => Err(Unusable),
        }
    }

    pub fn graph(&self, name: &str) -> Lookup<&'a GraphProto> {
        let Some(a) = self.get(name)? else {
            return Ok(None);
        };
        match (Self::kind(a), &a.g) {
            (Some(AttributeType::Graph) | None, Some(g)) => Ok(Some(g)),
            _ => Err(Unusable),
        }
    }

    pub fn tensor(&self, name: &str) -> Lookup<&'a TensorProto> {
        let Some(a) = self.get(name)? else {
            return Ok(None);
        };
        match (Self::kind(a), &a.t) {
            (Some(AttributeType::Tensor) | None, Some(t)) => Ok(Some(t)),
            _ => Err(Unusable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onnx_rewrite_ir::edit::attr;

    #[test]
    fn absent_present_unusable() {
        let mut r = attr::int("axis", 0);
        r.ref_attr_name = Some("outer_axis".into());
        let list = [attr::int("keepdims", 0), r];
        let a = Attrs(&list);
        assert_eq!(a.int("keepdims"), Ok(Some(0)));
        assert_eq!(a.int_or("keepdims", 1), Some(0));
        assert_eq!(a.int_or("missing", 1), Some(1));
        assert_eq!(a.int("axis"), Err(Unusable));
        assert_eq!(a.int_or("axis", 0), None);
        assert_eq!(a.ints("keepdims"), Err(Unusable));
        assert_eq!(a.float("keepdims"), Err(Unusable));
    }
}
