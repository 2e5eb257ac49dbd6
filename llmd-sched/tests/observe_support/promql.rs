//! A tiny evaluator for the PromQL shapes the dashboard uses, over known
//! samples: `rate(x[5m])` is the increase a phase produced times a scale,
//! plain selectors read current values. It gives the values a real
//! Prometheus must return.

use llmd_sched::observe::Sample;
use std::collections::BTreeMap;

/// Labels of one series (without `__name__` once an operator dropped it).
pub type Labels = BTreeMap<String, String>;
/// An instant vector.
pub type Vector = BTreeMap<Labels, f64>;

/// Inputs of an evaluation.
pub struct Env<'a> {
    /// What each counter / histogram series grew by inside the range.
    pub delta: &'a [Sample],
    /// Current values (gauges).
    pub now: &'a [Sample],
    /// rate = delta × scale.
    pub scale: f64,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Num(f64),
    Str(String),
    P(char),
}

fn lex(s: &str) -> Vec<Tok> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch.is_ascii_alphabetic() || ch == '_' {
            let st = i;
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '_' || c[i] == ':') {
                i += 1;
            }
            out.push(Tok::Ident(c[st..i].iter().collect()));
        } else if ch.is_ascii_digit() {
            let st = i;
            while i < c.len() && (c[i].is_ascii_digit() || c[i] == '.') {
                i += 1;
            }
            let num: String = c[st..i].iter().collect();
            // A range like `5m` lexes as a number followed by an identifier.
            out.push(Tok::Num(num.parse().expect("number")));
        } else if ch == '"' {
            let st = i + 1;
            i = st;
            while c[i] != '"' {
                i += 1;
            }
            out.push(Tok::Str(c[st..i].iter().collect()));
            i += 1;
        } else {
            out.push(Tok::P(ch));
            i += 1;
        }
    }
    out
}

struct Parser<'a, 'e> {
    t: Vec<Tok>,
    i: usize,
    env: &'a Env<'e>,
}

impl Parser<'_, '_> {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i)
    }
    fn next(&mut self) -> Tok {
        self.i += 1;
        self.t[self.i - 1].clone()
    }
    fn expect(&mut self, p: char) {
        assert_eq!(self.next(), Tok::P(p), "at token {}", self.i);
    }
    fn ident(&mut self) -> String {
        match self.next() {
            Tok::Ident(s) => s,
            t => panic!("expected identifier, got {t:?}"),
        }
    }
    fn label_list(&mut self) -> Vec<String> {
        self.expect('(');
        let mut v = vec![self.ident()];
        while self.peek() == Some(&Tok::P(',')) {
            self.next();
            v.push(self.ident());
        }
        self.expect(')');
        v
    }

    fn expr(&mut self) -> Vector {
        let lhs = self.unary();
        let op = match self.peek() {
            Some(Tok::P(c)) if *c == '/' || *c == '*' => *c,
            _ => return lhs,
        };
        self.next();
        // `ignoring(..) group_left` drops labels from the left side's key;
        // `on(..) group_left` matches on those labels only.
        let mut ignoring = Vec::new();
        let mut on: Option<Vec<String>> = None;
        match self.peek() {
            Some(Tok::Ident(k)) if k == "ignoring" => {
                self.next();
                ignoring = self.label_list();
                assert_eq!(self.ident(), "group_left");
            }
            Some(Tok::Ident(k)) if k == "on" => {
                self.next();
                on = Some(self.label_list());
                assert_eq!(self.ident(), "group_left");
            }
            _ => {}
        }
        let rhs = self.unary();
        let key = |l: &Labels| -> Labels {
            match &on {
                Some(keys) => l
                    .iter()
                    .filter(|(k, _)| keys.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                None => {
                    let mut l = l.clone();
                    for k in &ignoring {
                        l.remove(k);
                    }
                    l
                }
            }
        };
        let rhs: Vector = rhs.iter().map(|(l, v)| (key(l), *v)).collect();
        lhs.iter()
            .filter_map(|(l, a)| {
                rhs.get(&key(l))
                    .map(|b| (l.clone(), if op == '/' { a / b } else { a * b }))
            })
            .collect()
    }

    fn unary(&mut self) -> Vector {
        let name = self.ident();
        match name.as_str() {
            "histogram_quantile" => {
                self.expect('(');
                let Tok::Num(q) = self.next() else {
                    panic!("quantile")
                };
                self.expect(',');
                let v = self.expr();
                self.expect(')');
                histogram_quantile(q, &v)
            }
            "rate" => {
                self.expect('(');
                let v = self.selector(true);
                self.expect(')');
                v
            }
            "sum" | "max" => {
                self.expect('(');
                let v = self.expr();
                self.expect(')');
                let keys = if self.peek() == Some(&Tok::Ident("by".into())) {
                    self.next();
                    self.label_list()
                } else {
                    Vec::new()
                };
                aggregate(&name, &v, &keys)
            }
            _ => {
                self.i -= 1;
                self.selector(false)
            }
        }
    }

    fn selector(&mut self, ranged: bool) -> Vector {
        let name = self.ident();
        let mut want = Vec::new();
        if self.peek() == Some(&Tok::P('{')) {
            self.next();
            loop {
                let k = self.ident();
                self.expect('=');
                let Tok::Str(v) = self.next() else {
                    panic!("label value")
                };
                want.push((k, v));
                if self.next() == Tok::P('}') {
                    break;
                }
            }
        }
        if ranged {
            self.expect('[');
            assert_eq!(self.next(), Tok::Num(5.0));
            assert_eq!(self.ident(), "m");
            self.expect(']');
        }
        let src = if ranged { self.env.delta } else { self.env.now };
        let scale = if ranged { self.env.scale } else { 1.0 };
        src.iter()
            .filter(|s| s.name == name && want.iter().all(|(k, v)| s.label(k) == Some(v)))
            .map(|s| {
                let mut l: Labels = s.labels.iter().cloned().collect();
                if !ranged {
                    l.insert("__name__".into(), name.clone());
                }
                (l, s.value * scale)
            })
            .collect()
    }
}

