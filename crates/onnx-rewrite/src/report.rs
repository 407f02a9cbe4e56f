//! The before/after report people look at: `--report-html` (per-pass tables, the op histogram
//! before and after, each rewritten region drawn small as inline SVG) and `--dot` (the same
//! regions for Graphviz).
//!
//! A region is found by diffing sketches of the main graph taken before and after each pass.
//! Passes keep value names where a value survives (DESIGN.md: fresh names only for new values),
//! so a node is "unchanged" when a node with the same op, attributes, input names and output
//! names exists on the other side. The changed nodes of both sides are grouped into regions
//! through the values they produce; a value every region merely reads (a graph input, a shared
//! constant) does not join regions, or one pass's rewrites would all become one blob.
//!
//! The page is static: no script, no external resource, so it renders the same offline, in a
//! mail attachment or in a CI artifact viewer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};

use onnx_rewrite_ir::Model;
use onnx_rewrite_proto::Message;

use crate::info::ModelInfo;
use crate::verify::VerifyReport;
use onnx_rewrite_pass::PipelineReport;

/// Regions drawn per pass; the rest are counted.
const MAX_REGIONS_PER_PASS: usize = 8;
/// Nodes drawn per side of a region; the rest are counted.
const MAX_NODES_PER_SIDE: usize = 14;

/// One node of a sketch: enough to diff and to draw, no tensor data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SketchNode {
    /// `Op`, or `domain.Op` outside the default domain.
    pub op: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// A hash of the attributes (values included), so an attribute change is a change.
    attributes: u64,
}

/// The main graph's nodes, in order.
#[derive(Debug, Clone, Default)]
pub struct GraphSketch {
    pub nodes: Vec<SketchNode>,
}

impl GraphSketch {
    pub fn of(model: &Model) -> Self {
        let graph = model.graph(model.main());
        let name = |v: &Option<onnx_rewrite_ir::ValueId>| {
            v.map_or_else(String::new, |v| model.value(v).name().to_owned())
        };
        let nodes = graph
            .nodes()
            .iter()
            .map(|id| {
                let node = model.node(*id);
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                for a in &node.attributes {
                    a.proto.encode_to_vec().hash(&mut hasher);
                }
                SketchNode {
                    op: match node.domain() {
                        "" => node.op_type().to_owned(),
                        d => format!("{d}.{}", node.op_type()),
                    },
                    inputs: node.inputs().iter().map(name).collect(),
                    outputs: node.outputs().iter().map(name).collect(),
                    attributes: hasher.finish(),
                }
            })
            .collect();
        Self { nodes }
    }
}

