//! Shapes over symbolic dims, numpy broadcasting, and the dim arithmetic shape inference needs.
//!
//! Arithmetic on dims is exact or gives up: a sum or product the analysis cannot express as a
//! single dim (`N * S`) is a fresh symbol, i.e. "some dimension"; overflow is treated the same
//! way (such a model cannot run, and the analysis must not panic on it).

use smallvec::SmallVec;

use super::symbols::{Dim, SymId, Symbols};

/// A shape of known rank.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct Shape(pub SmallVec<[Dim; 4]>);

impl Shape {
    pub fn new(dims: impl IntoIterator<Item = Dim>) -> Self {
        Shape(dims.into_iter().collect())
    }

    /// The shape of a scalar (rank 0).
    pub fn scalar() -> Self {
        Shape(SmallVec::new())
    }

    /// A shape whose every dim is known.
    pub fn known(dims: &[i64]) -> Self {
        Shape(dims.iter().map(|&d| Dim::Known(d)).collect())
    }

    pub fn rank(&self) -> usize {
        self.0.len()
    }

    pub fn dims(&self) -> &[Dim] {
        &self.0
    }

    /// The dim at `i`, if in range.
    pub fn get(&self, i: usize) -> Option<Dim> {
        self.0.get(i).copied()
    }

    /// Every dim in canonical form.
    pub fn resolved(&self, syms: &mut Symbols) -> Shape {
        Shape(self.0.iter().map(|&d| syms.resolve(d)).collect())
    }

    /// All dims' values, if every one is known (or bound).
    pub fn known_dims(&self, syms: &mut Symbols) -> Option<Vec<i64>> {
        self.0.iter().map(|&d| syms.value_of(d)).collect()
    }

    /// Number of elements, if every dim is known and the product fits in `i64`.
    pub fn known_numel(&self, syms: &mut Symbols) -> Option<i64> {
        self.0.iter().try_fold(1i64, |acc, &d| {
            let v = syms.value_of(d)?;
            if v < 0 {
                return None;
            }
            acc.checked_mul(v)
        })
    }

    /// Number of elements as a dim (a fresh symbol when it is not a single known value or symbol).
    pub fn numel(&self, syms: &mut Symbols) -> Dim {
        product(syms, &self.0)
    }
}

impl FromIterator<Dim> for Shape {
    fn from_iter<I: IntoIterator<Item = Dim>>(iter: I) -> Self {
        Shape(iter.into_iter().collect())
    }
}

/// `axis` in `[-rank, rank)` as an index; `None` when out of range.
pub fn normalize_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = i64::try_from(rank).ok()?;
    let a = if axis < 0 { axis.checked_add(r)? } else { axis };
    if (0..r).contains(&a) {
        usize::try_from(a).ok()
    } else {
        None
    }
}

/// Axes normalized against `rank`; `None` when one is out of range or repeated.
pub fn normalize_axes(axes: &[i64], rank: usize) -> Option<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let n = normalize_axis(a, rank)?;
        if out.contains(&n) {
            return None;
        }
        out.push(n);
    }
    Some(out)
}

/// The broadcast of two dims, or `None` when they cannot broadcast (two known sizes, neither 1).
///
/// `1` broadcasts to anything; a known `k != 1` against a symbol gives `k` (the symbol must be 1
/// or `k`); two different symbols give a fresh symbol, because either may be 1.
pub fn broadcast_dim(syms: &mut Symbols, a: Dim, b: Dim) -> Option<Dim> {
    Some(match (syms.resolve(a), syms.resolve(b)) {
        (Dim::Known(1), x) | (x, Dim::Known(1)) => x,
        (Dim::Known(x), Dim::Known(y)) => {
            if x != y {
                return None;
            }
            Dim::Known(x)
        }
        (Dim::Known(k), Dim::Sym(_)) | (Dim::Sym(_), Dim::Known(k)) => Dim::Known(k),
        (Dim::Sym(x), Dim::Sym(y)) => {
            if x == y {
                Dim::Sym(x)
            } else {
                syms.fresh_dim()
            }
        }
    })
}

