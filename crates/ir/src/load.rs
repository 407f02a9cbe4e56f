//! Loading: file → memory map → wire scan → prost decode → external data → checks → IR.
//!
//! The file is memory-mapped and decoded from a `Bytes` that owns the map, so every tensor's
//! `raw_data` is a slice of the map: no weight is copied. External payloads are mapped the same
//! way. Every name is resolved to an id here, once; a name that resolves to nothing, a name
//! defined twice in one graph, or nodes that form a cycle are load errors, so passes only ever
//! see a well-formed arena.

use rustc_hash::FxHashMap as HashMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use onnx_rewrite_proto::wire::{self, Root};
use onnx_rewrite_proto::{self as proto, Message};

use crate::arena::{GraphId, GraphOwner, Model, NodeId, ValueDef, ValueId, ValueInfoEntry};
use crate::error::{LoadError, LoadErrorKind};
use crate::external::{ExternalFiles, map_file};
use crate::{tensor, walk};

/// How to treat what the loader finds.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Drop fields the vendored schema does not know (they are listed in
    /// [`Model::dropped_unknown_fields`]) instead of refusing the model.
    pub allow_unknown_fields: bool,
}

/// Loads a model file; external data is read relative to the file's folder.
pub fn load_file(path: &Path, options: &LoadOptions) -> Result<Model, LoadError> {
    let error = |kind| LoadError {
        path: path.to_path_buf(),
        kind,
    };
    let bytes = map_file(path).map_err(|e| error(LoadErrorKind::Io(e)))?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    load_bytes_in(bytes, Some(&folder), options).map_err(error)
}

/// Loads a serialized model held in memory. `model_folder` is where its external data lives
/// (`None`: the model must not have any).
pub fn load_bytes(
    bytes: Bytes,
    model_folder: Option<&Path>,
    options: &LoadOptions,
) -> Result<Model, LoadError> {
    load_bytes_in(bytes, model_folder, options).map_err(|kind| LoadError {
        path: PathBuf::from("<memory>"),
        kind,
    })
}

/// Builds the IR from a decoded proto (for exporters that hold one already).
pub fn from_proto(
    model: proto::ModelProto,
    model_folder: Option<&Path>,
) -> Result<Model, LoadError> {
    from_proto_in(model, model_folder).map_err(|kind| LoadError {
        path: PathBuf::from("<memory>"),
        kind,
    })
}

fn load_bytes_in(
    bytes: Bytes,
    model_folder: Option<&Path>,
    options: &LoadOptions,
) -> Result<Model, LoadErrorKind> {
    let unknown = wire::scan_unknown_fields(&bytes, Root::Model)?;
    if !unknown.is_empty() && !options.allow_unknown_fields {
        return Err(LoadErrorKind::UnknownFields { fields: unknown });
    }
    let decoded = proto::ModelProto::decode(bytes)?;
    let mut model = from_proto_in(decoded, model_folder)?;
    model.set_dropped_unknown_fields(unknown);
    Ok(model)
}

fn from_proto_in(
    mut decoded: proto::ModelProto,
    model_folder: Option<&Path>,
) -> Result<Model, LoadErrorKind> {
    let mut files = ExternalFiles::new(model_folder);
    walk::model_tensors(&mut decoded, &mut |tensor, site| {
        if tensor::is_external(tensor) {
            let payload = files
                .read(tensor)
                .map_err(|source| LoadErrorKind::ExternalData {
                    tensor: site.describe(tensor),
                    source,
                })?;
            tensor.raw_data = Some(payload);
        }
        tensor::check_payload(tensor).map_err(|source| LoadErrorKind::Tensor {
            tensor: site.describe(tensor),
            source,
        })
    })?;

    let graph = decoded.graph.take().ok_or(LoadErrorKind::NoGraph)?;
    let functions = std::mem::take(&mut decoded.functions);
    let mut model = Model::new(decoded, proto::GraphProto::default());
    let main = model.main();
    let label = format!("graph '{}'", graph.name());
    let domains = imported_domains(&model.proto.opset_import);
    let mut builder = Builder {
        model: &mut model,
        domains,
        nodes: 0,
    };
    let parts = GraphParts::of_graph(graph, &mut builder.model.graph_mut(main).proto);
    builder.graph(main, parts, None, &label)?;

    for (index, mut function) in functions.into_iter().enumerate() {
        let parts = GraphParts::of_function(&mut function);
        let label = format!("function '{}'", function.name());
        let body = builder.model.add_graph(
            proto::GraphProto::default(),
            GraphOwner::Function {
                index: index as u32,
            },
        );
        let model_domains = std::mem::replace(
            &mut builder.domains,
            imported_domains(&function.opset_import),
        );
        builder.model.functions.push(crate::arena::Function {
            proto: function,
            body,
        });
        builder.graph(body, parts, None, &label)?;
        builder.domains = model_domains;
    }
    Ok(model)
}