fn aggregate(op: &str, v: &Vector, keys: &[String]) -> Vector {
    let mut out: Vector = BTreeMap::new();
    for (l, x) in v {
        let k: Labels = keys
            .iter()
            .filter_map(|k| l.get(k).map(|v| (k.clone(), v.clone())))
            .collect();
        out.entry(k)
            .and_modify(|a| *a = if op == "sum" { *a + x } else { a.max(*x) })
            .or_insert(*x);
    }
    out
}

/// Prometheus 2.x `histogram_quantile` over `le`-labelled series.
pub fn histogram_quantile(q: f64, v: &Vector) -> Vector {
    let mut groups: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
    for (l, x) in v {
        let mut g = l.clone();
        let le = g.remove("le").expect("le label");
        let ub = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().expect("le")
        };
        groups.entry(g).or_default().push((ub, *x));
    }
    groups
        .into_iter()
        .map(|(g, mut b)| {
            b.sort_by(|a, c| a.0.total_cmp(&c.0));
            (g, bucket_quantile(q, &b))
        })
        .collect()
}

fn bucket_quantile(q: f64, b: &[(f64, f64)]) -> f64 {
    if b.len() < 2 || b[b.len() - 1].0 != f64::INFINITY {
        return f64::NAN;
    }
    let total = b[b.len() - 1].1;
    if total == 0.0 {
        return f64::NAN;
    }
    let rank = q * total;
    let idx = b[..b.len() - 1].partition_point(|x| x.1 < rank);
    if idx == b.len() - 1 {
        return b[b.len() - 2].0;
    }
    if idx == 0 && b[0].0 <= 0.0 {
        return b[0].0;
    }
    let (start, below) = if idx == 0 {
        (0.0, 0.0)
    } else {
        (b[idx - 1].0, b[idx - 1].1)
    };
    let (end, count) = (b[idx].0, b[idx].1 - below);
    start + (end - start) * ((rank - below) / count)
}

/// Evaluates `expr` over `env`.
pub fn eval(expr: &str, env: &Env<'_>) -> Vector {
    let mut p = Parser {
        t: lex(expr),
        i: 0,
        env,
    };
    let v = p.expr();
    assert_eq!(p.i, p.t.len(), "trailing tokens in {expr}");
    v
}
