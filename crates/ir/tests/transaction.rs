//! The editing API: a rolled-back transaction leaves the model exactly as it was, whatever the
//! edits; sweep removes what an edit left unread and nothing else; reroute keeps output names.

use onnx_rewrite_ir::edit::{self, Names, Op, OutputKept, Transaction, attr};
use onnx_rewrite_ir::proto;
use onnx_rewrite_ir::{Model, NodeId, ValueDef, ValueId, ValueInfoEntry};
use proptest::prelude::*;

fn f32_scalar(v: f32) -> proto::TensorProto {
    proto::TensorProto {
        data_type: Some(proto::tensor_proto::DataType::Float as i32),
        float_data: vec![v],
        ..Default::default()
    }
}

/// x → Relu → Neg → y (an output), c a constant read by an Add beside it, an If with a branch
/// that reads the Relu's output.
fn base() -> Model {
    let mut m = Model::new(proto::ModelProto::default(), proto::GraphProto::default());
    let mut names = Names::of(&m);
    let g = m.main();
    let x = m.add_input(g, "x", None);
    let c = m.add_initializer(g, "c", f32_scalar(2.0));
    let r = Op::new("Relu")
        .input(x)
        .add_value(&mut m, &mut names, g)
        .unwrap();
    let n = Op::new("Neg")
        .input(r)
        .output("y")
        .add_value(&mut m, &mut names, g)
        .unwrap();
    let a = Op::new("Add")
        .inputs(&[Some(n), Some(c)])
        .output("z")
        .add_value(&mut m, &mut names, g)
        .unwrap();
    m.add_output(g, n, None);
    m.add_output(g, a, None);
    let cond = m.add_input(g, "cond", None);
    let ifn = m.add_node(
        g,
        proto::NodeProto {
            op_type: Some("If".into()),
            name: Some("if".into()),
            ..Default::default()
        },
        &[Some(cond)],
        &[Some("w".into())],
        vec![proto::AttributeProto {
            name: Some("then_branch".into()),
            ..Default::default()
        }],
    );
    let body = m.add_subgraph(ifn, 0, proto::GraphProto::default(), false);
    let inner = m.add_node(
        body,
        proto::NodeProto {
            op_type: Some("Identity".into()),
            ..Default::default()
        },
        &[Some(r)],
        &[Some("inner".into())],
        vec![],
    );
    let iv = m.node(inner).outputs()[0].unwrap();
    m.add_output(body, iv, None);
    let w = m.node(ifn).outputs()[0].unwrap();
    m.add_output(g, w, None);
    let r_name = m.value(r).name().to_owned();
    m.graph_mut(g).value_info.push(ValueInfoEntry {
        value: Some(r),
        proto: proto::ValueInfoProto {
            name: Some(r_name),
            ..Default::default()
        },
    });
    m.check().unwrap();
    m
}

#[derive(Clone, Debug)]
enum Step {
    AddNode(usize),
    SetInput(usize, usize),
    Reroute(usize, usize),
    ReplaceAll(usize, usize),
    Rename(usize),
    SetInitializer(f32),
    AddInitializer,
    Sweep(usize),
    RemoveUnread,
    Reorder,
    ValueInfo,
    Attribute(usize),
    Nested(bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..64usize).prop_map(Step::AddNode),
        (0..64usize, 0..64usize).prop_map(|(a, b)| Step::SetInput(a, b)),
        (0..64usize, 0..64usize).prop_map(|(a, b)| Step::Reroute(a, b)),
        (0..64usize, 0..64usize).prop_map(|(a, b)| Step::ReplaceAll(a, b)),
        (0..64usize).prop_map(Step::Rename),
        (-4.0f32..4.0).prop_map(Step::SetInitializer),
        Just(Step::AddInitializer),
        (0..64usize).prop_map(Step::Sweep),
        Just(Step::RemoveUnread),
        Just(Step::Reorder),
        Just(Step::ValueInfo),
        (0..64usize).prop_map(Step::Attribute),
        any::<bool>().prop_map(Step::Nested),
    ]
}

/// Values of the main graph a new reader may read (so the graph stays acyclic: only values
/// defined before the reader's position are offered, and new nodes go last).
fn main_values(m: &Model) -> Vec<ValueId> {
    let g = m.graph(m.main());
    let mut vs: Vec<ValueId> = g.inputs().iter().map(|io| io.value).collect();
    vs.extend(g.initializers());
    for &n in g.nodes() {
        vs.extend(m.node(n).outputs().iter().flatten());
    }
    vs
}

fn main_nodes(m: &Model) -> Vec<NodeId> {
    m.graph(m.main()).nodes().to_vec()
}

