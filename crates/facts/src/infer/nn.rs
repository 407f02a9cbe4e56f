//! Neural-network ops: convolutions and pooling (onnx's `convPoolShapeInference`),
//! normalizations, losses, recurrent layers, `Attention`.

use onnx_rewrite_proto::tensor_proto::DataType;

use super::Ctx;
use crate::shape::{self, Shape};
use crate::symbols::Dim;

/// The spatial output sizes of a convolution or pooling window over `x`'s spatial dims, as
/// onnx computes them: explicit `pads`, or `auto_pad` pads, then
/// `floor((d + pads - ((k - 1) * dilation + 1)) / stride) + 1` (`ceil` with `ceil_mode`, minus
/// a window that would start in the end padding).
fn window_dims(cx: &mut Ctx<'_, '_>, spatial: &[Dim], kernel: &[i64]) -> Option<Vec<Dim>> {
    let n = spatial.len();
    let list = |cx: &Ctx<'_, '_>, name: &str, default: i64, len: usize| -> Option<Vec<i64>> {
        match cx.attrs.ints(name).ok()? {
            Some(v) if v.len() == len => Some(v.to_vec()),
            Some(_) => None,
            None => Some(vec![default; len]),
        }
    };
    if kernel.len() != n || kernel.iter().any(|&k| k <= 0) {
        return None;
    }
    let strides = list(cx, "strides", 1, n)?;
    let dilations = list(cx, "dilations", 1, n)?;
    if strides.iter().chain(&dilations).any(|&v| v <= 0) {
        return None;
    }
    let explicit = cx.attrs.ints("pads").ok()?.map(<[i64]>::to_vec);
    let auto_pad = cx.attrs.string("auto_pad").ok()?.unwrap_or(b"NOTSET");
    let ceil_mode = cx.attrs.int_or("ceil_mode", 0)? != 0;
    let effective: Vec<i64> = kernel
        .iter()
        .zip(&dilations)
        .map(|(&k, &d)| (k - 1).checked_mul(d)?.checked_add(1))
        .collect::<Option<_>>()?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let Dim::Known(d) = cx.syms.resolve(spatial[i]) else {
            out.push(cx.fresh());
            continue;
        };
        let (s, ek) = (strides[i], effective[i]);
        let (pb, pe) = match &explicit {
            Some(p) if p.len() == 2 * n => (p[i], p[i + n]),
            Some(_) => return None,
            None if auto_pad == b"SAME_UPPER" || auto_pad == b"SAME_LOWER" => {
                let residual = if s > 1 { d % s } else { 0 };
                let total = (if residual == 0 { ek - s } else { ek - residual }).max(0);
                let (small, big) = (total >> 1, total - (total >> 1));
                if auto_pad == b"SAME_UPPER" {
                    (small, big)
                } else {
                    (big, small)
                }
            }
            None => (0, 0),
        };
        let padded = d.checked_add(pb)?.checked_add(pe)?;
        let mut numerator = padded.checked_sub(ek)?;
        if ceil_mode {
            numerator = numerator.checked_add(s - 1)?;
        }
        if numerator < 0 {
            return None;
        }
        let mut size = numerator / s + 1;
        if ceil_mode && (size - 1).checked_mul(s)? >= d.checked_add(pb)? {
            size -= 1;
        }
        out.push(Dim::Known(size));
    }
    Some(out)
}

/// `Conv(X, W)`, `ConvInteger` (int32), `QLinearConv(x, .., .., w, .., .., .., y_zp)`:
/// `[N, M, spatial...]`.
pub(super) fn conv(cx: &mut Ctx<'_, '_>) {
    let (w_at, dtype) = match cx.op.op_type {
        "ConvInteger" => (1, Some(DataType::Int32)),
        "QLinearConv" => (3, cx.dtype(7)),
        _ => (1, cx.dtype(0)),
    };
    cx.set_dtype(0, dtype);
    let (Some(x), Some(w)) = (cx.shape(0), cx.shape(w_at)) else {
        return;
    };
    if x.rank() < 3 || w.rank() != x.rank() {
        return;
    }
    let kernel: Option<Vec<i64>> = match cx.attrs.ints("kernel_shape") {
        Ok(Some(k)) => Some(k.to_vec()),
        Ok(None) => w.0[2..].iter().map(|&d| cx.syms.value_of(d)).collect(),
        Err(_) => None,
    };
    let spatial = match kernel {
        Some(k) => window_dims(cx, &x.0[2..], &k),
        None => None,
    };
    let spatial = spatial.unwrap_or_else(|| (2..x.rank()).map(|_| cx.syms.fresh_dim()).collect());
    let mut out = Shape::new([x.0[0], w.0[0]]);
    out.0.extend(spatial);
    cx.set_shape(0, Some(out));
}

