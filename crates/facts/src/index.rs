//! Index maps of data-movement ops over small tensors of known dims.
//!
//! Each function returns, for every element of the output in row-major order, the flat index
//! of the input element it copies. One map serves both constants ([`ConstData`]) and symbolic
//! elements ([`DimValues`]), so `Gather`, `Slice`, `Concat`, `Transpose`, `Expand` and `Tile`
//! are written once. Each takes `max`, the largest output (in elements) the caller accepts, and
//! checks it before allocating anything: dims come from the model.
//!
//! [`ConstData`]: super::constant::ConstData
//! [`DimValues`]: super::value::DimValues

use super::constant::element_count;

/// Row-major strides of `dims` (in elements), or `None` on overflow or a negative dim.
fn strides(dims: &[i64]) -> Option<Vec<usize>> {
    let mut out = vec![0usize; dims.len()];
    let mut s = 1usize;
    for (i, &d) in dims.iter().enumerate().rev() {
        out[i] = s;
        s = s.checked_mul(usize::try_from(d).ok()?)?;
    }
    Some(out)
}

/// Calls `f` with every multi-index of `dims` in row-major order (nothing if a dim is 0).
fn for_each_index(dims: &[usize], mut f: impl FnMut(&[usize])) {
    if dims.contains(&0) {
        return;
    }
    let mut idx = vec![0usize; dims.len()];
    loop {
        f(&idx);
        // Odometer increment; done when every digit wrapped.
        let mut k = dims.len();
        loop {
            if k == 0 {
                return;
            }
            k -= 1;
            idx[k] += 1;
            if idx[k] < dims[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

fn to_usize(dims: &[i64]) -> Option<Vec<usize>> {
    dims.iter().map(|&d| usize::try_from(d).ok()).collect()
}

/// The numpy broadcast of known shapes; `None` if incompatible.
pub fn broadcast_dims(shapes: &[&[i64]]) -> Option<Vec<i64>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1i64; rank];
    for s in shapes {
        let offset = rank - s.len();
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[offset + i];
            if d < 0 {
                return None;
            }
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return None;
            }
        }
    }
    Some(out)
}

/// `dims`' element count, if it is at most `max`.
fn bounded(dims: &[i64], max: usize) -> Option<usize> {
    element_count(dims).filter(|&n| n <= max)
}

/// Input index for each element of `out`, where `input` broadcasts to `out`.
pub fn broadcast(input: &[i64], out: &[i64], max: usize) -> Option<Vec<usize>> {
    let n = bounded(out, max)?;
    let offset = out.len().checked_sub(input.len())?;
    let in_strides = strides(input)?;
    let mut eff = vec![0usize; out.len()];
    for (i, &d) in input.iter().enumerate() {
        let o = *out.get(offset + i)?;
        if d == o {
            eff[offset + i] = in_strides[i];
        } else if d != 1 {
            return None;
        }
    }
    let out_u = to_usize(out)?;
    let mut map = Vec::with_capacity(n);
    for_each_index(&out_u, |idx| {
        map.push(idx.iter().zip(&eff).map(|(i, s)| i * s).sum());
    });
    Some(map)
}

/// `Transpose` with a valid permutation `perm` of `0..dims.len()`; returns (output dims, map).
pub fn transpose(dims: &[i64], perm: &[usize], max: usize) -> Option<(Vec<i64>, Vec<usize>)> {
    let in_strides = strides(dims)?;
    let out_dims: Vec<i64> = perm
        .iter()
        .map(|&p| dims.get(p).copied())
        .collect::<Option<_>>()?;
    let eff: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let mut map = Vec::with_capacity(bounded(&out_dims, max)?);
    for_each_index(&to_usize(&out_dims)?, |idx| {
        map.push(idx.iter().zip(&eff).map(|(i, s)| i * s).sum());
    });
    Some((out_dims, map))
}

