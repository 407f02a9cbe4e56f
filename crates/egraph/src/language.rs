//! ONNX as an egg [`Language`].
//!
//! An operator e-node is an interned [`OpKey`] (domain, op type, overload, every attribute,
//! which output slots it produces, and, for impure or opaque operators, the identity of the
//! node it came from) plus its input e-classes. A multi-output operator is one e-node whose
//! e-class stands for the tuple of its outputs; [`Onnx::Proj`] selects one. Graph inputs,
//! initializers and outer-scope captures are [`Onnx::Leaf`]s by IR value id (never by their
//! bytes), tensors a rule creates are [`Onnx::Const`]s, and the graph outputs hang under one
//! [`Onnx::Root`].

use rustc_hash::FxHashMap as HashMap;

use egg::{Id, Language};
use onnx_rewrite_ir::{NodeId, ValueId};
use onnx_rewrite_proto::{AttributeProto, Message, TensorProto};
use smallvec::SmallVec;

/// An interned operator key; see [`OpTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpKey(u32);

/// An interned tensor created by a rule or by folding; see [`ConstTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConstKey(u32);

/// An e-node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Onnx {
    /// An operator applied to its inputs. For an opaque operator (one with a graph attribute)
    /// the children after the first [`OpData::inputs`] are the outer values its subgraphs
    /// capture, so that extraction keeps them alive.
    Op(OpKey, SmallVec<[Id; 3]>),
    /// Output `.0` of the tuple e-class `.1[0]` of a multi-output operator.
    Proj(u32, [Id; 1]),
    /// A value the graph reads but does not compute: an input, initializer or capture.
    Leaf(ValueId),
    /// A missing optional input.
    Missing,
    /// A tensor made by a rule or by constant folding; emitted as an initializer.
    Const(ConstKey),
    /// The graph outputs, in order.
    Root(SmallVec<[Id; 4]>),
}

/// Which variant, and for operators which key: e-nodes that can match each other. egg keeps
/// an index of e-classes by discriminant, which the pattern layer reads by operator type
/// ([`OpTable::keys_of`]): a key fixes the explicit inputs, and an opaque node's captures
/// come with its identity, so the key alone says which operator application it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Discriminant {
    Op(OpKey),
    Proj(u32),
    Leaf(ValueId),
    Missing,
    Const(ConstKey),
    Root(usize),
}

impl Language for Onnx {
    type Discriminant = Discriminant;

    fn discriminant(&self) -> Discriminant {
        match self {
            Onnx::Op(key, _) => Discriminant::Op(*key),
            Onnx::Proj(index, _) => Discriminant::Proj(*index),
            Onnx::Leaf(value) => Discriminant::Leaf(*value),
            Onnx::Missing => Discriminant::Missing,
            Onnx::Const(key) => Discriminant::Const(*key),
            Onnx::Root(children) => Discriminant::Root(children.len()),
        }
    }

    fn matches(&self, other: &Self) -> bool {
        self.discriminant() == other.discriminant()
    }

    fn children(&self) -> &[Id] {
        match self {
            Onnx::Op(_, children) => children,
            Onnx::Proj(_, tuple) => tuple,
            Onnx::Root(children) => children,
            Onnx::Leaf(_) | Onnx::Missing | Onnx::Const(_) => &[],
        }
    }

    fn children_mut(&mut self) -> &mut [Id] {
        match self {
            Onnx::Op(_, children) => children,
            Onnx::Proj(_, tuple) => tuple,
            Onnx::Root(children) => children,
            Onnx::Leaf(_) | Onnx::Missing | Onnx::Const(_) => &mut [],
        }
    }
}

/// Everything that identifies an operator application apart from its inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct OpData {
    /// `""` for the default domain (`ai.onnx` is normalized to it).
    pub domain: String,
    pub op_type: String,
    pub overload: String,
    /// Attributes sorted by name; graph-valued attributes stay with the IR node (see `identity`).
    pub attributes: Vec<AttributeProto>,
    /// How many children are explicit inputs (the rest are captures of an opaque node).
    pub inputs: usize,
    /// Which output slots the node produces; the length is the slot count.
    pub outputs: SmallVec<[bool; 2]>,
    /// For impure operators (random, unknown domains) and opaque ones (with subgraphs): the
    /// node this e-node stands for, so that hash-consing never merges two of them.
    pub identity: Option<NodeId>,
}

impl OpData {
    /// A pure operator with one output, as rules create them.
    pub fn new(op_type: &str, attributes: Vec<AttributeProto>, inputs: usize) -> Self {
        Self::with_domain("", op_type, attributes, inputs, 1)
    }