/// A rewritten region: what the pass removed and what it put in its place.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Region {
    pub before: Vec<RegionNode>,
    pub after: Vec<RegionNode>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RegionNode {
    pub op: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

/// The regions a pass rewrote, largest first (ties in graph order).
pub fn regions(before: &GraphSketch, after: &GraphSketch) -> Vec<Region> {
    fn count(s: &GraphSketch) -> HashMap<&SketchNode, usize> {
        let mut m: HashMap<&SketchNode, usize> = HashMap::new();
        for n in &s.nodes {
            *m.entry(n).or_default() += 1;
        }
        m
    }
    // A node is changed when the other side has no unmatched copy of it.
    fn changed(nodes: &[SketchNode], other: &mut HashMap<&SketchNode, usize>) -> Vec<SketchNode> {
        nodes
            .iter()
            .filter(|n| match other.get_mut(*n) {
                Some(c) if *c > 0 => {
                    *c -= 1;
                    false
                }
                _ => true,
            })
            .cloned()
            .collect()
    }
    let (mut in_before, mut in_after) = (count(before), count(after));
    let removed = changed(&before.nodes, &mut in_after);
    let added = changed(&after.nodes, &mut in_before);
    if removed.is_empty() && added.is_empty() {
        return Vec::new();
    }

    // Union-find over changed nodes (removed first, then added), joined through values a
    // changed node produces.
    let all: Vec<(bool, &SketchNode)> = removed
        .iter()
        .map(|n| (false, n))
        .chain(added.iter().map(|n| (true, n)))
        .collect();
    let mut parent: Vec<usize> = (0..all.len()).collect();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, (_, n)) in all.iter().enumerate() {
        for o in n.outputs.iter().filter(|o| !o.is_empty()) {
            match producer.get(o.as_str()) {
                Some(&j) => {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                    parent[a] = b;
                }
                None => {
                    producer.insert(o, i);
                }
            }
        }
    }
    for (i, (_, n)) in all.iter().enumerate() {
        for input in &n.inputs {
            if let Some(&j) = producer.get(input.as_str()) {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                parent[a] = b;
            }
        }
    }
    let mut groups: BTreeMap<usize, Region> = BTreeMap::new();
    let mut first_seen: Vec<usize> = Vec::new();
    for (i, (is_after, n)) in all.iter().enumerate() {
        let root = find(&mut parent, i);
        if !groups.contains_key(&root) {
            first_seen.push(root);
        }
        let region = groups.entry(root).or_default();
        let node = RegionNode {
            op: n.op.clone(),
            inputs: n.inputs.clone(),
            outputs: n.outputs.clone(),
        };
        if *is_after {
            region.after.push(node);
        } else {
            region.before.push(node);
        }
    }
    let mut out: Vec<Region> = first_seen
        .into_iter()
        .filter_map(|r| groups.remove(&r))
        .collect();
    // Stable: equal sizes keep graph order, so the page is deterministic.
    out.sort_by_key(|r| std::cmp::Reverse(r.before.len() + r.after.len()));
    out
}