/// `Gather` along `axis` with `indices` already normalized into `0..dims[axis]`.
pub fn gather(
    dims: &[i64],
    axis: usize,
    indices: &[usize],
    indices_dims: &[i64],
    max: usize,
) -> Option<(Vec<i64>, Vec<usize>)> {
    let axis_len = usize::try_from(*dims.get(axis)?).ok()?;
    if indices.iter().any(|&i| i >= axis_len) || element_count(indices_dims)? != indices.len() {
        return None;
    }
    let outer = element_count(&dims[..axis])?;
    let inner = element_count(&dims[axis + 1..])?;
    let mut out_dims = dims[..axis].to_vec();
    out_dims.extend_from_slice(indices_dims);
    out_dims.extend_from_slice(&dims[axis + 1..]);
    let n = bounded(&out_dims, max)?;
    // An empty output needs no map, and `outer` alone may be huge (dims of 0 elsewhere).
    if n == 0 {
        return Some((out_dims, Vec::new()));
    }
    let mut map = Vec::with_capacity(n);
    for o in 0..outer {
        for &i in indices {
            let base = (o * axis_len + i) * inner;
            map.extend(base..base + inner);
        }
    }
    Some((out_dims, map))
}

/// One axis of a `Slice`, already clamped: `len` elements from `start` by `step`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceAxis {
    pub start: i64,
    pub step: i64,
    pub len: i64,
}

/// ONNX `Slice` clamping of (start, end, step) over a dim of size `dim` (step != 0).
pub fn slice_axis(dim: i64, start: i64, end: i64, step: i64) -> Option<SliceAxis> {
    if step == 0 || dim < 0 {
        return None;
    }
    if dim == 0 {
        return Some(SliceAxis {
            start: 0,
            step,
            len: 0,
        });
    }
    let fix = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
    let (start, end) = (fix(start), fix(end));
    let (start, end) = if step > 0 {
        (start.clamp(0, dim), end.clamp(0, dim))
    } else {
        (start.clamp(0, dim - 1), end.clamp(-1, dim - 1))
    };
    // len = max(0, ceil((end - start) / step)), in i128 so no step overflows it.
    let (span, st) = (i128::from(end) - i128::from(start), i128::from(step));
    let (q, r) = (span / st, span % st);
    let len = if r != 0 && ((r > 0) == (st > 0)) {
        q + 1
    } else {
        q
    };
    Some(SliceAxis {
        start,
        step,
        len: i64::try_from(len.max(0)).ok()?,
    })
}

/// `Slice` of known `dims` with one [`SliceAxis`] per dim (untouched dims: start 0, step 1,
/// full length).
pub fn slice(dims: &[i64], axes: &[SliceAxis], max: usize) -> Option<(Vec<i64>, Vec<usize>)> {
    if axes.len() != dims.len() {
        return None;
    }
    let in_strides = strides(dims)?;
    let out_dims: Vec<i64> = axes.iter().map(|a| a.len).collect();
    let mut map = Vec::with_capacity(bounded(&out_dims, max)?);
    let mut ok = true;
    for_each_index(&to_usize(&out_dims)?, |idx| {
        let mut flat = 0i128;
        for ((&i, a), &s) in idx.iter().zip(axes).zip(&in_strides) {
            let pos = i128::from(a.start) + i as i128 * i128::from(a.step);
            flat += pos * s as i128;
        }
        match usize::try_from(flat) {
            Ok(f) => map.push(f),
            Err(_) => ok = false,
        }
    });
    ok.then_some((out_dims, map))
}

/// `Concat` along `axis` of parts with `dims` (equal except on `axis`); the map indexes the
/// parts' elements laid end to end.
pub fn concat(parts: &[&[i64]], axis: usize, max: usize) -> Option<(Vec<i64>, Vec<usize>)> {
    let first = parts.first()?;
    let rank = first.len();
    if axis >= rank {
        return None;
    }
    let mut out_dims = first.to_vec();
    out_dims[axis] = 0;
    for p in parts {
        if p.len() != rank
            || p.iter()
                .zip(first.iter())
                .enumerate()
                .any(|(i, (a, b))| i != axis && a != b)
        {
            return None;
        }
        out_dims[axis] = out_dims[axis].checked_add(p[axis])?;
    }
    let outer = element_count(&first[..axis])?;
    let inner = element_count(&first[axis + 1..])?;
    let mut offsets = Vec::with_capacity(parts.len());
    let mut total = 0usize;
    for p in parts {
        offsets.push(total);
        total = total.checked_add(element_count(p)?)?;
    }
    let n = bounded(&out_dims, max)?;
    if n == 0 {
        return Some((out_dims, Vec::new()));
    }
    let mut map = Vec::with_capacity(n);
    for o in 0..outer {
        for (p, &off) in parts.iter().zip(&offsets) {
            let block = usize::try_from(p[axis]).ok()?.checked_mul(inner)?;
            let base = off + o * block;
            map.extend(base..base + block);
        }
    }
    Some((out_dims, map))
}

