//! Inlining calls of model-local functions.
//!
//! A node calls a model-local function when its domain, op type and overload name a
//! `model.functions` entry. The dynamo exporter of torch 2.8–2.9 exported each `torch.cond`
//! branch as such a function, called from a branch graph with no inputs (torch 2.15, which made
//! testdata/models, inlines them itself); onnxscript-built models call functions too. Where a
//! call stays, quantizers, converters and this crate's own analysis see only an opaque op. Each
//! call becomes a copy of the function body in the caller's graph: inputs bound to the call's
//! inputs (a missing one stays missing), attributes bound by name (the call's value, else the
//! function's default; an inner attribute referencing one the call does not bind is dropped,
//! as the spec says), every name made fresh (the function's own names are given back once the
//! function is gone, where nothing else holds them). Calls inside the
//! copied body (to other functions, inside subgraphs) are inlined in turn, and so are calls
//! inside the bodies of functions that stay; a function reached again through its own body is
//! an error, and so is a chain of calls deeper than [`MAX_CALL_DEPTH`].
//!
//! A call is declined, and stays, when the function imports an opset for a domain its body uses
//! that the caller (the model, or the function whose body holds the call) imports at another
//! version, since the body's ops would change meaning, or when it passes what a copy cannot
//! bind (a graph-valued attribute). A domain only the function imports is added to the
//! caller's imports. Functions that were called and no longer are, are removed, with the
//! opset imports that only named them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use onnx_rewrite_ir::proto::OperatorSetIdProto;
use onnx_rewrite_ir::{GraphId, GraphOwner, Model, Node, NodeId, ValueId};
use onnx_rewrite_pass::PassError;
use onnx_rewrite_pass::{Declined, describe_graph};

use onnx_rewrite_ir::edit::Names;

use crate::copy::{AttributeEnv, ValueMap, copy_body};
use crate::splice::{
    Restore, SpliceError, Wanted, atomically, place_before, replace_node, restore_names, sort,
};

/// Calls nested deeper than this (a function calling a function ...) are an error.
pub const MAX_CALL_DEPTH: usize = 64;

/// (domain, name, overload): what a call names.
type Key = (String, String, String);

/// What inlining did.
#[derive(Debug, Default)]
pub(crate) struct InlineOutcome {
    pub calls_inlined: usize,
    pub functions_removed: Vec<String>,
    pub opsets_added: Vec<String>,
    /// Domains imported only for the functions that were removed.
    pub opsets_removed: Vec<String>,
    pub declined: Vec<Declined>,
}

fn normalize(domain: &str) -> &str {
    if domain == "ai.onnx" { "" } else { domain }
}

fn key_of_node(n: &Node) -> Key {
    (
        normalize(n.domain()).to_owned(),
        n.op_type().to_owned(),
        n.proto.overload().to_owned(),
    )
}

/// The function each key names (the first, if a model lists one twice).
fn function_table(model: &Model) -> BTreeMap<Key, usize> {
    let mut table = BTreeMap::new();
    for (index, f) in model.functions.iter().enumerate() {
        let key = (
            normalize(f.proto.domain()).to_owned(),
            f.proto.name().to_owned(),
            f.proto.overload().to_owned(),
        );
        table.entry(key).or_insert(index);
    }
    table
}

/// Inlines every call in the main graph and its subgraphs.
pub(crate) fn inline_functions(
    model: &mut Model,
    names: &mut Names,
) -> Result<InlineOutcome, PassError> {
    let table = function_table(model);
    if table.is_empty() {
        return Ok(InlineOutcome::default());
    }
    let called_before = called(model, &table);
    let mut cx = Inlining {
        table: &table,
        names,
        outcome: InlineOutcome::default(),
        touched: BTreeSet::new(),
        wanted: Wanted::default(),
    };
    let main = calls_in(model, &table, model.main());
    inline_all(model, &mut cx, main, Vec::new())?;
    // Calls inside the bodies of the functions that stay (their own calls were declined).
    for function in called(model, &table) {
        let calls = calls_in(model, &table, model.functions[function].body);
        inline_all(model, &mut cx, calls, vec![function])?;
    }
    let Inlining {
        names,
        mut outcome,
        touched,
        wanted,
        ..
    } = cx;
    for graph in touched {
        sort(model, graph).map_err(PassError::input)?;
    }
    let called_after = called(model, &table);
    let mut gone: Vec<usize> = called_before.difference(&called_after).copied().collect();
    gone.sort_unstable_by(|a, b| b.cmp(a));
    let mut domains = BTreeSet::new();
    for index in gone {
        let f = model.remove_function(index).map_err(PassError::input)?;
        domains.insert(normalize(f.proto.domain()).to_owned());
        outcome.functions_removed.push(describe_function(&f.proto));
    }
    outcome.functions_removed.reverse();
    // The removed functions' names are free now: the copies get their sources' back.
    *names = Names::of(model);
    restore_names(model, names, &wanted, Restore::Afresh);
    // A domain imported only to name the removed functions goes with them.
    for domain in domains {
        let used = !domain.is_empty()
            && (model
                .functions
                .iter()
                .any(|f| normalize(f.proto.domain()) == domain)
                || domain_used(model, &domain));
        if !domain.is_empty() && !used {
            model
                .proto
                .opset_import
                .retain(|o| normalize(o.domain()) != domain);
            outcome.opsets_removed.push(domain);
        }
    }
    Ok(outcome)
}

