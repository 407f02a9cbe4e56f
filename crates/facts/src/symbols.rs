//! Symbolic dimensions: a union-find over symbols, each class optionally bound to a value.
//!
//! A dimension the model does not state (`dim_param: "N"`, or nothing at all) is a symbol. Two
//! symbols become one class when the analysis learns they are equal (two e-classes merge, a
//! `Concat` input is unified with another), and a class becomes bound when it is equated with a
//! known size. Facts keep whatever [`Dim`] they were built with; they read it through
//! [`Symbols::resolve`], so a binding learnt later reaches every fact that holds the symbol without
//! rewriting any of them.
//!
//! A symbol always stands for a dimension, hence for a value `>= 0`: binding one to a negative
//! value is a [`Conflict`].

use std::collections::HashMap;
use std::fmt;

use super::Conflict;

/// A symbolic dimension, an index into a [`Symbols`] table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct SymId(u32);

impl SymId {
    /// The symbol's index in its table (stable, deterministic: symbols are numbered in creation order).
    pub fn index(self) -> u32 {
        self.0
    }
}

/// One dimension of a shape.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Dim {
    Known(i64),
    Sym(SymId),
}

impl Dim {
    /// The value, if this dim (as written, not resolved) is known.
    pub fn known(self) -> Option<i64> {
        match self {
            Dim::Known(v) => Some(v),
            Dim::Sym(_) => None,
        }
    }
}

/// The symbol table of one analysis: every [`Dim::Sym`] in a set of facts indexes into it.
#[derive(Clone, Debug, Default)]
pub struct Symbols {
    /// Union-find parent links; a root is its own parent.
    parent: Vec<u32>,
    /// The value a class is bound to, stored at its root.
    value: Vec<Option<i64>>,
    /// The first `dim_param` name a class received, stored at its root (for diagnostics and output).
    name: Vec<Option<Box<str>>>,
    by_name: HashMap<Box<str>, SymId>,
}

impl Symbols {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of symbols ever created (classes can be fewer).
    pub fn len(&self) -> usize {
        self.parent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// The symbol of a `dim_param`: every use of one name in a model is the same dimension.
    /// An empty name is no name at all (ONNX writers emit it for "unknown"), so it is fresh.
    pub fn named(&mut self, name: &str) -> SymId {
        if name.is_empty() {
            return self.fresh();
        }
        if let Some(&s) = self.by_name.get(name) {
            return s;
        }
        let s = self.fresh();
        let boxed: Box<str> = name.into();
        self.name[s.0 as usize] = Some(boxed.clone());
        self.by_name.insert(boxed, s);
        s
    }

    /// A new symbol equal to nothing known yet: an unnamed unknown dimension, or the result of
    /// shape arithmetic the analysis cannot express.
    pub fn fresh(&mut self) -> SymId {
        // Each symbol costs over 30 bytes of table, so 2^32 of them exhaust memory long before
        // the index overflows; the check only keeps the conversion honest.
        let id = u32::try_from(self.parent.len()).expect("more than u32::MAX symbolic dimensions");
        self.parent.push(id);
        self.value.push(None);
        self.name.push(None);
        SymId(id)
    }

    /// A fresh symbol as a dim.
    pub fn fresh_dim(&mut self) -> Dim {
        Dim::Sym(self.fresh())
    }

    fn find(&mut self, s: SymId) -> u32 {
        let mut x = s.0;
        // Path halving: iterative, so a long chain cannot overflow the stack.
        loop {
            let Some(&p) = self.parent.get(x as usize) else {
                // A SymId from another table; treat it as its own class rather than panic.
                return x;
            };
            if p == x {
                return x;
            }
            let gp = self.parent[p as usize];
            self.parent[x as usize] = gp;
            x = gp;
        }
    }

    /// The canonical form of `d`: its value if its class is bound, else the class representative.
    pub fn resolve(&mut self, d: Dim) -> Dim {
        match d {
            Dim::Known(_) => d,
            Dim::Sym(s) => {
                let r = self.find(s);
                match self.value.get(r as usize).copied().flatten() {
                    Some(v) => Dim::Known(v),
                    None => Dim::Sym(SymId(r)),
                }
            }
        }
    }

    /// The value of `d`, if it is known or bound.
    pub fn value_of(&mut self, d: Dim) -> Option<i64> {
        self.resolve(d).known()
    }

    /// Record that `a` and `b` are the same dimension; returns the canonical result.
    ///
    /// Two different known values, or a symbol equated with a negative value, are a
    /// [`Conflict`]. On a conflict nothing is changed.
    pub fn unify(&mut self, a: Dim, b: Dim) -> Result<Dim, Conflict> {
        match (self.resolve(a), self.resolve(b)) {
            (Dim::Known(x), Dim::Known(y)) => {
                if x == y {
                    Ok(Dim::Known(x))
                } else {
                    Err(Conflict::new(format!("{x} vs {y}")))
                }
            }
            (Dim::Known(v), Dim::Sym(s)) | (Dim::Sym(s), Dim::Known(v)) => {
                if v < 0 {
                    let n = self.display(Dim::Sym(s));
                    return Err(Conflict::new(format!(
                        "dimension {n} vs negative value {v}"
                    )));
                }
                if let Some(slot) = self.value.get_mut(s.0 as usize) {
                    *slot = Some(v);
                }
                Ok(Dim::Known(v))
            }
            (Dim::Sym(x), Dim::Sym(y)) => {
                if x == y {
                    return Ok(Dim::Sym(x));
                }
                // The older symbol stays the root: deterministic, and a named input dimension
                // (created first) keeps representing its class.
                let (root, child) = if x.0 < y.0 { (x, y) } else { (y, x) };
                if let Some(p) = self.parent.get_mut(child.0 as usize) {
                    *p = root.0;
                }
                let child_name = self.name.get_mut(child.0 as usize).and_then(Option::take);
                if let Some(slot) = self.name.get_mut(root.0 as usize)
                    && slot.is_none()
                {
                    *slot = child_name;
                }
                Ok(Dim::Sym(root))
            }
        }
    }

    /// Whether `a` and `b` are provably the same dimension.
    pub fn same(&mut self, a: Dim, b: Dim) -> bool {
        self.resolve(a) == self.resolve(b)
    }

    /// The `dim_param` name of the symbol's class, if it has one.
    pub fn name_of(&mut self, s: SymId) -> Option<String> {
        let r = self.find(s);
        self.name
            .get(r as usize)
            .cloned()
            .flatten()
            .map(String::from)
    }

    /// `d` for humans: its value, its class's name, or `?` for an anonymous symbol.
    pub fn display(&mut self, d: Dim) -> DimDisplay {
        match self.resolve(d) {
            Dim::Known(v) => DimDisplay::Known(v),
            Dim::Sym(s) => match self.name_of(s) {
                Some(n) => DimDisplay::Named(n),
                None => DimDisplay::Anonymous,
            },
        }
    }
}

/// A resolved dim, printable without the symbol table.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum DimDisplay {
    Known(i64),
    Named(String),
    Anonymous,
}