/// Everything the report shows.
#[derive(Debug, Clone)]
pub struct ReportData<'a> {
    pub title: String,
    pub info_before: &'a ModelInfo,
    pub info_after: &'a ModelInfo,
    pub pipeline: &'a PipelineReport,
    /// The regions each pass rewrote, in pass order (same length as `pipeline.passes`).
    pub regions: &'a [Vec<Region>],
    pub verify: Option<&'a VerifyReport>,
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:2px 8px;text-align:right}\
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}.bar{display:inline-block;height:.8em;background:#7aa6d8;vertical-align:middle}\
.bar.after{background:#e59a4b}.regions{display:flex;flex-wrap:wrap;gap:12px}figure.region{border:1px solid #ddd;margin:0;padding:6px;background:#fafafa}\
figcaption{font-size:12px;color:#555}.over{color:#b00;font-weight:bold}tr.changed td:first-child{font-weight:bold}.ok{color:#070}";

/// The HTML page.
pub fn render_html(data: &ReportData<'_>) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(&data.title)
    );
    let _ = writeln!(h, "<h1>{}</h1>", esc(&data.title));
    let _ = writeln!(
        h,
        "<p>Nodes {} &rarr; {}; initializer bytes {} &rarr; {}.</p>",
        data.info_before.nodes,
        data.info_after.nodes,
        data.info_before.initializer_bytes,
        data.info_after.initializer_bytes
    );

    // Per-pass summary table.
    h.push_str("<h2>Passes</h2>\n<table id=\"passes\"><thead><tr><th>pass</th><th>nodes before</th><th>nodes after</th><th>rules applied</th><th>regions</th><th>declined</th><th>ms</th></tr></thead><tbody>\n");
    for (i, p) in data.pipeline.passes.iter().enumerate() {
        let regions = data.regions.get(i).map_or(0, Vec::len);
        let _ = writeln!(
            h,
            "<tr data-pass=\"{0}\"><td><a href=\"#pass-{0}\">{0}</a></td><td>{1}</td><td>{2}</td><td>{3}</td><td>{4}</td><td>{5}</td><td>{6:.1}</td></tr>",
            esc(&p.pass),
            p.nodes_before,
            p.nodes_after,
            p.rules.values().sum::<usize>(),
            regions,
            p.declined.len(),
            p.time_ms
        );
    }
    h.push_str("</tbody></table>\n");

    if let Some(v) = data.verify {
        h.push_str("<h2>Verification (tract-onnx)</h2>\n");
        let _ = writeln!(
            h,
            "<p>rtol {:e}, atol {:e}; inputs {}</p><table id=\"verify\"><thead><tr><th>output</th><th>shape</th><th>max |error|</th><th>error / tolerance</th><th>result</th></tr></thead><tbody>",
            v.tolerance.rtol,
            v.tolerance.atol,
            esc(&v
                .inputs
                .iter()
                .map(|(n, s)| format!("{n}={s:?}"))
                .collect::<Vec<_>>()
                .join(", "))
        );
        for o in &v.outputs {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{:?}</td><td>{:.3e}</td><td>{:.3}</td><td class=\"{}\">{}</td></tr>",
                esc(&o.name),
                o.shape,
                o.max_abs_error,
                o.worst_ratio,
                if o.within_tolerance { "ok" } else { "over" },
                if o.within_tolerance { "ok" } else { "OVER" }
            );
        }
        h.push_str("</tbody></table>\n");
        for note in &v.notes {
            let _ = writeln!(h, "<p class=\"note\">Note: {}</p>", esc(note));
        }
    }

    // Op histogram before and after.
    h.push_str("<h2>Operators</h2>\n<table id=\"ops\"><thead><tr><th>op</th><th>before</th><th>after</th><th>change</th><th></th></tr></thead><tbody>\n");
    let ops: BTreeSet<&String> = data
        .info_before
        .ops
        .keys()
        .chain(data.info_after.ops.keys())
        .collect();
    let most = data
        .info_before
        .ops
        .values()
        .chain(data.info_after.ops.values())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    for op in ops {
        let b = data.info_before.ops.get(op).copied().unwrap_or(0);
        let a = data.info_after.ops.get(op).copied().unwrap_or(0);
        let width = |n: usize| (n * 160).div_ceil(most);
        let _ = writeln!(
            h,
            "<tr data-op=\"{0}\"{6}><td>{0}</td><td>{1}</td><td>{2}</td><td>{3:+}</td><td style=\"text-align:left\"><span class=\"bar\" style=\"width:{4}px\" title=\"before\"></span><br><span class=\"bar after\" style=\"width:{5}px\" title=\"after\"></span></td></tr>",
            esc(op),
            b,
            a,
            a as i64 - b as i64,
            width(b),
            width(a),
            if a == b { "" } else { " class=\"changed\"" }
        );
    }
    h.push_str("</tbody></table>\n");

    // Per pass: rules, declines, notes, regions.
    for (i, p) in data.pipeline.passes.iter().enumerate() {
        let _ = writeln!(
            h,
            "<section class=\"pass\" id=\"pass-{0}\"><h2>{0}</h2>",
            esc(&p.pass)
        );
        if !p.rules.is_empty() {
            h.push_str("<table class=\"rules\"><thead><tr><th>rule</th><th>applied</th></tr></thead><tbody>");
            for (rule, n) in &p.rules {
                let _ = write!(h, "<tr><td>{}</td><td>{n}</td></tr>", esc(rule));
            }
            h.push_str("</tbody></table>\n");
        }
        if !p.declined.is_empty() {
            h.push_str("<table class=\"declined\"><thead><tr><th>node</th><th>graph</th><th>rule</th><th>reason</th></tr></thead><tbody>");
            for d in &p.declined {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
                    esc(&d.node),
                    esc(&d.graph),
                    esc(&d.rule),
                    esc(&d.reason)
                );
            }
            h.push_str("</tbody></table>\n");
        }
        if !p.notes.is_empty() {
            h.push_str("<ul class=\"notes\">");
            for n in &p.notes {
                let _ = write!(h, "<li>{}</li>", esc(n));
            }
            h.push_str("</ul>\n");
        }
        let regions = data.regions.get(i).map_or(&[][..], Vec::as_slice);
        if regions.is_empty() {
            h.push_str("<p>No node of the main graph changed.</p>\n");
        } else {
            let _ = writeln!(
                h,
                "<p>{} rewritten region(s){}.</p><div class=\"regions\">",
                regions.len(),
                if regions.len() > MAX_REGIONS_PER_PASS {
                    format!(", the {MAX_REGIONS_PER_PASS} largest drawn")
                } else {
                    String::new()
                }
            );
            for (j, r) in regions.iter().take(MAX_REGIONS_PER_PASS).enumerate() {
                let _ = writeln!(
                    h,
                    "<figure class=\"region\">{}<figcaption>region {}: {} node(s) &rarr; {}</figcaption></figure>",
                    region_svg(r, &format!("{i}-{j}")),
                    j + 1,
                    r.before.len(),
                    r.after.len()
                );
            }
            h.push_str("</div>\n");
        }
        h.push_str("</section>\n");
    }
    h.push_str("</body></html>\n");
    h
}