/// `ConvTranspose(X, W)`: `[N, W[1] * group, spatial...]`, spatial from `output_shape` or
/// `stride * (d - 1) + output_padding + (k - 1) * dilation + 1 - pads`.
pub(super) fn conv_transpose(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    let (Some(x), Some(w), Some(group)) = (cx.shape(0), cx.shape(1), cx.attrs.int_or("group", 1))
    else {
        return;
    };
    if x.rank() < 3 || w.rank() != x.rank() {
        return;
    }
    let n = x.rank() - 2;
    let channels = shape::mul_dim(cx.syms, w.0[1], Dim::Known(group));
    let spatial = conv_transpose_spatial(cx, &x.0[2..], &w.0[2..])
        .unwrap_or_else(|| (0..n).map(|_| cx.syms.fresh_dim()).collect());
    let mut out = Shape::new([x.0[0], channels]);
    out.0.extend(spatial);
    cx.set_shape(0, Some(out));
}

fn conv_transpose_spatial(
    cx: &mut Ctx<'_, '_>,
    spatial: &[Dim],
    kdims: &[Dim],
) -> Option<Vec<Dim>> {
    let n = spatial.len();
    if let Some(os) = cx.attrs.ints("output_shape").ok()? {
        // The spatial sizes (a longer list also names N and C).
        let tail = os.get(os.len().checked_sub(n)?..)?;
        return Some(tail.iter().map(|&v| Dim::Known(v)).collect());
    }
    let list = |cx: &Ctx<'_, '_>, name: &str, default: i64, len: usize| -> Option<Vec<i64>> {
        match cx.attrs.ints(name).ok()? {
            Some(v) if v.len() == len => Some(v.to_vec()),
            Some(_) => None,
            None => Some(vec![default; len]),
        }
    };
    let kernel: Vec<i64> = match cx.attrs.ints("kernel_shape").ok()? {
        Some(k) => k.to_vec(),
        None => kdims
            .iter()
            .map(|&d| cx.syms.value_of(d))
            .collect::<Option<_>>()?,
    };
    let strides = list(cx, "strides", 1, n)?;
    let dilations = list(cx, "dilations", 1, n)?;
    let out_pad = list(cx, "output_padding", 0, n)?;
    let pads = list(cx, "pads", 0, 2 * n)?;
    let auto_pad = cx.attrs.string("auto_pad").ok()?.unwrap_or(b"NOTSET");
    let same = auto_pad == b"SAME_UPPER" || auto_pad == b"SAME_LOWER";
    if kernel.len() != n {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let Dim::Known(d) = cx.syms.resolve(spatial[i]) else {
            out.push(cx.fresh());
            continue;
        };
        let v = if same {
            d.checked_mul(strides[i])?
        } else {
            let ek = (kernel[i] - 1).checked_mul(dilations[i])?.checked_add(1)?;
            strides[i]
                .checked_mul(d - 1)?
                .checked_add(out_pad[i])?
                .checked_add(ek)?
                .checked_sub(pads[i])?
                .checked_sub(pads[i + n])?
        };
        out.push(if v >= 0 { Dim::Known(v) } else { cx.fresh() });
    }
    Some(out)
}

/// `MaxPool` (with int64 `Indices`), `AveragePool`, `LpPool`.
pub(super) fn pool(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    cx.set_dtype(1, Some(DataType::Int64));
    let Some(x) = cx.shape(0) else {
        return;
    };
    if x.rank() < 3 {
        return;
    }
    let spatial = match cx.attrs.ints("kernel_shape") {
        Ok(Some(k)) => {
            let k = k.to_vec();
            window_dims(cx, &x.0[2..], &k)
        }
        _ => None,
    };
    let spatial = spatial.unwrap_or_else(|| (2..x.rank()).map(|_| cx.syms.fresh_dim()).collect());
    let mut out = Shape::new([x.0[0], x.0[1]]);
    out.0.extend(spatial);
    cx.set_shape(0, Some(out.clone()));
    cx.set_shape(1, Some(out));
}

/// `Global*Pool`: `[N, C, 1, ...]`.
pub(super) fn global_pool(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    let out = cx.shape(0).filter(|s| s.rank() >= 2).map(|s| {
        Shape::new(
            s.0.iter()
                .enumerate()
                .map(|(i, &d)| if i < 2 { d } else { Dim::Known(1) }),
        )
    });
    cx.set_shape(0, out);
}

