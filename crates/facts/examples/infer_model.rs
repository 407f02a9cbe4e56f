//! Runs the facts analysis forward over a model's main graph and prints what it knows about
//! every value, one line each: `name<TAB>dtype<TAB>dims`, dims like `[N,3,?]` (`?` alone when
//! the rank is unknown). With `--values`, a fourth column shows small constants and per-element
//! dims.
//!
//! ```text
//! cargo run -p onnx-rewrite-facts --example infer_model -- model.onnx [--values]
//! ```
//!
//! `tools/facts/compare_inference.py` compares this output with onnx's shape inference.

use std::collections::HashMap;
use std::process::ExitCode;

use onnx_rewrite_facts::{
    ConstData, ConstTensor, Limits, OpInfo, Shape, Symbols, ValueFacts, dtype_name, infer,
};
use onnx_rewrite_proto::tensor_proto::DataType;
use onnx_rewrite_proto::{Message, ModelProto};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let values = if args.iter().any(|a| a == "--all-values") {
        Some(usize::MAX)
    } else if args.iter().any(|a| a == "--values") {
        Some(8)
    } else {
        None
    };
    let Some(path) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: infer_model MODEL.onnx [--values | --all-values]");
        return ExitCode::from(1);
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => bytes::Bytes::from(b),
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(1);
        }
    };
    let model = match ModelProto::decode(bytes) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(1);
        }
    };
    let mut out = String::new();
    run(&model, values, &mut out);
    print!("{out}");
    ExitCode::SUCCESS
}

fn run(model: &ModelProto, show_values: Option<usize>, out: &mut String) {
    let opsets: HashMap<&str, i64> = model
        .opset_import
        .iter()
        .map(|o| {
            (
                normalize_domain(o.domain.as_deref().unwrap_or("")),
                o.version.unwrap_or(0),
            )
        })
        .collect();
    let Some(graph) = &model.graph else {
        return;
    };
    let limits = Limits::default();
    let mut syms = Symbols::new();
    let mut facts: HashMap<&str, ValueFacts> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();

    for input in &graph.input {
        let name = input.name.as_deref().unwrap_or("");
        let f = input
            .r#type
            .as_ref()
            .map(|t| ValueFacts::from_type(t, &mut syms))
            .unwrap_or_default();
        facts.insert(name, f);
        order.push(name);
    }
    for init in &graph.initializer {
        let name = init.name.as_deref().unwrap_or("");
        // An initializer that is also an input is only a default: its value may be replaced.
        if facts.contains_key(name) {
            continue;
        }
        let f = match ConstTensor::from_proto(init, limits.max_const_elements) {
            Some(c) => ValueFacts::of_constant(c),
            None => ValueFacts {
                dtype: init.data_type.and_then(|d| DataType::try_from(d).ok()),
                shape: init
                    .dims
                    .iter()
                    .all(|&d| d >= 0)
                    .then(|| Shape::known(&init.dims)),
                ..Default::default()
            },
        };
        facts.insert(name, f);
        order.push(name);
    }
    for node in &graph.node {
        let domain = normalize_domain(node.domain.as_deref().unwrap_or(""));
        let op = OpInfo {
            domain,
            op_type: node.op_type.as_deref().unwrap_or(""),
            attributes: &node.attribute,
            opset: opsets.get(domain).copied().unwrap_or(0),
            outputs: node.output.len(),
        };
        let unknown = ValueFacts::default();
        let inputs: Vec<Option<&ValueFacts>> = node
            .input
            .iter()
            .map(|n| (!n.is_empty()).then(|| facts.get(n.as_str()).unwrap_or(&unknown)))
            .collect();
        let results = infer(&op, &inputs, &mut syms, &limits);
        for (name, f) in node.output.iter().zip(results) {
            if name.is_empty() {
                continue;
            }
            facts.insert(name, f);
            order.push(name);
        }
    }
    for name in order {
        if let Some(f) = facts.get(name) {
            line(name, f, &mut syms, show_values, out);
        }
    }
}

fn normalize_domain(d: &str) -> &str {
    if d == "ai.onnx" { "" } else { d }
}

fn line(
    name: &str,
    f: &ValueFacts,
    syms: &mut Symbols,
    show_values: Option<usize>,
    out: &mut String,
) {
    use std::fmt::Write;
    let dtype = f.dtype.map_or_else(|| "?".to_string(), dtype_name);
    let dims = match &f.shape {
        None => "?".to_string(),
        Some(s) => {
            let parts: Vec<String> = s.0.iter().map(|&d| syms.display(d).to_string()).collect();
            format!("[{}]", parts.join(","))
        }
    };
    let _ = write!(out, "{name}\t{dtype}\t{dims}");
    if let Some(shown) = show_values {
        let v = if let Some(c) = &f.constant {
            constant_text(c, shown)
        } else if let Some(sv) = &f.shape_value {
            let parts: Vec<String> = sv
                .iter()
                .map(|d| d.map_or_else(|| "?".to_string(), |d| syms.display(d).to_string()))
                .collect();
            format!("dims({})", parts.join(","))
        } else {
            String::new()
        };
        let _ = write!(out, "\t{v}");
    }
    out.push('\n');
}

fn constant_text(c: &ConstTensor, shown: usize) -> String {
    // Floats print in Rust's shortest round-trip form, so a reader recovers the exact value.
    let items: Vec<String> = match &c.data {
        ConstData::Bool(v) => v.iter().take(shown).map(|x| x.to_string()).collect(),
        ConstData::F16(v) => v.iter().take(shown).map(|x| x.to_string()).collect(),
        ConstData::BF16(v) => v.iter().take(shown).map(|x| x.to_string()).collect(),
        ConstData::F32(v) => v.iter().take(shown).map(|x| x.to_string()).collect(),
        ConstData::F64(v) => v.iter().take(shown).map(|x| x.to_string()).collect(),
        other => match other.to_i64s() {
            Some(v) => v.iter().take(shown).map(|x| x.to_string()).collect(),
            None => vec!["..".into()],
        },
    };
    let more = if c.len() > shown { ",.." } else { "" };
    format!("const({}{more})", items.join(","))
}