/// Layers for a small DAG: a node sits one below the deepest node it reads from.
fn layers(nodes: &[RegionNode]) -> Vec<usize> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in &n.outputs {
            producer.entry(o.as_str()).or_insert(i);
        }
    }
    let mut depth = vec![0usize; nodes.len()];
    // Nodes come in graph (topological) order, so one forward sweep suffices; the `j < i` guard
    // keeps a malformed order from looping.
    for i in 0..nodes.len() {
        for input in &nodes[i].inputs {
            if let Some(&j) = producer.get(input.as_str())
                && j < i
            {
                depth[i] = depth[i].max(depth[j] + 1);
            }
        }
    }
    depth
}

/// One side of a region as SVG elements at horizontal offset `x0`; returns its width.
fn draw_side(
    svg: &mut String,
    nodes: &[RegionNode],
    x0: f64,
    label: &str,
    marker: &str,
) -> (f64, f64) {
    const W: f64 = 96.0;
    const H: f64 = 22.0;
    const GAP_X: f64 = 8.0;
    const GAP_Y: f64 = 18.0;
    let shown = &nodes[..nodes.len().min(MAX_NODES_PER_SIDE)];
    let depth = layers(shown);
    let mut column_in_layer: BTreeMap<usize, usize> = BTreeMap::new();
    let mut pos = Vec::with_capacity(shown.len());
    for d in &depth {
        let c = column_in_layer.entry(*d).or_default();
        pos.push((x0 + *c as f64 * (W + GAP_X), 20.0 + *d as f64 * (H + GAP_Y)));
        *c += 1;
    }
    let width = column_in_layer.values().max().copied().unwrap_or(1).max(1) as f64 * (W + GAP_X);
    let mut height = 20.0 + (depth.iter().max().copied().unwrap_or(0) + 1) as f64 * (H + GAP_Y);
    let _ = write!(
        svg,
        "<text x=\"{x0}\" y=\"12\" font-size=\"11\" fill=\"#555\">{label}</text>"
    );
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in shown.iter().enumerate() {
        for o in &n.outputs {
            producer.entry(o.as_str()).or_insert(i);
        }
    }
    for (i, n) in shown.iter().enumerate() {
        for input in &n.inputs {
            if let Some(&j) = producer.get(input.as_str())
                && j < i
            {
                let (a, b) = (pos[j], pos[i]);
                let _ = write!(
                    svg,
                    "<line x1=\"{:.0}\" y1=\"{:.0}\" x2=\"{:.0}\" y2=\"{:.0}\" stroke=\"#888\" marker-end=\"url(#{marker})\"/>",
                    a.0 + W / 2.0,
                    a.1 + H,
                    b.0 + W / 2.0,
                    b.1
                );
            }
        }
    }
    let fill = if label == "before" {
        "#f6d5d5"
    } else {
        "#d5ecd5"
    };
    for (n, (x, y)) in shown.iter().zip(&pos) {
        let op: String = n.op.chars().take(14).collect();
        let _ = write!(
            svg,
            "<g class=\"node\"><title>{}</title><rect x=\"{x:.0}\" y=\"{y:.0}\" width=\"{W}\" height=\"{H}\" rx=\"4\" fill=\"{fill}\" stroke=\"#666\"/><text x=\"{:.0}\" y=\"{:.0}\" font-size=\"11\" text-anchor=\"middle\">{}</text></g>",
            esc(&format!("{} -> {}", n.op, n.outputs.join(", "))),
            x + W / 2.0,
            y + 15.0,
            esc(&op)
        );
    }
    if nodes.len() > shown.len() {
        let _ = write!(
            svg,
            "<text x=\"{x0}\" y=\"{:.0}\" font-size=\"11\" fill=\"#555\">+{} more</text>",
            height + 4.0,
            nodes.len() - shown.len()
        );
        height += 16.0;
    }
    if nodes.is_empty() {
        let _ = write!(
            svg,
            "<text x=\"{x0}\" y=\"34\" font-size=\"11\" fill=\"#999\">(nothing)</text>"
        );
    }
    (width, height)
}

