//! Saving: IR → proto → file, atomically, streamed, with external data where needed.
//!
//! The proto is rebuilt from the arena (names from values, structure from ids) plus the residual
//! protos that kept every other field, so a model that no pass touched comes out with the same
//! fields in the same order. Tensor payloads are `Bytes` shared with the input map; they are
//! written to the output file (or sidecar) straight from the map.
//!
//! Output goes to a temporary file in the destination folder that is renamed over the
//! destination only once it is complete: a reader never sees a half-written model, and a failed
//! save leaves the destination as it was.

use rustc_hash::FxHashSet as HashSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use onnx_rewrite_proto::{self as proto, Message};

use crate::arena::{GraphId, GraphOwner, Model, NodeId};
use crate::error::SaveError;
use crate::external::SidecarWriter;
use crate::pending::Placeholders;
use crate::sink::WriteSink;
use crate::tensor;
use crate::walk::{self, Site};

/// protobuf cannot hold a message of 2 GiB or more.
pub const PROTOBUF_LIMIT: u64 = (1 << 31) - 1;

/// Which tensors go to the external-data sidecar.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExternalDataPolicy {
    /// Tensors stored externally in the input stay external, the others stay inline; if the
    /// model would pass protobuf's 2 GiB limit, every initializer of at least
    /// [`SaveOptions::external_threshold`] bytes goes external.
    #[default]
    AsLoaded,
    /// Every initializer of at least the threshold goes external.
    Always,
    /// Everything inline (an error past 2 GiB).
    Never,
}

/// How to save.
#[derive(Clone, Debug)]
pub struct SaveOptions {
    pub external_data: ExternalDataPolicy,
    /// Initializers smaller than this stay inline when external data is chosen by size
    /// (onnx's `save_model` uses the same default).
    pub external_threshold: u64,
}

impl Default for SaveOptions {
    fn default() -> Self {
        Self {
            external_data: ExternalDataPolicy::AsLoaded,
            external_threshold: 1024,
        }
    }
}

/// What a save wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaveSummary {
    pub model_bytes: u64,
    /// The sidecar and its size, when tensors went external.
    pub external_data: Option<(PathBuf, u64)>,
}

/// The model as a proto, tensors as loaded: external tensors are references again (their
/// payload is not in the proto). For printing and inspection; [`save_file`] writes payloads.
pub fn to_proto(model: &Model) -> Result<proto::ModelProto, crate::arena::InvariantError> {
    let mut proto = build_model(model, &mut Payloads::Compute)?;
    walk::model_tensors::<()>(&mut proto, &mut |tensor, _| {
        if tensor::is_external(tensor) {
            tensor.raw_data = None;
        }
        Ok(())
    })
    .ok();
    Ok(proto)
}

/// The model serialized in memory, every tensor inline (for callers that hand bytes to another
/// library; models over 2 GiB must be saved to a file with external data instead).
pub fn to_bytes(model: &Model) -> Result<Vec<u8>, SaveError> {
    let path = PathBuf::from("<memory>");
    let mut proto =
        build_model(model, &mut Payloads::Compute).map_err(|source| SaveError::Invariant {
            path: path.clone(),
            source,
        })?;
    inline_all(&mut proto);
    let size = proto.encoded_len() as u64;
    if size > PROTOBUF_LIMIT {
        return Err(SaveError::TooLarge { path, size });
    }
    Ok(proto.encode_to_vec())
}