/// Multidirectional (numpy) broadcasting of any number of shapes; `None` if they are incompatible.
pub fn broadcast(syms: &mut Symbols, shapes: &[&Shape]) -> Option<Shape> {
    let rank = shapes.iter().map(|s| s.rank()).max().unwrap_or(0);
    let mut out: SmallVec<[Dim; 4]> = SmallVec::from_elem(Dim::Known(1), rank);
    for s in shapes {
        let offset = rank - s.rank();
        for (i, &d) in s.0.iter().enumerate() {
            let slot = &mut out[offset + i];
            *slot = broadcast_dim(syms, *slot, d)?;
        }
    }
    Some(Shape(out))
}

/// `a * b` as a dim.
pub fn mul_dim(syms: &mut Symbols, a: Dim, b: Dim) -> Dim {
    product(syms, &[a, b])
}

/// `a + b` as a dim.
pub fn add_dim(syms: &mut Symbols, a: Dim, b: Dim) -> Dim {
    sum(syms, &[a, b])
}

/// The product of `dims`: known if all are, the one symbol if the rest are 1, 0 if one is 0;
/// otherwise a fresh symbol.
pub fn product(syms: &mut Symbols, dims: &[Dim]) -> Dim {
    product_exact(syms, dims).unwrap_or_else(|| syms.fresh_dim())
}

/// The product of `dims` if it is a single value or symbol, else `None`.
pub fn product_exact(syms: &mut Symbols, dims: &[Dim]) -> Option<Dim> {
    Monomial::of(syms, dims).exact()
}

/// The sum of `dims`: known if all are, the one symbol if the rest are 0; otherwise a fresh
/// symbol.
pub fn sum(syms: &mut Symbols, dims: &[Dim]) -> Dim {
    sum_exact(syms, dims).unwrap_or_else(|| syms.fresh_dim())
}

/// The sum of `dims` if it is a single value or symbol, else `None`.
pub fn sum_exact(syms: &mut Symbols, dims: &[Dim]) -> Option<Dim> {
    let mut total = 0i64;
    let mut sym = None;
    for &d in dims {
        match syms.resolve(d) {
            Dim::Known(v) => total = total.checked_add(v)?,
            Dim::Sym(s) => {
                if sym.replace(s).is_some() {
                    return None;
                }
            }
        }
    }
    match sym {
        None => Some(Dim::Known(total)),
        Some(s) if total == 0 => Some(Dim::Sym(s)),
        Some(_) => None,
    }
}

/// A product of dims: a known coefficient times symbols (canonical roots, sorted, repeated for
/// powers). It lets `Reshape` infer `-1` over symbolic shapes by cancelling common factors:
/// `[N, S, 12, 64] -> [0, 0, -1]` gives `768` without knowing `N` or `S`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Monomial {
    /// `None` when the known part overflowed `i64`.
    pub coefficient: Option<i64>,
    pub symbols: SmallVec<[SymId; 4]>,
}

impl Monomial {
    pub fn of(syms: &mut Symbols, dims: &[Dim]) -> Self {
        let mut coefficient = Some(1i64);
        let mut symbols = SmallVec::new();
        for &d in dims {
            match syms.resolve(d) {
                Dim::Known(v) => coefficient = coefficient.and_then(|c| c.checked_mul(v)),
                Dim::Sym(s) => symbols.push(s),
            }
        }
        symbols.sort_unstable();
        Monomial {
            coefficient,
            symbols,
        }
    }

    /// The product as one dim, if it is one (a value, or a single symbol).
    pub fn exact(&self) -> Option<Dim> {
        match (self.coefficient, self.symbols.as_slice()) {
            (Some(0), _) => Some(Dim::Known(0)),
            (Some(c), []) => Some(Dim::Known(c)),
            (Some(1), [s]) => Some(Dim::Sym(*s)),
            _ => None,
        }
    }

    /// The product as one dim, a fresh symbol if it is not one.
    pub fn to_dim(&self, syms: &mut Symbols) -> Dim {
        self.exact().unwrap_or_else(|| syms.fresh_dim())
    }