impl fmt::Display for DimDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DimDisplay::Known(v) => write!(f, "{v}"),
            DimDisplay::Named(n) => f.write_str(n),
            DimDisplay::Anonymous => f.write_str("?"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_shared_and_empty_names_are_fresh() {
        let mut s = Symbols::new();
        let n1 = s.named("N");
        let n2 = s.named("N");
        assert_eq!(n1, n2);
        assert_ne!(s.named(""), s.named(""));
        assert_eq!(s.name_of(n1).as_deref(), Some("N"));
    }

    #[test]
    fn unify_binds_and_conflicts() {
        let mut s = Symbols::new();
        let a = Dim::Sym(s.named("A"));
        let b = Dim::Sym(s.fresh());
        assert!(!s.same(a, b));
        assert_eq!(s.unify(b, a).unwrap(), a);
        assert!(s.same(a, b));
        assert_eq!(
            s.name_of(match b {
                Dim::Sym(x) => x,
                Dim::Known(_) => unreachable!(),
            })
            .as_deref(),
            Some("A")
        );
        assert_eq!(s.unify(a, Dim::Known(4)).unwrap(), Dim::Known(4));
        assert_eq!(s.resolve(b), Dim::Known(4));
        let err = s.unify(b, Dim::Known(5)).unwrap_err();
        assert_eq!(err.to_string(), "4 vs 5");
        let f = Dim::Sym(s.fresh());
        assert!(s.unify(f, Dim::Known(-1)).is_err());
        assert!(s.unify(Dim::Known(3), Dim::Known(3)).is_ok());
    }

    #[test]
    fn name_moves_to_the_root() {
        let mut s = Symbols::new();
        let anon = s.fresh();
        let named = s.named("S");
        s.unify(Dim::Sym(named), Dim::Sym(anon)).unwrap();
        assert_eq!(s.name_of(anon).as_deref(), Some("S"));
        assert_eq!(s.display(Dim::Sym(named)).to_string(), "S");
    }

    #[test]
    fn long_chains_resolve() {
        let mut s = Symbols::new();
        let ids: Vec<_> = (0..10_000).map(|_| s.fresh()).collect();
        for w in ids.windows(2).rev() {
            s.unify(Dim::Sym(w[1]), Dim::Sym(w[0])).unwrap();
        }
        assert!(s.same(Dim::Sym(ids[0]), Dim::Sym(ids[9_999])));
    }
}