/// What inlining carries from call to call.
struct Inlining<'a> {
    table: &'a BTreeMap<Key, usize>,
    names: &'a mut Names,
    outcome: InlineOutcome,
    touched: BTreeSet<GraphId>,
    /// The names the copies want back once the functions are gone.
    wanted: Wanted,
}

/// Inlines `calls` (reached through the functions of `chain`), then the calls their copies
/// hold, breadth first.
fn inline_all(
    model: &mut Model,
    cx: &mut Inlining<'_>,
    calls: Vec<NodeId>,
    chain: Vec<usize>,
) -> Result<(), PassError> {
    let table = cx.table;
    let mut queue: VecDeque<(NodeId, Vec<usize>)> =
        calls.into_iter().map(|n| (n, chain.clone())).collect();
    while let Some((call, chain)) = queue.pop_front() {
        if model.node(call).is_removed() {
            continue;
        }
        let Some(&function) = table.get(&key_of_node(model.node(call))) else {
            continue;
        };
        if chain.contains(&function) {
            let path: Vec<&str> = chain
                .iter()
                .chain(std::iter::once(&function))
                .map(|i| model.functions[*i].proto.name())
                .collect();
            return Err(PassError::input(format!(
                "function '{}' calls itself ({}); ONNX functions cannot be recursive",
                model.functions[function].proto.name(),
                path.join(" → ")
            )));
        }
        if chain.len() >= MAX_CALL_DEPTH {
            return Err(PassError::input(format!(
                "function calls are nested more than {MAX_CALL_DEPTH} deep at {}",
                model.describe_node(call)
            )));
        }
        let graph = model.node(call).graph();
        match inline_call(model, call, function, cx) {
            Ok((created, imports)) => {
                cx.outcome.calls_inlined += 1;
                cx.outcome.opsets_added.extend(imports);
                cx.touched.insert(graph);
                let mut next = chain.clone();
                next.push(function);
                for node in created {
                    if table.contains_key(&key_of_node(model.node(node))) {
                        queue.push_back((node, next.clone()));
                    }
                }
            }
            Err(reason) => cx.outcome.declined.push(Declined {
                graph: describe_graph(model, graph),
                node: model.describe_node(call),
                rule: "inline-functions".into(),
                reason: reason.to_string(),
            }),
        }
    }
    Ok(())
}

fn describe_function(f: &onnx_rewrite_ir::proto::FunctionProto) -> String {
    let overload = if f.overload().is_empty() {
        String::new()
    } else {
        format!(":{}", f.overload())
    };
    format!("{}.{}{overload}", f.domain(), f.name())
}

/// Whether a node of the main graph's tree or of a function body uses `domain`.
fn domain_used(model: &Model, domain: &str) -> bool {
    let roots = std::iter::once(model.main()).chain(model.functions.iter().map(|f| f.body));
    roots
        .flat_map(|root| tree(model, root))
        .flat_map(|g| model.graph(g).nodes().to_vec())
        .any(|n| normalize(model.node(n).domain()) == domain)
}

/// Who calls a function: the main graph's tree, or the body of the function named.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Caller {
    Model,
    Function(String),
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caller::Model => f.write_str("the model"),
            Caller::Function(name) => write!(f, "function '{name}'"),
        }
    }
}

/// The name a domain is shown by: the default domain as `ai.onnx`.
fn shown_domain(domain: &str) -> &str {
    if domain.is_empty() { "ai.onnx" } else { domain }
}