    /// `self / divisor`, if it is exact in the symbols (every symbol of the divisor cancels) and
    /// in the coefficient. Returns `None` when the quotient is not a single expressible product or
    /// the divisor could be zero.
    pub fn checked_div(&self, divisor: &Monomial) -> Option<Monomial> {
        let (c, d) = (self.coefficient?, divisor.coefficient?);
        if d == 0 {
            return None;
        }
        let mut rest: SmallVec<[SymId; 4]> = self.symbols.clone();
        for s in &divisor.symbols {
            let i = rest.iter().position(|r| r == s)?;
            rest.remove(i);
        }
        if c % d != 0 {
            return None;
        }
        Some(Monomial {
            coefficient: Some(c / d),
            symbols: rest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &mut Symbols, n: &str) -> Dim {
        Dim::Sym(s.named(n))
    }

    #[test]
    fn broadcast_rules() {
        let mut s = Symbols::new();
        let n = sym(&mut s, "N");
        let m = sym(&mut s, "M");
        let a = Shape::new([n, Dim::Known(1), Dim::Known(3)]);
        let b = Shape::new([Dim::Known(4), Dim::Known(3)]);
        let out = broadcast(&mut s, &[&a, &b]).unwrap();
        assert_eq!(out, Shape::new([n, Dim::Known(4), Dim::Known(3)]));

        let c = Shape::new([n]);
        let d = Shape::new([Dim::Known(5)]);
        assert_eq!(broadcast(&mut s, &[&c, &d]).unwrap(), Shape::known(&[5]));
        assert_eq!(broadcast(&mut s, &[&c, &c]).unwrap(), c);
        let e = Shape::new([m]);
        let out = broadcast(&mut s, &[&c, &e]).unwrap();
        assert!(!s.same(out.0[0], n) && !s.same(out.0[0], m));
        assert!(broadcast(&mut s, &[&Shape::known(&[2]), &Shape::known(&[3])]).is_none());
        assert_eq!(
            broadcast(&mut s, &[&Shape::known(&[0]), &Shape::known(&[1])]).unwrap(),
            Shape::known(&[0])
        );
    }

    #[test]
    fn arithmetic() {
        let mut s = Symbols::new();
        let n = sym(&mut s, "N");
        assert_eq!(product(&mut s, &[Dim::Known(1), n, Dim::Known(1)]), n);
        assert_eq!(product(&mut s, &[Dim::Known(0), n]), Dim::Known(0));
        assert_eq!(
            product(&mut s, &[Dim::Known(3), Dim::Known(4)]),
            Dim::Known(12)
        );
        assert!(matches!(product(&mut s, &[Dim::Known(2), n]), Dim::Sym(x) if Dim::Sym(x) != n));
        assert!(matches!(
            product(&mut s, &[Dim::Known(i64::MAX), Dim::Known(2)]),
            Dim::Sym(_)
        ));
        assert_eq!(sum(&mut s, &[Dim::Known(0), n]), n);
        assert_eq!(sum(&mut s, &[Dim::Known(2), Dim::Known(5)]), Dim::Known(7));
        assert!(matches!(
            sum(&mut s, &[Dim::Known(i64::MAX), Dim::Known(1)]),
            Dim::Sym(_)
        ));
    }

    #[test]
    fn monomial_division_cancels_symbols() {
        let mut s = Symbols::new();
        let n = sym(&mut s, "N");
        let t = sym(&mut s, "S");
        let total = Monomial::of(&mut s, &[n, t, Dim::Known(12), Dim::Known(64)]);
        let known = Monomial::of(&mut s, &[n, t]);
        let q = total.checked_div(&known).unwrap();
        assert_eq!(q.to_dim(&mut s), Dim::Known(768));
        let q = total
            .checked_div(&Monomial::of(&mut s, &[Dim::Known(768)]))
            .unwrap();
        assert!(matches!(q.to_dim(&mut s), Dim::Sym(_)));
        assert!(
            total
                .checked_div(&Monomial::of(&mut s, &[Dim::Known(5)]))
                .is_none()
        );
        assert!(
            total
                .checked_div(&Monomial::of(&mut s, &[Dim::Known(0)]))
                .is_none()
        );
    }

    #[test]
    fn axes() {
        assert_eq!(normalize_axis(-1, 3), Some(2));
        assert_eq!(normalize_axis(3, 3), None);
        assert_eq!(normalize_axis(i64::MIN, 3), None);
        assert_eq!(normalize_axes(&[0, -3], 3), None);
        assert_eq!(normalize_axes(&[0, -1], 3), Some(vec![0, 2]));
    }
}