/// A region drawn small: what was removed on the left, what replaced it on the right.
/// `id` makes the arrow marker's id unique in the page.
fn region_svg(region: &Region, id: &str) -> String {
    let marker = format!("arrow-{id}");
    let mut body = String::new();
    let (wb, hb) = draw_side(&mut body, &region.before, 4.0, "before", &marker);
    let (wa, ha) = draw_side(&mut body, &region.after, 4.0 + wb + 24.0, "after", &marker);
    let width = 4.0 + wb + 24.0 + wa;
    let height = hb.max(ha) + 4.0;
    format!(
        "<svg class=\"region\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\"><defs><marker id=\"{marker}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0L10,5L0,10z\" fill=\"#888\"/></marker></defs>{body}</svg>"
    )
}

/// The regions for Graphviz: one cluster per region and side.
pub fn render_dot(passes: &PipelineReport, regions: &[Vec<Region>]) -> String {
    let mut d = String::from(
        "digraph rewrites {\n  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", fontsize=10];\n",
    );
    let mut next = 0usize;
    for (p, pass_regions) in passes.passes.iter().zip(regions) {
        for (j, r) in pass_regions.iter().enumerate() {
            for (side, nodes, fill) in [
                ("before", &r.before, "#f6d5d5"),
                ("after", &r.after, "#d5ecd5"),
            ] {
                let _ = writeln!(
                    d,
                    "  subgraph cluster_{next} {{\n    label=\"{} region {} {side}\";",
                    p.pass.replace('"', "'"),
                    j + 1
                );
                let base = next * 10_000;
                next += 1;
                let mut producer: HashMap<&str, usize> = HashMap::new();
                for (i, n) in nodes.iter().enumerate() {
                    let _ = writeln!(
                        d,
                        "    n{} [label=\"{}\", fillcolor=\"{fill}\"];",
                        base + i,
                        n.op.replace('"', "'")
                    );
                    for o in &n.outputs {
                        producer.entry(o.as_str()).or_insert(i);
                    }
                }
                for (i, n) in nodes.iter().enumerate() {
                    for input in &n.inputs {
                        if let Some(&j) = producer.get(input.as_str())
                            && j != i
                        {
                            let _ = writeln!(d, "    n{} -> n{};", base + j, base + i);
                        }
                    }
                }
                d.push_str("  }\n");
            }
        }
    }
    d.push_str("}\n");
    d
}