    pub fn with_domain(
        domain: &str,
        op_type: &str,
        mut attributes: Vec<AttributeProto>,
        inputs: usize,
        outputs: usize,
    ) -> Self {
        attributes.sort_by(|a, b| a.name().cmp(b.name()));
        Self {
            domain: normalize_domain(domain).to_owned(),
            op_type: op_type.to_owned(),
            overload: String::new(),
            attributes,
            inputs,
            outputs: SmallVec::from_elem(true, outputs),
            identity: None,
        }
    }

    pub fn is(&self, domain: &str, op_type: &str) -> bool {
        self.op_type == op_type && self.domain == normalize_domain(domain)
    }

    pub fn attribute(&self, name: &str) -> Option<&AttributeProto> {
        self.attributes.iter().find(|a| a.name() == name)
    }

    /// Output slots, produced or not.
    pub fn output_slots(&self) -> usize {
        self.outputs.len()
    }

    /// Whether the e-class of this node is a tuple (more than one output slot).
    pub fn is_tuple(&self) -> bool {
        self.outputs.len() > 1
    }

    /// A byte string that two keys share exactly when they are the same key.
    fn identity_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut push = |s: &[u8]| {
            bytes.extend_from_slice(&(s.len() as u64).to_le_bytes());
            bytes.extend_from_slice(s);
        };
        push(self.domain.as_bytes());
        push(self.op_type.as_bytes());
        push(self.overload.as_bytes());
        push(&(self.inputs as u64).to_le_bytes());
        push(
            &self
                .outputs
                .iter()
                .map(|p| u8::from(*p))
                .collect::<Vec<u8>>(),
        );
        push(
            &self
                .identity
                .map_or(u64::MAX, |n| n.index() as u64)
                .to_le_bytes(),
        );
        for attribute in &self.attributes {
            push(&attribute.encode_to_vec());
        }
        bytes
    }
}

pub use onnx_rewrite_facts::normalize_domain;

/// The interner of operator keys of one e-graph.
#[derive(Debug, Default)]
pub struct OpTable {
    data: Vec<OpData>,
    index: HashMap<Vec<u8>, OpKey>,
    /// Keys by domain, then operator type: where a rule's anchors are.
    by_type: HashMap<String, HashMap<String, Vec<OpKey>>>,
}

impl OpTable {
    pub fn intern(&mut self, data: OpData) -> OpKey {
        let bytes = data.identity_bytes();
        if let Some(key) = self.index.get(&bytes) {
            return *key;
        }
        let key = OpKey(u32::try_from(self.data.len()).expect("fewer than 2^32 operator keys"));
        self.by_type
            .entry(data.domain.clone())
            .or_default()
            .entry(data.op_type.clone())
            .or_default()
            .push(key);
        self.data.push(data);
        self.index.insert(bytes, key);
        key
    }

    /// Every key of operator `op_type` of `domain` (any attributes).
    pub fn keys_of(&self, domain: &str, op_type: &str) -> &[OpKey] {
        self.by_type
            .get(normalize_domain(domain))
            .and_then(|ops| ops.get(op_type))
            .map_or(&[], Vec::as_slice)
    }

    pub fn get(&self, key: OpKey) -> &OpData {
        &self.data[key.0 as usize]
    }
}

/// A tensor a rule or folding created, with a name hint for the initializer it becomes.
#[derive(Debug, Clone)]
pub struct ConstEntry {
    pub tensor: TensorProto,
    pub name_hint: String,
}

/// The interner of tensors of one e-graph: equal content (dtype, dims, bytes) is one key, so
/// two rules that make the same tensor (say, the transpose of a shared weight) share it.
#[derive(Debug, Default)]
pub struct ConstTable {
    entries: Vec<ConstEntry>,
    index: HashMap<Vec<u8>, ConstKey>,
}

impl ConstTable {
    pub fn intern(&mut self, mut tensor: TensorProto, name_hint: &str) -> ConstKey {
        tensor.name = None;
        let bytes = tensor.encode_to_vec();
        if let Some(key) = self.index.get(&bytes) {
            return *key;
        }
        let key = ConstKey(u32::try_from(self.entries.len()).expect("fewer than 2^32 tensors"));
        self.entries.push(ConstEntry {
            tensor,
            name_hint: name_hint.to_owned(),
        });
        self.index.insert(bytes, key);
        key
    }

    pub fn get(&self, key: ConstKey) -> &ConstEntry {
        &self.entries[key.0 as usize]
    }
}