/// The structural fields of a graph or function body, taken out of the proto.
struct GraphParts {
    inputs: Vec<(String, Option<proto::ValueInfoProto>)>,
    outputs: Vec<(String, Option<proto::ValueInfoProto>)>,
    initializers: Vec<proto::TensorProto>,
    sparse_initializers: Vec<proto::SparseTensorProto>,
    nodes: Vec<proto::NodeProto>,
    value_info: Vec<proto::ValueInfoProto>,
}

impl GraphParts {
    /// Moves the structural fields out of `graph`; the rest goes to `residual`.
    fn of_graph(mut graph: proto::GraphProto, residual: &mut proto::GraphProto) -> Self {
        let named = |infos: Vec<proto::ValueInfoProto>| {
            infos
                .into_iter()
                .map(|i| (i.name().to_owned(), Some(i)))
                .collect()
        };
        let parts = Self {
            inputs: named(std::mem::take(&mut graph.input)),
            outputs: named(std::mem::take(&mut graph.output)),
            initializers: std::mem::take(&mut graph.initializer),
            sparse_initializers: std::mem::take(&mut graph.sparse_initializer),
            nodes: std::mem::take(&mut graph.node),
            value_info: std::mem::take(&mut graph.value_info),
        };
        *residual = graph;
        parts
    }

    fn of_function(function: &mut proto::FunctionProto) -> Self {
        let bare = |names: Vec<String>| names.into_iter().map(|n| (n, None)).collect();
        Self {
            inputs: bare(std::mem::take(&mut function.input)),
            outputs: bare(std::mem::take(&mut function.output)),
            initializers: Vec::new(),
            sparse_initializers: Vec::new(),
            nodes: std::mem::take(&mut function.node),
            value_info: std::mem::take(&mut function.value_info),
        }
    }
}

/// Names visible in a graph: its own definitions, then those of the enclosing graphs.
struct Scope<'p> {
    names: HashMap<String, ValueId>,
    parent: Option<&'p Scope<'p>>,
}

impl Scope<'_> {
    fn lookup(&self, name: &str) -> Option<ValueId> {
        self.names
            .get(name)
            .copied()
            .or_else(|| self.parent?.lookup(name))
    }
}

/// The graph-valued fields of one attribute, converted after the rest of the graph.
struct GraphAttribute {
    index: usize,
    name: String,
    single: Option<proto::GraphProto>,
    many: Vec<proto::GraphProto>,
}

struct Builder<'m> {
    model: &'m mut Model,
    /// Domains the current scope imports an opset for (the model's, or a function's own);
    /// `None` for a legacy model that imports none.
    domains: Option<Vec<String>>,
    /// Nodes loaded so far, against [`MAX_NODES`].
    nodes: usize,
}

/// A model with more nodes than this is refused rather than exhausting memory.
pub const MAX_NODES: usize = 20_000_000;
/// A name (of a value, node, graph or function) longer than this is refused.
pub const MAX_NAME_BYTES: usize = 1 << 16;

fn imported_domains(opsets: &[proto::OperatorSetIdProto]) -> Option<Vec<String>> {
    (!opsets.is_empty()).then(|| {
        opsets
            .iter()
            .map(|o| {
                if o.domain() == "ai.onnx" {
                    String::new()
                } else {
                    o.domain().to_owned()
                }
            })
            .collect()
    })
}

