//! `onnx-rewrite info` and `onnx-rewrite passes`.

use std::fmt::Write as _;

use onnx_rewrite::info::ModelInfo;
use onnx_rewrite::registry;

use crate::apply::load;
use crate::args::InfoArgs;
use crate::failure::Failure;
use crate::print::write_stdout;

pub fn run(args: &InfoArgs) -> Result<(), Failure> {
    let mut model = load(&args.input, args.load.allow_unknown_fields)?;
    let info = ModelInfo::of(&mut model);
    if args.json {
        let mut json =
            serde_json::to_string_pretty(&info).map_err(|e| Failure::Input(e.to_string()))?;
        json.push('\n');
        return write_stdout(&json);
    }
    write_stdout(&human(&info))
}

fn human(info: &ModelInfo) -> String {
    let mut s = String::new();
    let opsets: Vec<String> = info
        .opsets
        .iter()
        .map(|(d, v)| format!("{}:{v}", if d.is_empty() { "ai.onnx" } else { d }))
        .collect();
    let _ = writeln!(s, "ir_version   {}", info.ir_version);
    let _ = writeln!(s, "opsets       {}", opsets.join(", "));
    let _ = writeln!(s, "producer     {}", info.producer);
    let _ = writeln!(
        s,
        "graph        '{}': {} nodes ({} in all graphs), {} subgraphs, {} functions",
        info.graph_name,
        info.main_graph_nodes,
        info.nodes,
        info.subgraphs,
        info.functions.len()
    );
    let _ = writeln!(
        s,
        "initializers {} ({} bytes, {} external)",
        info.initializers, info.initializer_bytes, info.external_bytes
    );
    for (label, list) in [("input ", &info.inputs), ("output", &info.outputs)] {
        for io in list {
            let _ = writeln!(s, "{label}       {} {}", io.r#type, io.name);
        }
    }
    for (pass, finding) in &info.passes {
        let _ = writeln!(s, "pass {pass:<13} {finding}");
    }
    for region in &info.moe_dispatch {
        let _ = writeln!(s, "moe dispatch       {region}");
    }
    let _ = writeln!(s, "ops");
    let mut ops: Vec<(&String, &usize)> = info.ops.iter().collect();
    ops.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (op, count) in ops {
        let _ = writeln!(s, "  {count:>6}  {op}");
    }
    s
}

pub fn list_passes() -> Result<(), Failure> {
    let registry = registry();
    let passes = registry.passes();
    let all: Vec<&str> = passes
        .iter()
        .map(|p| p.name())
        .filter(|n| *n != "egraph")
        .collect();
    let all_line = format!(
        "every pass but egraph, in this order: {}",
        if all.is_empty() {
            "(none yet)".to_owned()
        } else {
            all.join(", ")
        }
    );
    let mut rows: Vec<(&str, &str)> = vec![(
        "none",
        "load and save only: a lossless round trip through the IR",
    )];
    rows.extend(passes.iter().map(|p| (p.name(), p.summary())));
    rows.push(("all", &all_line));
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let text: String = rows
        .iter()
        .map(|(name, summary)| format!("{name:<width$}  {summary}\n"))
        .collect();
    write_stdout(&text)
}