/// Why a call stays; `function` is the called function's name.
#[derive(Debug, thiserror::Error)]
enum Decline {
    #[error("the call passes {passed} inputs; function '{function}' takes {takes}")]
    Inputs {
        passed: usize,
        function: String,
        takes: usize,
    },
    #[error("the call has {wanted} outputs; function '{function}' has {has}")]
    Outputs {
        wanted: usize,
        function: String,
        has: usize,
    },
    #[error("output {slot} passes through an input the call leaves out")]
    LeftOutInput { slot: usize },
    #[error("function attribute '{attribute}' has a graph default")]
    GraphDefault { attribute: String },
    #[error("the call passes graph-valued attribute '{attribute}'")]
    GraphAttribute { attribute: String },
    #[error(
        "function '{function}' imports domain '{}' at version {imported}, {caller} at {caller_version}",
        shown_domain(domain)
    )]
    Opset {
        function: String,
        domain: String,
        imported: i64,
        caller: Caller,
        caller_version: i64,
    },
    #[error(transparent)]
    Splice(#[from] SpliceError),
}

/// Calls of local functions in the tree rooted at `root`, outermost graph first.
fn calls_in(model: &Model, table: &BTreeMap<Key, usize>, root: GraphId) -> Vec<NodeId> {
    tree(model, root)
        .into_iter()
        .flat_map(|g| model.graph(g).nodes().to_vec())
        .filter(|n| table.contains_key(&key_of_node(model.node(*n))))
        .collect()
}

/// The functions called from the main graph's tree, and from the bodies of those, transitively.
fn called(model: &Model, table: &BTreeMap<Key, usize>) -> BTreeSet<usize> {
    let mut found = BTreeSet::new();
    let mut pending: Vec<GraphId> = vec![model.main()];
    while let Some(root) = pending.pop() {
        for call in calls_in(model, table, root) {
            if let Some(&f) = table.get(&key_of_node(model.node(call)))
                && found.insert(f)
            {
                pending.push(model.functions[f].body);
            }
        }
    }
    found
}

/// Replaces one call by a copy of the function body; returns the nodes created and the opset
/// imports added to the model.
fn inline_call(
    model: &mut Model,
    call: NodeId,
    function: usize,
    cx: &mut Inlining<'_>,
) -> Result<(Vec<NodeId>, Vec<String>), Decline> {
    let graph = model.node(call).graph();
    let f = model.functions[function].clone();
    let body = f.body;
    let host = host_of(model, graph);
    let missing = check_opsets(model, &f, host)?;
    let env = bind_attributes(model, call, &f.proto)?;

    let call_inputs = model.node(call).inputs().to_vec();
    let body_inputs: Vec<ValueId> = model
        .graph(body)
        .inputs()
        .iter()
        .map(|io| io.value)
        .collect();
    if call_inputs.len() > body_inputs.len() {
        return Err(Decline::Inputs {
            passed: call_inputs.len(),
            function: f.proto.name().to_owned(),
            takes: body_inputs.len(),
        });
    }
    let mut map = ValueMap::default();
    for (i, &input) in body_inputs.iter().enumerate() {
        map.insert(input, call_inputs.get(i).copied().flatten());
    }
    let body_outputs: Vec<ValueId> = model
        .graph(body)
        .outputs()
        .iter()
        .map(|io| io.value)
        .collect();
    let call_outputs = model.node(call).outputs().to_vec();
    if call_outputs.len() > body_outputs.len() {
        return Err(Decline::Outputs {
            wanted: call_outputs.len(),
            function: f.proto.name().to_owned(),
            has: body_outputs.len(),
        });
    }
    for (slot, out) in call_outputs.iter().enumerate() {
        let read = out.is_some_and(|v| !model.value(v).uses().is_empty());
        if read && map.get(&body_outputs[slot]) == Some(&None) {
            return Err(Decline::LeftOutInput { slot });
        }
    }

    let (copied, took) = atomically(model, cx.names, |model, names| {
        let copied = copy_body(model, body, graph, &mut map, names, Some(&env))?;
        place_before(model, &copied.nodes, call)?;
        let made_here = |v: ValueId| copied.defines(v);
        let took = replace_node(model, call, &copied.outputs, &made_here, names)?;
        Ok::<_, SpliceError>((copied, took))
    })?;
    cx.wanted.extend(Wanted::of(model, &copied));
    for (value, output) in took {
        cx.wanted.took_name_of(value, output);
    }
    // The imports go in once the call is inlined (the model's header is not journaled).
    let mut added = Vec::new();
    for (domain, version) in missing {
        let import = OperatorSetIdProto {
            domain: Some(domain.clone()),
            version: Some(version),
        };
        match host {
            None => {
                added.push(format!("'{domain}' version {version}"));
                model.proto.opset_import.push(import);
            }
            Some(f) => {
                added.push(format!(
                    "'{domain}' version {version} (in function '{}')",
                    model.functions[f].proto.name()
                ));
                model.functions[f].proto.opset_import.push(import);
            }
        }
    }
    Ok((copied.all_nodes, added))
}