/// Saves the model to `path` (and `<path>.data` when tensors go external), atomically.
pub fn save_file(
    model: &Model,
    path: &Path,
    options: &SaveOptions,
) -> Result<SaveSummary, SaveError> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source: io::Error| SaveError::Io { path, source }
    };
    // Pending payloads are computed as they are written: the proto holds stand-ins.
    let mut placeholders = Placeholders::default();
    let mut proto =
        build_model(model, &mut Payloads::StandIn(&mut placeholders)).map_err(|source| {
            SaveError::Invariant {
                path: path.to_path_buf(),
                source,
            }
        })?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| SaveError::Io {
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
        })?;
    let sidecar_name = format!("{file_name}.data");
    let sidecar_path = folder.join(&sidecar_name);

    // Decide where each tensor goes: first as the policy says, then by size if that is too big.
    let threshold = options.external_threshold;
    let by_size = |tensor: &proto::TensorProto, site: Site<'_>| {
        !matches!(site, Site::Attribute { .. })
            && tensor
                .raw_data
                .as_ref()
                .is_some_and(|raw| raw.len() as u64 >= threshold)
    };
    let mut external: Vec<bool> = Vec::new();
    walk::model_tensors::<()>(&mut proto, &mut |tensor, site| {
        external.push(match options.external_data {
            ExternalDataPolicy::AsLoaded => tensor::is_external(tensor),
            ExternalDataPolicy::Always => tensor::is_external(tensor) || by_size(tensor, site),
            ExternalDataPolicy::Never => false,
        });
        Ok(())
    })
    .ok();
    let inline_size = inline_encoded_len(&mut proto, &external);
    if inline_size > PROTOBUF_LIMIT {
        if options.external_data == ExternalDataPolicy::Never {
            return Err(SaveError::TooLarge {
                path: path.to_path_buf(),
                size: inline_size,
            });
        }
        let mut index = 0;
        walk::model_tensors::<()>(&mut proto, &mut |tensor, site| {
            external[index] |= by_size(tensor, site);
            index += 1;
            Ok(())
        })
        .ok();
    }

    let mut sidecar = None;
    if external.iter().any(|e| *e) {
        let temp = temp_file_in(&folder).map_err(io_error(&sidecar_path))?;
        let mut writer = SidecarWriter::new(temp, sidecar_name);
        let mut index = 0;
        walk::model_tensors(&mut proto, &mut |tensor, _| {
            let goes_external = external[index];
            index += 1;
            match (goes_external, tensor.raw_data.take()) {
                (true, Some(payload)) => match placeholders.payload_for(&payload) {
                    Some(pending) => writer.externalize_pending(tensor, pending),
                    None => writer.externalize(tensor, &payload),
                },
                (true, None) => Ok(()),
                (false, payload) => {
                    tensor.raw_data = payload;
                    make_inline(tensor);
                    Ok(())
                }
            }
        })
        .map_err(io_error(&sidecar_path))?;
        let written = writer.len();
        sidecar = Some((writer.finish().map_err(io_error(&sidecar_path))?, written));
    } else {
        inline_all(&mut proto);
    }

    let size = proto.encoded_len() as u64;
    if size > PROTOBUF_LIMIT {
        return Err(SaveError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    let temp = temp_file_in(&folder).map_err(io_error(path))?;
    let mut sink = WriteSink::new(temp).computing(&placeholders);
    proto.encode(&mut sink).map_err(|e| SaveError::Io {
        path: path.to_path_buf(),
        source: io::Error::other(e),
    })?;
    let (temp, model_bytes) = sink.finish().map_err(io_error(path))?;

    // The sidecar first: a model file that exists always has its data beside it.
    let external_data = match sidecar {
        Some((file, bytes)) => {
            file.persist(&sidecar_path).map_err(|e| SaveError::Io {
                path: sidecar_path.clone(),
                source: e.error,
            })?;
            Some((sidecar_path, bytes))
        }
        None => None,
    };
    temp.persist(path).map_err(|e| SaveError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(SaveSummary {
        model_bytes,
        external_data,
    })
}

/// Size of the model if every tensor not marked external were inline.
fn inline_encoded_len(proto: &mut proto::ModelProto, external: &[bool]) -> u64 {
    let mut external_payload = 0u64;
    let mut index = 0;
    walk::model_tensors::<()>(proto, &mut |tensor, _| {
        if external[index] {
            external_payload += tensor.raw_data.as_ref().map_or(0, |r| r.len() as u64);
        }
        index += 1;
        Ok(())
    })
    .ok();
    // In the IR every raw payload is in `raw_data`, external or not.
    (proto.encoded_len() as u64).saturating_sub(external_payload)
}

fn inline_all(proto: &mut proto::ModelProto) {
    walk::model_tensors::<()>(proto, &mut |tensor, _| {
        make_inline(tensor);
        Ok(())
    })
    .ok();
}

/// Turns an external tensor whose payload is in `raw_data` into an inline one.
fn make_inline(tensor: &mut proto::TensorProto) {
    if tensor::is_external(tensor) {
        tensor.data_location = None;
        tensor.external_data.clear();
    }
}

fn temp_file_in(folder: &Path) -> io::Result<tempfile::NamedTempFile<File>> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".onnx-rewrite-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    builder.tempfile_in(folder)
}

// ---- IR → proto ---------------------------------------------------------------------------

/// What an initializer whose payload is pending gets in the proto.
enum Payloads<'a> {
    /// Its bytes, computed now.
    Compute,
    /// A stand-in, for a writer that computes the bytes where it meets it.
    StandIn(&'a mut Placeholders),
}

fn build_model(
    model: &Model,
    payloads: &mut Payloads<'_>,
) -> Result<proto::ModelProto, crate::arena::InvariantError> {
    let mut proto = model.proto.clone();
    proto.graph = Some(build_graph(model, model.main(), payloads)?);
    proto.functions = Vec::with_capacity(model.functions.len());
    for function in &model.functions {
        let body = model.graph(function.body);
        check_unique_names(model, function.body)?;
        let mut p = function.proto.clone();
        p.input = body
            .inputs()
            .iter()
            .map(|io| model.value(io.value).name().to_owned())
            .collect();
        p.output = body
            .outputs()
            .iter()
            .map(|io| model.value(io.value).name().to_owned())
            .collect();
        p.node = Vec::with_capacity(body.nodes().len());
        for n in body.nodes() {
            p.node.push(build_node(model, *n, payloads)?);
        }
        p.value_info = value_info(model, function.body);
        proto.functions.push(p);
    }
    Ok(proto)
}

fn build_graph(
    model: &Model,
    id: GraphId,
    payloads: &mut Payloads<'_>,
) -> Result<proto::GraphProto, crate::arena::InvariantError> {
    check_unique_names(model, id)?;
    let graph = model.graph(id);
    let mut p = graph.proto.clone();
    let named_info = |io: &crate::arena::GraphIo| {
        let mut info = io.info.clone().unwrap_or_default();
        info.name = Some(model.value(io.value).name().to_owned());
        info
    };
    p.input = graph.inputs().iter().map(named_info).collect();
    p.output = graph.outputs().iter().map(named_info).collect();
    p.initializer = graph
        .initializers()
        .iter()
        .filter_map(|v| {
            let value = model.value(*v);
            let mut tensor = value.initializer()?.clone();
            tensor.name = Some(value.name().to_owned());
            if let Some(pending) = model.pending_payload(*v) {
                tensor.raw_data = Some(match payloads {
                    Payloads::Compute => pending.materialize(),
                    Payloads::StandIn(placeholders) => placeholders.stand_in(pending),
                });
            }
            Some(tensor)
        })
        .collect();
    p.sparse_initializer = graph
        .sparse_initializers()
        .iter()
        .filter_map(|v| {
            let value = model.value(*v);
            let mut sparse = value.sparse_initializer()?.clone();
            if let Some(values) = sparse.values.as_mut() {
                values.name = Some(value.name().to_owned());
            }
            Some(sparse)
        })
        .collect();
    p.node = Vec::with_capacity(graph.nodes().len());
    for n in graph.nodes() {
        p.node.push(build_node(model, *n, payloads)?);
    }
    p.value_info = value_info(model, id);
    Ok(p)
}

fn value_info(model: &Model, graph: GraphId) -> Vec<proto::ValueInfoProto> {
    model
        .graph(graph)
        .value_info
        .iter()
        .map(|entry| {
            let mut info = entry.proto.clone();
            if let Some(value) = entry.value {
                info.name = Some(model.value(value).name().to_owned());
            }
            info
        })
        .collect()
}

fn build_node(
    model: &Model,
    id: NodeId,
    payloads: &mut Payloads<'_>,
) -> Result<proto::NodeProto, crate::arena::InvariantError> {
    let node = model.node(id);
    let name_of = |slot: &Option<crate::ValueId>| {
        slot.map_or_else(String::new, |v| model.value(v).name().to_owned())
    };
    let mut p = node.proto.clone();
    p.input = node.inputs().iter().map(name_of).collect();
    p.output = node.outputs().iter().map(name_of).collect();
    p.attribute = Vec::with_capacity(node.attributes.len());
    for attribute in &node.attributes {
        let mut a = attribute.proto.clone();
        a.g = match attribute.graph {
            Some(g) => Some(build_graph(model, g, payloads)?),
            None => None,
        };
        a.graphs = Vec::with_capacity(attribute.graphs.len());
        for g in &attribute.graphs {
            a.graphs.push(build_graph(model, *g, payloads)?);
        }
        p.attribute.push(a);
    }
    Ok(p)
}

/// Two values of one graph with the same name would make the proto mean something else.
fn check_unique_names(model: &Model, graph: GraphId) -> Result<(), crate::arena::InvariantError> {
    let g = model.graph(graph);
    let mut seen = HashSet::default();
    let defined = g
        .inputs()
        .iter()
        .map(|io| io.value)
        .chain(
            g.initializers()
                .iter()
                .copied()
                .filter(|v| model.value(*v).def() != crate::ValueDef::Input),
        )
        .chain(g.sparse_initializers().iter().copied())
        .chain(
            g.nodes()
                .iter()
                .flat_map(|n| model.node(*n).outputs().iter().flatten().copied()),
        );
    for value in defined {
        let name = model.value(value).name();
        if !seen.insert(name) {
            let where_ = match g.owner() {
                GraphOwner::Model => "the main graph".to_owned(),
                GraphOwner::Node { node, .. } => {
                    format!("a subgraph of {}", model.describe_node(node))
                }
                GraphOwner::Function { index } => format!("function {index}"),
            };
            return Err(crate::arena::InvariantError(format!(
                "two values in {where_} are named '{name}'"
            )));
        }
    }
    Ok(())
}