/// `Tile` of known `dims` by `repeats` (same length, each `>= 0`).
pub fn tile(dims: &[i64], repeats: &[i64], max: usize) -> Option<(Vec<i64>, Vec<usize>)> {
    if dims.len() != repeats.len() || repeats.iter().any(|&r| r < 0) {
        return None;
    }
    let out_dims: Vec<i64> = dims
        .iter()
        .zip(repeats)
        .map(|(d, r)| d.checked_mul(*r))
        .collect::<Option<_>>()?;
    let in_strides = strides(dims)?;
    let dims_u = to_usize(dims)?;
    let mut map = Vec::with_capacity(bounded(&out_dims, max)?);
    for_each_index(&to_usize(&out_dims)?, |idx| {
        map.push(
            idx.iter()
                .zip(&dims_u)
                .zip(&in_strides)
                .map(|((i, d), s)| (i % d) * s)
                .sum(),
        );
    });
    Some((out_dims, map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps() {
        assert_eq!(
            broadcast(&[3], &[2, 3], 64).unwrap(),
            vec![0, 1, 2, 0, 1, 2]
        );
        assert_eq!(
            broadcast(&[2, 1], &[2, 3], 64).unwrap(),
            vec![0, 0, 0, 1, 1, 1]
        );
        assert!(broadcast(&[2], &[3], 64).is_none());
        assert_eq!(broadcast_dims(&[&[2, 1], &[3]]).unwrap(), vec![2, 3]);
        assert_eq!(
            transpose(&[2, 3], &[1, 0], 64).unwrap(),
            (vec![3, 2], vec![0, 3, 1, 4, 2, 5])
        );
        assert_eq!(
            gather(&[3], 0, &[2, 0], &[2], 64).unwrap(),
            (vec![2], vec![2, 0])
        );
        assert_eq!(
            gather(&[2, 2], 1, &[1], &[], 64).unwrap(),
            (vec![2], vec![1, 3])
        );
        assert!(gather(&[3], 0, &[3], &[1], 64).is_none());
        assert_eq!(
            concat(&[&[1, 2], &[1, 1]], 1, 64).unwrap(),
            (vec![1, 3], vec![0, 1, 2])
        );
        assert_eq!(
            concat(&[&[2, 1], &[2, 1]], 1, 64).unwrap(),
            (vec![2, 2], vec![0, 2, 1, 3])
        );
        assert_eq!(tile(&[2], &[2], 64).unwrap(), (vec![4], vec![0, 1, 0, 1]));
        assert!(
            broadcast(&[1], &[1 << 40], 64).is_none(),
            "over the bound: nothing allocated"
        );
        assert!(tile(&[2], &[i64::MAX], 64).is_none());
    }

    #[test]
    fn slice_clamping() {
        let a = slice_axis(5, 1, i64::MAX, 1).unwrap();
        assert_eq!((a.start, a.len), (1, 4));
        let a = slice_axis(5, -1, i64::MIN, -1).unwrap();
        assert_eq!((a.start, a.len), (4, 5));
        let a = slice_axis(5, 0, 5, 2).unwrap();
        assert_eq!(a.len, 3);
        let a = slice_axis(5, 4, 1, 1).unwrap();
        assert_eq!(a.len, 0);
        let a = slice_axis(5, i64::MIN, i64::MAX, i64::MIN).unwrap();
        assert_eq!(a.len, 0);
        assert!(slice_axis(5, 0, 1, 0).is_none());
        let (d, m) = slice(&[5], &[slice_axis(5, -1, i64::MIN, -2).unwrap()], 64).unwrap();
        assert_eq!((d, m), (vec![3], vec![4, 2, 0]));
    }
}