/// The attribute values a call binds: the call's, else the function's defaults.
fn bind_attributes(
    model: &Model,
    call: NodeId,
    f: &onnx_rewrite_ir::proto::FunctionProto,
) -> Result<AttributeEnv, Decline> {
    let n = model.node(call);
    let mut env = AttributeEnv::new();
    for default in &f.attribute_proto {
        if default.g.is_some() || !default.graphs.is_empty() {
            return Err(Decline::GraphDefault {
                attribute: default.name().to_owned(),
            });
        }
        env.insert(default.name().to_owned(), default.clone());
    }
    let declared: BTreeSet<&str> = f
        .attribute
        .iter()
        .map(String::as_str)
        .chain(f.attribute_proto.iter().map(|a| a.name()))
        .collect();
    for a in &n.attributes {
        if !declared.contains(a.name()) {
            continue;
        }
        if a.graph.is_some() || !a.graphs.is_empty() {
            return Err(Decline::GraphAttribute {
                attribute: a.name().to_owned(),
            });
        }
        env.insert(a.name().to_owned(), a.proto.clone());
    }
    Ok(env)
}

/// Where a call is: the main graph's tree (`None`) or the body of function `Some(index)`, whose
/// own opset imports then apply.
fn host_of(model: &Model, graph: GraphId) -> Option<usize> {
    match model.graph(root_of(model, graph)).owner() {
        GraphOwner::Function { index } => Some(index as usize),
        GraphOwner::Model | GraphOwner::Node { .. } => None,
    }
}

fn host_opset(model: &Model, host: Option<usize>, domain: &str) -> Option<i64> {
    match host {
        None => model.opset(domain),
        Some(f) => model.functions[f]
            .proto
            .opset_import
            .iter()
            .find(|o| normalize(o.domain()) == domain)
            .map(|o| o.version()),
    }
}

/// The function's body means what it says only under its own opset imports: a domain the
/// caller (the model, or the function whose body holds the call) imports at another version
/// declines the call; one the caller lacks is returned, to be added.
fn check_opsets(
    model: &Model,
    f: &onnx_rewrite_ir::Function,
    host: Option<usize>,
) -> Result<Vec<(String, i64)>, Decline> {
    let mut missing = Vec::new();
    let table = function_table(model);
    let mut domains: BTreeSet<String> = BTreeSet::new();
    for graph in tree(model, f.body) {
        for &node in model.graph(graph).nodes() {
            let n = model.node(node);
            if !table.contains_key(&key_of_node(n)) {
                domains.insert(normalize(n.domain()).to_owned());
            }
        }
    }
    for domain in domains {
        let imported = f
            .proto
            .opset_import
            .iter()
            .find(|o| normalize(o.domain()) == domain)
            .map(|o| o.version());
        match (imported, host_opset(model, host, &domain)) {
            (Some(imported), Some(caller_version)) if imported != caller_version => {
                let caller = match host {
                    None => Caller::Model,
                    Some(h) => Caller::Function(model.functions[h].proto.name().to_owned()),
                };
                return Err(Decline::Opset {
                    function: f.proto.name().to_owned(),
                    domain,
                    imported,
                    caller,
                    caller_version,
                });
            }
            (Some(version), None) => missing.push((domain, version)),
            _ => {}
        }
    }
    Ok(missing)
}

/// Calls of local functions anywhere in the main graph's tree (for `info`).
pub(crate) fn count_calls(model: &Model) -> usize {
    let table = function_table(model);
    if table.is_empty() {
        return 0;
    }
    calls_in(model, &table, model.main()).len()
}

/// The root of the scope tree `graph` belongs to: the main graph or a function body.
fn root_of(model: &Model, graph: GraphId) -> GraphId {
    let mut g = graph;
    while let GraphOwner::Node { node, .. } = model.graph(g).owner() {
        g = model.node(node).graph();
    }
    g
}

/// `root` and every graph nested in it, outermost first.
fn tree(model: &Model, root: GraphId) -> Vec<GraphId> {
    let mut out = vec![root];
    let mut i = 0;
    while let Some(&graph) = out.get(i) {
        for &node in model.graph(graph).nodes() {
            out.extend(model.node(node).subgraphs());
        }
        i += 1;
    }
    out
}