fn apply(m: &mut Model, names: &mut Names, s: &Step) {
    let g = m.main();
    let vs = main_values(m);
    let ns = main_nodes(m);
    match *s {
        Step::AddNode(i) => {
            let v = vs[i % vs.len()];
            Op::new("Abs").input(v).add(m, names, g);
        }
        Step::SetInput(i, j) => {
            // Only a node appended after the value may read it: pick the last node.
            let Some(&node) = ns.last() else { return };
            let pos = vs
                .iter()
                .position(|v| m.value(*v).producer().map(|p| p.0) == Some(node));
            let limit = pos.unwrap_or(vs.len());
            if limit > 0 && !m.node(node).inputs().is_empty() {
                let slot = i % m.node(node).inputs().len();
                m.set_node_input(node, slot, Some(vs[j % limit]));
            }
        }
        Step::Reroute(i, j) | Step::ReplaceAll(i, j) => {
            // Reroute a later value's readers to an earlier one (no cycle).
            let (a, b) = (i % vs.len(), j % vs.len());
            let (old, new) = (vs[a.max(b)], vs[a.min(b)]);
            if matches!(s, Step::Reroute(..)) {
                edit::reroute(m, names, old, new).unwrap();
            } else {
                m.replace_all_uses(old, new);
            }
        }
        Step::Rename(i) => {
            let v = vs[i % vs.len()];
            let fresh = names.value("renamed");
            m.rename_value(v, fresh);
        }
        Step::SetInitializer(x) => {
            // The constant may have been swept.
            if let Some(&c) = m.graph(g).initializers().first() {
                m.set_initializer(c, f32_scalar(x));
            }
        }
        Step::AddInitializer => {
            let name = names.value("k");
            m.add_initializer(g, name, f32_scalar(1.0));
        }
        Step::Sweep(i) => {
            let v = vs[i % vs.len()];
            edit::sweep(m, &[v]).unwrap();
        }
        Step::RemoveUnread => {
            let unread: Vec<NodeId> = ns
                .iter()
                .copied()
                .filter(|n| {
                    m.node(*n)
                        .outputs()
                        .iter()
                        .flatten()
                        .all(|v| m.value(*v).uses().is_empty())
                })
                .collect();
            m.remove_nodes(&unread).unwrap();
        }
        Step::Reorder => {
            let order = m.topological_order(g).unwrap();
            let mut rev = order.clone();
            rev.reverse();
            m.set_node_order(g, rev).unwrap();
            m.set_node_order(g, order).unwrap();
        }
        Step::ValueInfo => {
            m.graph_mut(g).value_info.clear();
        }
        Step::Attribute(i) => {
            if let Some(&node) = ns.get(i % ns.len().max(1)) {
                attr::set(m, node, attr::int("k", i as i64));
            }
        }
        Step::Nested(keep) => {
            let cp = m.checkpoint();
            let v = vs[0];
            Op::new("Sqrt").input(v).add(m, names, g);
            // Headers snapshotted inside a nested checkpoint that rolls back must be taken
            // again by the enclosing one.
            if let Some(&node) = ns.first() {
                attr::set(m, node, attr::int("nested", 1));
            }
            m.graph_mut(g).value_info.clear();
            if keep {
                m.commit(cp).unwrap()
            } else {
                m.rollback(cp).unwrap()
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rollback_restores_the_model_exactly(steps in prop::collection::vec(step(), 1..24)) {
        let mut m = base();
        let before = format!("{m:?}");
        let mut names = Names::of(&m);
        {
            let mut tx = Transaction::begin(&mut m);
            for s in &steps {
                apply(&mut tx, &mut names, s);
                tx.check().map_err(|e| TestCaseError::fail(format!("{s:?}: {e}")))?;
            }
            tx.rollback().unwrap();
        }
        prop_assert_eq!(format!("{m:?}"), before);
        prop_assert!(!m.in_transaction());
    }

    #[test]
    fn a_dropped_transaction_rolls_back_and_a_committed_one_stays(steps in prop::collection::vec(step(), 1..12)) {
        let mut m = base();
        let before = format!("{m:?}");
        let mut names = Names::of(&m);
        {
            let mut tx = Transaction::begin(&mut m);
            for s in &steps {
                apply(&mut tx, &mut names, s);
            }
        }
        prop_assert_eq!(format!("{m:?}"), before.clone());
        let mut expected = m.clone();
        let mut names2 = names.clone();
        for s in &steps {
            apply(&mut expected, &mut names2, s);
        }
        let tx = {
            let mut tx = Transaction::begin(&mut m);
            for s in &steps {
                apply(&mut tx, &mut names, s);
            }
            tx.commit()
        };
        prop_assert!(tx.is_ok());
        prop_assert_eq!(format!("{m:?}"), format!("{expected:?}"));
    }
}

#[test]
fn sweep_removes_the_dead_chain_and_its_constants_only() {
    let mut m = base();
    let mut names = Names::of(&m);
    let g = m.main();
    // A constant read only by a node about to die, and one read by nothing before the edit.
    let k = m.add_initializer(g, "k", f32_scalar(3.0));
    let idle = m.add_initializer(g, "idle", f32_scalar(4.0));
    let x = m.graph(g).inputs()[0].value;
    let mul = Op::new("Mul")
        .inputs(&[Some(x), Some(k)])
        .add_value(&mut m, &mut names, g)
        .unwrap();
    let sq = Op::new("Sqrt")
        .input(mul)
        .add_value(&mut m, &mut names, g)
        .unwrap();
    let out = m.graph(g).outputs()[0].value;
    let neg = m.value(out).producer().unwrap().0;
    m.set_node_input(neg, 0, Some(sq));
    let nodes = m.graph(g).nodes().len();
    // Neg now reads the Sqrt: sweeping from the Relu's output finds it still read (by the If).
    let relu_out = m.graph(g).value_info[0].value.unwrap();
    let swept = edit::sweep(&mut m, &[relu_out]).unwrap();
    assert!(swept.nodes.is_empty());
    // Point Neg back at the Relu: the Sqrt and Mul die, and k with them; idle stays.
    m.set_node_input(neg, 0, Some(relu_out));
    let swept = edit::sweep(&mut m, &[sq]).unwrap();
    assert_eq!(swept.nodes.len(), 2);
    assert_eq!(swept.constants, vec![k]);
    assert_eq!(m.graph(g).nodes().len(), nodes - 2);
    assert!(m.graph(g).initializers().contains(&idle));
    m.check().unwrap();
}

#[test]
fn sweep_removes_a_node_whose_branch_alone_read_a_value() {
    let mut m = base();
    let g = m.main();
    let w = m.graph(g).outputs()[2].value;
    let ifn = m.value(w).producer().unwrap().0;
    // Drop the If's output from the graph's outputs by pointing it elsewhere; the If dies, and
    // the Relu stays (Neg reads it).
    let x = m.graph(g).inputs()[0].value;
    m.set_graph_output(g, 2, x);
    let swept = edit::sweep(&mut m, &[w]).unwrap();
    assert_eq!(swept.nodes, vec![ifn]);
    m.check().unwrap();
}

#[test]
fn reroute_keeps_every_graph_output_name() {
    // y is computed by Neg; replacing it by a new node: the new node takes the name.
    let mut m = base();
    let mut names = Names::of(&m);
    let g = m.main();
    let y = m.graph(g).outputs()[0].value;
    let x = m.graph(g).inputs()[0].value;
    let new = Op::new("Abs")
        .input(x)
        .add_value(&mut m, &mut names, g)
        .unwrap();
    assert_eq!(
        edit::reroute(&mut m, &mut names, y, new).unwrap(),
        OutputKept::Renamed
    );
    assert_eq!(m.value(m.graph(g).outputs()[0].value).name(), "y");
    assert_eq!(m.graph(g).outputs()[0].value, new);
    edit::sweep(&mut m, &[y]).unwrap();
    m.check().unwrap();

    // Replacing an output by a graph input: an Identity carries the name.
    let z = m.graph(g).outputs()[1].value;
    let kept = edit::reroute(&mut m, &mut names, z, x).unwrap();
    assert!(matches!(kept, OutputKept::Identity(_)));
    assert_eq!(m.value(m.graph(g).outputs()[1].value).name(), "z");
    assert_eq!(m.value(x).name(), "x");
    edit::sweep(&mut m, &[z]).unwrap();
    m.check().unwrap();

    // An output that is an input keeps reading it.
    let mut m = base();
    let mut names = Names::of(&m);
    let g = m.main();
    let x = m.graph(g).inputs()[0].value;
    m.add_output(g, x, None);
    let abs = Op::new("Abs")
        .input(x)
        .add_value(&mut m, &mut names, g)
        .unwrap();
    assert_eq!(
        edit::reroute(&mut m, &mut names, x, abs).unwrap(),
        OutputKept::Unchanged
    );
    assert_eq!(m.graph(g).outputs()[3].value, x);
    assert_eq!(m.value(x).def(), ValueDef::Input);
}

#[test]
fn checkpoints_close_innermost_first() {
    let mut m = base();
    let outer = m.checkpoint();
    let inner = m.checkpoint();
    assert!(m.commit(outer).is_err());
    m.rollback(inner).unwrap();
}

#[test]
fn a_header_snapshot_dropped_by_an_inner_rollback_is_taken_again() {
    let mut m = base();
    let before = format!("{m:?}");
    let node = m.graph(m.main()).nodes()[0];
    let outer = m.checkpoint();
    let inner = m.checkpoint();
    attr::set(&mut m, node, attr::int("a", 1));
    m.rollback(inner).unwrap();
    // More records, so the dropped snapshot's index is in range again.
    for i in 0..8 {
        let g = m.main();
        let x = m.graph(g).inputs()[0].value;
        let mut names = Names::of(&m);
        Op::new("Abs")
            .name(format!("abs{i}"))
            .input(x)
            .add(&mut m, &mut names, g);
    }
    attr::set(&mut m, node, attr::int("b", 2));
    m.rollback(outer).unwrap();
    assert_eq!(format!("{m:?}"), before);
}