impl Builder<'_> {
    fn graph(
        &mut self,
        graph: GraphId,
        parts: GraphParts,
        parent: Option<&Scope<'_>>,
        label: &str,
    ) -> Result<(), LoadErrorKind> {
        let mut scope = Scope {
            names: HashMap::default(),
            parent,
        };
        let duplicate = |what: &'static str, name: &str| LoadErrorKind::DuplicateName {
            graph: label.to_owned(),
            what,
            name: name.to_owned(),
        };
        let empty = |what: String| LoadErrorKind::EmptyName {
            graph: label.to_owned(),
            what,
        };

        for (name, info) in parts.inputs {
            if name.is_empty() {
                return Err(empty("an input".into()));
            }
            if scope.names.contains_key(&name) {
                return Err(duplicate("input", &name));
            }
            let value = self.model.add_input(graph, name.clone(), info);
            scope.names.insert(name, value);
        }
        for tensor in parts.initializers {
            let name = tensor.name().to_owned();
            if name.is_empty() {
                return Err(empty("an initializer".into()));
            }
            match scope.names.get(&name) {
                Some(&value)
                    if self.model.value(value).def() == ValueDef::Input
                        && self.model.value(value).initializer().is_none() =>
                {
                    self.model.set_input_default(value, tensor);
                }
                Some(_) => return Err(duplicate("initializer", &name)),
                None => {
                    let value = self.model.add_initializer(graph, name.clone(), tensor);
                    scope.names.insert(name, value);
                }
            }
        }
        for sparse in parts.sparse_initializers {
            let name = sparse
                .values
                .as_ref()
                .map(|v| v.name().to_owned())
                .unwrap_or_default();
            if name.is_empty() {
                return Err(empty("a sparse initializer".into()));
            }
            if scope.names.contains_key(&name) {
                return Err(duplicate("sparse initializer", &name));
            }
            let value = self
                .model
                .add_sparse_initializer(graph, name.clone(), sparse);
            scope.names.insert(name, value);
        }

        // Every node's outputs are defined before any input is resolved: the proto need not be
        // sorted, and a cycle is reported as such rather than as an undefined name.
        let mut pending: Vec<(NodeId, Vec<String>, Vec<GraphAttribute>)> =
            Vec::with_capacity(parts.nodes.len());
        for mut node in parts.nodes {
            let inputs = std::mem::take(&mut node.input);
            let outputs: Vec<Option<String>> = std::mem::take(&mut node.output)
                .into_iter()
                .map(|o| (!o.is_empty()).then_some(o))
                .collect();
            // Graph-valued fields become IR subgraphs once this graph's names are all known.
            let mut graph_attributes = Vec::new();
            let attributes: Vec<proto::AttributeProto> = std::mem::take(&mut node.attribute)
                .into_iter()
                .enumerate()
                .map(|(index, mut attribute)| {
                    let single = attribute.g.take();
                    let many = std::mem::take(&mut attribute.graphs);
                    if single.is_some() || !many.is_empty() {
                        graph_attributes.push(GraphAttribute {
                            index,
                            name: attribute.name().to_owned(),
                            single,
                            many,
                        });
                    }
                    attribute
                })
                .collect();
            for name in outputs.iter().flatten() {
                if scope.names.contains_key(name) {
                    return Err(duplicate("value", name));
                }
            }
            self.nodes += 1;
            if self.nodes > MAX_NODES {
                return Err(LoadErrorKind::TooManyNodes { limit: MAX_NODES });
            }
            for name in outputs
                .iter()
                .flatten()
                .map(String::as_str)
                .chain([node.name(), node.op_type()])
            {
                if name.len() > MAX_NAME_BYTES {
                    return Err(LoadErrorKind::NameTooLong {
                        graph: label.to_owned(),
                        length: name.len(),
                        limit: MAX_NAME_BYTES,
                    });
                }
            }
            let domain = if node.domain() == "ai.onnx" {
                ""
            } else {
                node.domain()
            };
            if let Some(domains) = &self.domains
                && !domains.iter().any(|d| d == domain)
            {
                return Err(LoadErrorKind::UnimportedDomain {
                    graph: label.to_owned(),
                    node: format!("node '{}' ({})", node.name(), node.op_type()),
                    domain: domain.to_owned(),
                });
            }
            let id =
                self.model
                    .add_node(graph, node, &vec![None; inputs.len()], &outputs, attributes);
            for value in self.model.node(id).outputs().iter().flatten() {
                scope
                    .names
                    .insert(self.model.value(*value).name().to_owned(), *value);
            }
            pending.push((id, inputs, graph_attributes));
        }

        for (node, inputs, graph_attributes) in pending {
            for (slot, name) in inputs.iter().enumerate() {
                if name.is_empty() {
                    continue;
                }
                let value = scope
                    .lookup(name)
                    .ok_or_else(|| LoadErrorKind::UndefinedInput {
                        graph: label.to_owned(),
                        node: self.model.describe_node(node),
                        name: name.clone(),
                    })?;
                self.model.set_node_input(node, slot, Some(value));
            }
            for attribute in graph_attributes {
                let sub_label = format!(
                    "graph of attribute '{}' of {} in {label}",
                    attribute.name,
                    self.model.describe_node(node)
                );
                let bodies = attribute
                    .single
                    .into_iter()
                    .map(|g| (g, false))
                    .chain(attribute.many.into_iter().map(|g| (g, true)));
                for (body, many) in bodies {
                    let sub = self.model.add_subgraph(
                        node,
                        attribute.index,
                        proto::GraphProto::default(),
                        many,
                    );
                    let parts = GraphParts::of_graph(body, &mut self.model.graph_mut(sub).proto);
                    self.graph(sub, parts, Some(&scope), &sub_label)?;
                }
            }
        }

        for (name, info) in parts.outputs {
            let value = scope
                .lookup(&name)
                .ok_or_else(|| LoadErrorKind::UndefinedOutput {
                    graph: label.to_owned(),
                    name: name.clone(),
                })?;
            self.model.add_output(graph, value, info);
        }
        for info in parts.value_info {
            let value = scope.lookup(info.name());
            self.model
                .graph_mut(graph)
                .value_info
                .push(ValueInfoEntry { value, proto: info });
        }
        self.model
            .topological_order(graph)
            .map(drop)
            .map_err(|node| LoadErrorKind::Cycle {
                graph: label.to_owned(),
                node: self.model.describe_node(node),
            })
    }
}
