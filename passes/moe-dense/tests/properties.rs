//! Property tests: random small MoE layers (experts, top-k, hidden and intermediate sizes,
//! form, expert MLP) through the pass; the rewrite must be static and compute what the
//! original computes (tract, 1 to 9 tokens). Baked traces: with the weight stacks in the graph
//! the rewrite must compute the complete layer; without them the pass must refuse.

mod common;

use common::*;
use onnx_rewrite_pass::PassError;
use onnx_rewrite_testkit::{bytes, count_ops};
use proptest::prelude::*;

#[derive(Clone, Copy, Debug)]
enum Form {
    ScatterNd(Mlp),
    ScatterElements,
    Batched(Mlp, bool),
    Grouped,
}

fn dims() -> impl Strategy<Value = Dims> {
    (2usize..=6, 2usize..=5, 2usize..=6).prop_flat_map(|(experts, hidden, inter)| {
        (1usize..=experts).prop_map(move |k| Dims {
            experts,
            k,
            hidden,
            inter,
        })
    })
}

fn mlp() -> impl Strategy<Value = Mlp> {
    prop_oneof![Just(Mlp::Silu), Just(Mlp::SwiGlu)]
}

fn form() -> impl Strategy<Value = Form> {
    prop_oneof![
        mlp().prop_map(Form::ScatterNd),
        Just(Form::ScatterElements),
        (mlp(), any::<bool>()).prop_map(|(m, s)| Form::Batched(m, s)),
        Just(Form::Grouped),
    ]
}

fn body(d: Dims, form: Form) -> String {
    let all: Vec<usize> = (0..d.experts).collect();
    match form {
        Form::ScatterNd(m) => scatter_nd_layer(d, m, Weights::PerExpert, &all),
        Form::ScatterElements => scatter_elements_layer(d, &all),
        Form::Batched(m, shared) => batched_layer(d, m, shared),
        Form::Grouped => grouped_layer(d),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_form_rewrites_to_the_same_outputs(d in dims(), form in form(), stack in any::<bool>()) {
        let before = parse(&body(d, form));
        let options: &[(&str, Option<&str>)] =
            if stack { &[("moe-stack-experts", None)] } else { &[] };
        let (after, report) = apply_with(&before, options);
        prop_assert!(report.declined.is_empty(), "{:?}", report.declined);
        prop_assert_eq!(&report.details["layers_rewritten"], &serde_json::json!(1));
        for op in ["NonZero", "ScatterND", "Range", "CumSum"] {
            prop_assert_eq!(count_ops(&after, op), 0, "{} left", op);
        }
        assert_matches(&before, &after, 1e-4, 1e-5);
    }

    #[test]
    fn baked_traces_are_rebuilt_or_refused(
        d in dims(),
        mlp in mlp(),
        keep in proptest::collection::vec(any::<bool>(), 6),
    ) {
        let present: Vec<usize> = (0..d.experts).filter(|e| keep[*e]).collect();
        prop_assume!(!present.is_empty() && present.len() < d.experts);
        let all: Vec<usize> = (0..d.experts).collect();
        let complete = parse(&scatter_nd_layer(d, mlp, Weights::PerExpert, &all));

        let stacked = parse(&scatter_nd_layer(d, mlp, Weights::Stacked, &present));
        let (after, report) = apply_with(&stacked, &[]);
        prop_assert!(report.declined.is_empty(), "{:?}", report.declined);
        assert_matches(&complete, &after, 1e-4, 1e-5);

        let per_expert = parse(&scatter_nd_layer(d, mlp, Weights::PerExpert, &present));
        let mut model = per_expert.clone();
        let refused = matches!(run_with(&mut model, &[]), Err(PassError::Refused(_)));
        prop_assert!(refused);
        prop_assert_eq!(bytes(&model), bytes(&per_expert));
    }
}