/// `LayerNormalization`: Y like X; Mean and InvStdDev of `stash_type` (float by default),
/// shaped like X with the normalized axes set to 1.
pub(super) fn layer_norm(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    cx.set_shape(0, cx.shape(0));
    let stash = cx
        .attrs
        .int_or("stash_type", DataType::Float as i64)
        .and_then(|t| i32::try_from(t).ok())
        .and_then(|t| DataType::try_from(t).ok());
    cx.set_dtype(1, stash);
    cx.set_dtype(2, stash);
    let (Some(s), Some(axis)) = (cx.shape(0), cx.attrs.int_or("axis", -1)) else {
        return;
    };
    let rank = s.rank() as i64;
    let axis = if axis < 0 {
        axis.saturating_add(rank)
    } else {
        axis
    };
    if !(0..=rank).contains(&axis) {
        return;
    }
    let stats = Shape::new(
        s.0.iter()
            .enumerate()
            .map(|(i, &d)| if (i as i64) < axis { d } else { Dim::Known(1) }),
    );
    cx.set_shape(1, Some(stats.clone()));
    cx.set_shape(2, Some(stats));
}

/// `RMSNormalization`: Y like X.
pub(super) fn rms_norm(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    cx.set_shape(0, cx.shape(0));
}

/// `BatchNormalization`: Y like X; the running / saved statistics like the `mean` input.
pub(super) fn batch_norm(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    cx.set_shape(0, cx.shape(0));
    for i in 1..cx.op.outputs {
        cx.set_dtype(i, cx.dtype(3));
        cx.set_shape(i, cx.shape(3));
    }
}

/// `NegativeLogLikelihoodLoss`, `SoftmaxCrossEntropyLoss`: a scalar unless `reduction` is
/// `none` (then the target's shape); the latter's `log_prob` is like the scores.
pub(super) fn loss(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    match cx.attrs.string("reduction") {
        Ok(Some(b"none")) => cx.set_shape(0, cx.shape(1)),
        Ok(_) => cx.set_shape(0, Some(Shape::scalar())),
        Err(_) => {}
    }
    if cx.op.op_type == "SoftmaxCrossEntropyLoss" {
        cx.set_dtype(1, cx.dtype(0));
        cx.set_shape(1, cx.shape(0));
    }
}

/// `RNN`, `GRU`, `LSTM`: Y `[seq, dirs, batch, hidden]`, Y_h (and Y_c) `[dirs, batch, hidden]`;
/// batch-major with `layout = 1` (opset 14).
pub(super) fn rnn(cx: &mut Ctx<'_, '_>) {
    for i in 0..cx.op.outputs {
        cx.set_dtype(i, cx.dtype(0));
    }
    let (Some(x), Some(hidden), Some(layout)) = (
        cx.shape(0),
        cx.attrs.int("hidden_size").ok().flatten(),
        cx.attrs.int_or("layout", 0),
    ) else {
        return;
    };
    let dirs = match cx.attrs.string("direction") {
        Ok(Some(b"bidirectional")) => 2,
        Ok(_) => 1,
        Err(_) => return,
    };
    let [a, b, _] = x.0.as_slice() else {
        return;
    };
    let (seq, batch) = if layout == 0 { (*a, *b) } else { (*b, *a) };
    let (h, d) = (Dim::Known(hidden), Dim::Known(dirs));
    let (y, yh) = if layout == 0 {
        (Shape::new([seq, d, batch, h]), Shape::new([d, batch, h]))
    } else {
        (Shape::new([batch, seq, d, h]), Shape::new([batch, d, h]))
    };
    cx.set_shape(0, Some(y));
    cx.set_shape(1, Some(yh.clone()));
    cx.set_shape(2, Some(yh));
}

/// `Attention` (opset 23): Y like Q with V's head size; present key/value extend the past
/// sequence by the new one.
pub(super) fn attention(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    cx.set_dtype(1, cx.dtype(4));
    cx.set_dtype(2, cx.dtype(5));
    cx.set_dtype(3, cx.dtype(0));
    let (Some(q), Some(v)) = (cx.shape(0), cx.shape(2)) else {
        return;
    };
    let kv_seq = match (q.rank(), v.rank()) {
        (4, 4) => {
            cx.set_shape(0, Some(Shape::new([q.0[0], q.0[1], q.0[2], v.0[3]])));
            v.0[2]
        }
        (3, 3) => {
            let heads = (
                cx.attrs.int("q_num_heads").ok().flatten(),
                cx.attrs.int("kv_num_heads").ok().flatten(),
            );
            let hidden = match (heads, cx.syms.resolve(v.0[2])) {
                ((Some(qh), Some(kvh)), Dim::Known(vh)) if qh > 0 && kvh > 0 && vh % kvh == 0 => {
                    (vh / kvh)
                        .checked_mul(qh)
                        .map_or_else(|| cx.fresh(), Dim::Known)
                }
                _ => cx.fresh(),
            };
            cx.set_shape(0, Some(Shape::new([q.0[0], q.0[1], hidden])));
            v.0[1]
        }
        _ => return,
    };
    for (out, past) in [(1, 4), (2, 5)] {
        if let Some(p) = cx.shape(past).filter(|p| p.rank() == 4) {
            let mut present = p.clone();
            present.0[2] = shape::add_dim(cx.syms, p.0[2], kv_seq);
            cx.set_shape(out, Some(present));
        }
    }
}
