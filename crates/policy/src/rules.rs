//! Type checking and compiling rule expressions against a schema, and evaluating them over
//! a column-major [`Batch`].
//!
//! **Fields** a rule can name:
//! - every categorical column of the schema by its column name (a string; `==`, `!=`, `in`);
//!   two categorical fields compare when they hold the same kind (e.g. origin and departure
//!   country);
//! - every numeric column by its column name, `score` (the model's score), and the derived
//!   numbers `unit_value` (value / quantity), `value_per_kg` (value / mass), `hs_chapter`
//!   (first 2 digits as a number) and `hs_heading` (first 4 digits); all comparisons;
//! - the HS code column by its name (or `hs_code`): `== "071080"` (a full code),
//!   `in [...]`, `starts_with "93"` / `starts_with ["93", "2402"]`, `in @hs_list`;
//! - the date column by its name (or `date`): comparisons with `"YYYY-MM-DD"` strings.
//!
//! A column name wins over a derived name. Numbers compare at the column's precision: a
//! literal is rounded to f32 like the values read from a file (`score >= 0.9` holds for a
//! score read or computed as 0.9f32). Missing numbers are NaN: every comparison with
//! NaN is false (so `not (mass > 0)` is true for a missing mass), as in IEEE 754. A division
//! by zero gives ±inf or NaN, never a panic.
//!
//! Compiled rules hold column indices, parsed dates, HS codes as integers and hash sets:
//! evaluation does no string parsing per row. [`Program::eval_block`] evaluates one rule on a
//! block of rows into a bit mask (one word per 64 rows); `and` / `or` / `not` are word
//! operations.

use std::collections::HashSet;

use cr_data::{Batch, CategoricalKind, NumericKind, Schema};
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use crate::syntax::{CmpOp, Expr, Operand, Span};
use crate::watch::{parse_day, ListKind, WatchList};

/// A type error: where (span in the expression) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeError {
    pub span: Span,
    pub message: String,
}

fn terr(span: Span, message: impl Into<String>) -> TypeError {
    TypeError {
        span,
        message: message.into(),
    }
}

/// A numeric value source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Col(usize),
    Score,
    /// value / quantity
    Ratio(usize, usize),
    /// hs / divisor
    HsPart(u64),
}

/// What a field name refers to, with its type.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    Num(Num),
    /// A categorical column and its kind.
    Cat(usize, CategoricalKind),
    Hs,
    Date,
}

impl Field {
    fn type_name(self) -> &'static str {
        match self {
            Field::Num(_) => "a number",
            Field::Cat(..) => "a categorical (text) field",
            Field::Hs => "the HS code",
            Field::Date => "the date",
        }
    }
}

/// Countries of origin and departure hold the same kind of value.
fn domain(k: CategoricalKind) -> CategoricalKind {
    match k {
        CategoricalKind::CountryOfDeparture => CategoricalKind::CountryOfOrigin,
        k => k,
    }
}

/// The names a rule may use, resolved against a schema.
pub(crate) struct Env<'a> {
    schema: &'a Schema,
    lists: &'a [WatchList],
}

impl<'a> Env<'a> {
    pub(crate) fn new(schema: &'a Schema, lists: &'a [WatchList]) -> Env<'a> {
        Env { schema, lists }
    }

    /// All names, for "unknown field" messages.
    fn names(&self) -> Vec<String> {
        let s = self.schema;
        let mut v: Vec<String> = vec![s.date.clone(), s.hs_code.clone()];
        v.extend(s.categorical.iter().map(|c| c.name.clone()));
        v.extend(s.numeric.iter().map(|c| c.name.clone()));
        v.push("score".into());
        for (name, ok) in [
            ("unit_value", self.ratio(NumericKind::Quantity).is_some()),
            ("value_per_kg", self.ratio(NumericKind::Mass).is_some()),
            ("hs_chapter", s.hs_width >= 2),
            ("hs_heading", s.hs_width >= 4),
        ] {
            if ok {
                v.push(name.into());
            }
        }
        v
    }

    fn ratio(&self, den: NumericKind) -> Option<Num> {
        let v = self.schema.numeric_index(NumericKind::Value)?;
        let d = self.schema.numeric_index(den)?;
        Some(Num::Ratio(v, d))
    }

    fn field(&self, name: &str, span: Span) -> Result<Field, TypeError> {
        let s = self.schema;
        if let Some(i) = s.categorical.iter().position(|c| c.name == name) {
            return Ok(Field::Cat(i, s.categorical[i].kind));
        }
        if let Some(i) = s.numeric.iter().position(|c| c.name == name) {
            return Ok(Field::Num(Num::Col(i)));
        }
        if name == s.hs_code || name == "hs_code" {
            return Ok(Field::Hs);
        }
        if name == s.date || name == "date" {
            return Ok(Field::Date);
        }
        let pow = |digits: u8| 10u64.pow(u32::from(s.hs_width.saturating_sub(digits)));
        let derived = match name {
            "score" => Some(Num::Score),
            "unit_value" => self.ratio(NumericKind::Quantity),
            "value_per_kg" => self.ratio(NumericKind::Mass),
            "hs_chapter" if s.hs_width >= 2 => Some(Num::HsPart(pow(2))),
            "hs_heading" if s.hs_width >= 4 => Some(Num::HsPart(pow(4))),
            _ => None,
        };
        if let Some(n) = derived {
            return Ok(Field::Num(n));
        }
        let why = match name {
            "unit_value" => " (needs numeric columns of kind value and quantity)",
            "value_per_kg" => " (needs numeric columns of kind value and mass)",
            _ => "",
        };
        Err(terr(
            span,
            format!(
                "unknown field `{name}`{why}; schema \"{}\" has: {}",
                s.name,
                self.names().join(", ")
            ),
        ))
    }

    fn hs_code(&self, s: &str, span: Span) -> Result<u64, TypeError> {
        let w = self.schema.hs_width as usize;
        if s.len() != w || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(terr(
                span,
                format!("\"{s}\" is not an HS code of {w} digits (use `starts_with` for a prefix)"),
            ));
        }
        s.parse()
            .map_err(|_| terr(span, format!("\"{s}\" is not an HS code")))
    }

    fn hs_prefix(&self, s: &str, span: Span) -> Result<(u64, u64), TypeError> {
        let w = self.schema.hs_width as usize;
        if s.is_empty() || s.len() > w || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(terr(
                span,
                format!("\"{s}\" is not an HS prefix (1 to {w} digits)"),
            ));
        }
        let v = s
            .parse()
            .map_err(|_| terr(span, format!("\"{s}\" is not an HS prefix")))?;
        Ok((10u64.pow((w - s.len()) as u32), v))
    }
}

fn date_lit(s: &str, span: Span) -> Result<i32, TypeError> {
    parse_day(s).ok_or_else(|| terr(span, format!("\"{s}\" is not a date (YYYY-MM-DD)")))
}

type StrSet = HashSet<Box<str>, Xxh3DefaultBuilder>;

/// A compiled rule condition.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    True,
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    NumConst(Num, CmpOp, f64),
    NumNum(Num, CmpOp, Num),
    NumIn(Num, Vec<f64>),
    CatEq(usize, Box<str>),
    CatIn(usize, StrSet),
    CatCat(usize, usize),
    HsEq(u64),
    HsIn(Vec<u64>),
    /// (divisor, prefix value) pairs
    HsPrefix(Vec<(u64, u64)>),
    Date(CmpOp, i32),
    ListCat(usize, usize),
    ListHs(usize),
}

/// Type check `e` and compile it.
pub(crate) fn compile(e: &Expr, env: &Env) -> Result<Node, TypeError> {
    Ok(match e {
        Expr::Or(v) => Node::Or(
            v.iter()
                .map(|x| compile(x, env))
                .collect::<Result<_, _>>()?,
        ),
        Expr::And(v) => Node::And(
            v.iter()
                .map(|x| compile(x, env))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Not(x) => Node::Not(Box::new(compile(x, env)?)),
        Expr::Cmp { lhs, op, rhs } => {
            // a literal on the left: swap
            let (l, op, r) = match (lhs, rhs) {
                (Operand::Field(..), _) => (lhs, *op, rhs),
                (_, Operand::Field(..)) => (rhs, op.flipped(), lhs),
                _ => {
                    return Err(terr(
                        lhs.span(),
                        "compares two constants; one side must be a field",
                    ))
                }
            };
            let Operand::Field(name, fspan) = l else {
                return Err(terr(l.span(), "expected a field"));
            };
            let f = env.field(name, *fspan)?;
            cmp(f, *fspan, op, r, env)?
        }
        Expr::InSet {
            lhs,
            items,
            negated,
        } => {
            let (f, _) = field_of(lhs, env)?;
            let n = match f {
                Field::Num(n) => Node::NumIn(
                    n,
                    items
                        .iter()
                        .map(|it| match it {
                            Operand::Num(x, _) => Ok(at_precision(n, *x)),
                            o => Err(terr(
                                o.span(),
                                format!("a list for {} must hold numbers", f.type_name()),
                            )),
                        })
                        .collect::<Result<_, _>>()?,
                ),
                Field::Cat(c, _) => Node::CatIn(
                    c,
                    items
                        .iter()
                        .map(|it| match it {
                            Operand::Str(s, _) => Ok(Box::<str>::from(s.as_str())),
                            o => Err(terr(
                                o.span(),
                                "a list for a categorical field must hold strings",
                            )),
                        })
                        .collect::<Result<_, _>>()?,
                ),
                Field::Hs => Node::HsIn(
                    items
                        .iter()
                        .map(|it| match it {
                            Operand::Str(s, sp) => env.hs_code(s, *sp),
                            o => Err(terr(o.span(), "a list of HS codes must hold strings")),
                        })
                        .collect::<Result<_, _>>()?,
                ),
                Field::Date => {
                    return Err(terr(
                        lhs.span(),
                        "`in` does not apply to the date; use comparisons",
                    ))
                }
            };
            negate(n, *negated)
        }
        Expr::InList {
            lhs,
            list,
            list_span,
            negated,
        } => {
            let (f, fspan) = field_of(lhs, env)?;
            let Some(li) = env.lists.iter().position(|l| &l.name == list) else {
                let known: Vec<&str> = env.lists.iter().map(|l| l.name.as_str()).collect();
                return Err(terr(
                    *list_span,
                    format!(
                        "unknown watch list `{list}` (declared: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            };
            let kind = env.lists[li].kind;
            let fits = match (f, kind) {
                (Field::Hs, ListKind::HsPrefix) => true,
                (Field::Cat(_, k), ListKind::Importer) => k == CategoricalKind::Importer,
                (Field::Cat(_, k), ListKind::Declarant) => k == CategoricalKind::Declarant,
                (Field::Cat(_, k), ListKind::Seller) => k == CategoricalKind::Seller,
                (Field::Cat(_, k), ListKind::Country) => {
                    domain(k) == CategoricalKind::CountryOfOrigin
                }
                _ => false,
            };
            if !fits {
                return Err(terr(
                    fspan.to_span(*list_span),
                    format!(
                        "watch list `{list}` holds {} entries; it does not apply to {}",
                        kind.as_str(),
                        describe(f, env)
                    ),
                ));
            }
            let n = match f {
                Field::Hs => Node::ListHs(li),
                Field::Cat(c, _) => Node::ListCat(c, li),
                _ => unreachable_node(),
            };
            negate(n, *negated)
        }
        Expr::StartsWith { lhs, prefixes } => {
            let (f, fspan) = field_of(lhs, env)?;
            if f != Field::Hs {
                return Err(terr(
                    fspan,
                    format!(
                        "`starts_with` applies to the HS code only, not to {}",
                        describe(f, env)
                    ),
                ));
            }
            Node::HsPrefix(
                prefixes
                    .iter()
                    .map(|p| match p {
                        Operand::Str(s, sp) => env.hs_prefix(s, *sp),
                        o => Err(terr(
                            o.span(),
                            "an HS prefix must be a string of digits, e.g. \"93\"",
                        )),
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
    })
}

/// A literal as the source holds numbers: columns, scores and ratios are f32, so `0.9` means
/// the f32 nearest 0.9 (what a file's "0.9" reads as); HS parts are exact integers.
fn at_precision(n: Num, x: f64) -> f64 {
    match n {
        Num::HsPart(_) => x,
        _ => f64::from(x as f32),
    }
}

fn unreachable_node() -> Node {
    // only reached if `fits` above admits a field kind without a node: never
    Node::Not(Box::new(Node::True))
}

trait SpanTo {
    fn to_span(self, other: Span) -> Span;
}
impl SpanTo for Span {
    fn to_span(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

fn describe(f: Field, env: &Env) -> String {
    match f {
        Field::Cat(c, k) => format!(
            "`{}` (a {} field)",
            env.schema.categorical[c].name,
            serde_kind(k)
        ),
        other => other.type_name().to_string(),
    }
}

fn serde_kind(k: CategoricalKind) -> &'static str {
    match k {
        CategoricalKind::Office => "office",
        CategoricalKind::Importer => "importer",
        CategoricalKind::Declarant => "declarant",
        CategoricalKind::Seller => "seller",
        CategoricalKind::Courier => "courier",
        CategoricalKind::CountryOfOrigin => "country_of_origin",
        CategoricalKind::CountryOfDeparture => "country_of_departure",
        CategoricalKind::TransportMode => "transport_mode",
        CategoricalKind::TaxType => "tax_type",
        CategoricalKind::Other => "other",
    }
}

fn negate(n: Node, negated: bool) -> Node {
    if negated {
        Node::Not(Box::new(n))
    } else {
        n
    }
}

fn field_of(o: &Operand, env: &Env) -> Result<(Field, Span), TypeError> {
    match o {
        Operand::Field(name, sp) => Ok((env.field(name, *sp)?, *sp)),
        other => Err(terr(
            other.span(),
            "the left side of `in` / `starts_with` must be a field",
        )),
    }
}

fn cmp(f: Field, fspan: Span, op: CmpOp, r: &Operand, env: &Env) -> Result<Node, TypeError> {
    let eq_only = |what: &str| -> Result<(), TypeError> {
        if matches!(op, CmpOp::Eq | CmpOp::Ne) {
            Ok(())
        } else {
            Err(terr(
                fspan,
                format!("`{}` does not apply to {what}; use == or !=", op.as_str()),
            ))
        }
    };
    let ne = |n: Node| negate(n, op == CmpOp::Ne);
    match (f, r) {
        (Field::Num(n), Operand::Num(x, _)) => Ok(Node::NumConst(n, op, at_precision(n, *x))),
        (Field::Num(n), Operand::Field(name, sp)) => match env.field(name, *sp)? {
            Field::Num(m) => Ok(Node::NumNum(n, op, m)),
            g => Err(terr(
                *sp,
                format!("compares a number with {}", describe(g, env)),
            )),
        },
        (Field::Cat(c, _), Operand::Str(s, _)) => {
            eq_only("a categorical field")?;
            Ok(ne(Node::CatEq(c, s.as_str().into())))
        }
        (Field::Cat(c, k), Operand::Field(name, sp)) => match env.field(name, *sp)? {
            Field::Cat(d, k2) if domain(k) == domain(k2) => {
                eq_only("a categorical field")?;
                Ok(ne(Node::CatCat(c, d)))
            }
            g => Err(terr(
                *sp,
                format!("compares {} with {}", describe(f, env), describe(g, env)),
            )),
        },
        (Field::Hs, Operand::Str(s, sp)) => {
            eq_only("the HS code")?;
            Ok(ne(Node::HsEq(env.hs_code(s, *sp)?)))
        }
        (Field::Date, Operand::Str(s, sp)) => Ok(Node::Date(op, date_lit(s, *sp)?)),
        (f, Operand::Num(_, sp)) => Err(terr(
            *sp,
            format!(
                "compares {} with a number{}",
                describe(f, env),
                if f == Field::Hs {
                    " (write HS codes as strings, or use hs_chapter / hs_heading)"
                } else {
                    ""
                }
            ),
        )),
        (Field::Num(_), Operand::Str(s, sp)) => Err(terr(
            *sp,
            format!("compares a number with the string \"{s}\""),
        )),
        (f, Operand::Field(name, sp)) => {
            let g = env.field(name, *sp)?;
            Err(terr(
                *sp,
                format!("compares {} with {}", describe(f, env), describe(g, env)),
            ))
        }
    }
}

// ------------------------------------------------------------------ evaluation

/// What a compiled rule is evaluated over.
pub(crate) struct Ctx<'a> {
    pub batch: &'a Batch,
    pub scores: &'a [f32],
    pub lists: &'a [WatchList],
}

impl Ctx<'_> {
    #[inline]
    fn num(&self, n: Num, i: usize) -> f64 {
        match n {
            Num::Col(c) => f64::from(self.batch.numeric[c][i]),
            Num::Score => f64::from(self.scores[i]),
            Num::Ratio(a, b) => f64::from(self.batch.numeric[a][i] / self.batch.numeric[b][i]),
            Num::HsPart(div) => (self.batch.hs[i] / div) as f64,
        }
    }
}

#[inline]
fn test(op: CmpOp, a: f64, b: f64) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
    }
}

#[inline]
fn test_i(op: CmpOp, a: i32, b: i32) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
    }
}

/// Rows per evaluation block (a multiple of 64).
pub(crate) const BLOCK: usize = 4096;

/// Set bit `i - lo` of `out` for each row `i` in `lo..hi` where `pred(i)`.
#[inline]
fn fill(out: &mut [u64], lo: usize, hi: usize, pred: impl Fn(usize) -> bool) {
    for (w, word) in out.iter_mut().enumerate() {
        let base = lo + w * 64;
        let end = (base + 64).min(hi);
        let mut m = 0u64;
        for i in base..end {
            m |= u64::from(pred(i)) << (i - base);
        }
        *word = m;
    }
}

fn words(lo: usize, hi: usize) -> usize {
    (hi - lo).div_ceil(64)
}

/// Clear the bits past `hi - lo` in the last word.
fn mask_tail(out: &mut [u64], lo: usize, hi: usize) {
    let r = (hi - lo) % 64;
    if r != 0 {
        if let Some(last) = out.last_mut() {
            *last &= (1u64 << r) - 1;
        }
    }
}

impl Node {
    /// Evaluate for rows `lo..hi` (at most [`BLOCK`]) into `out` (`ceil((hi-lo)/64)` words).
    pub(crate) fn eval(&self, cx: &Ctx, lo: usize, hi: usize, out: &mut [u64]) {
        let out = &mut out[..words(lo, hi)];
        let b = cx.batch;
        match self {
            Node::True => {
                out.fill(u64::MAX);
                mask_tail(out, lo, hi);
            }
            Node::And(items) => {
                let mut tmp = [0u64; BLOCK / 64];
                let tmp = &mut tmp[..out.len()];
                let mut first = true;
                for it in items {
                    if first {
                        it.eval(cx, lo, hi, out);
                        first = false;
                    } else {
                        it.eval(cx, lo, hi, tmp);
                        out.iter_mut().zip(tmp.iter()).for_each(|(o, t)| *o &= t);
                    }
                    if out.iter().all(|&w| w == 0) {
                        return;
                    }
                }
            }
            Node::Or(items) => {
                let mut tmp = [0u64; BLOCK / 64];
                let tmp = &mut tmp[..out.len()];
                out.fill(0);
                for it in items {
                    it.eval(cx, lo, hi, tmp);
                    out.iter_mut().zip(tmp.iter()).for_each(|(o, t)| *o |= t);
                }
            }
            Node::Not(x) => {
                x.eval(cx, lo, hi, out);
                out.iter_mut().for_each(|w| *w = !*w);
                mask_tail(out, lo, hi);
            }
            Node::NumConst(n, op, k) => fill(out, lo, hi, |i| test(*op, cx.num(*n, i), *k)),
            Node::NumNum(a, op, c) => {
                fill(out, lo, hi, |i| test(*op, cx.num(*a, i), cx.num(*c, i)))
            }
            Node::NumIn(n, set) => fill(out, lo, hi, |i| {
                let x = cx.num(*n, i);
                set.contains(&x)
            }),
            Node::CatEq(c, v) => {
                let col = &b.categorical[*c];
                fill(out, lo, hi, |i| col[i].as_str() == &**v)
            }
            Node::CatIn(c, set) => {
                let col = &b.categorical[*c];
                fill(out, lo, hi, |i| set.contains(col[i].as_str()))
            }
            Node::CatCat(c, d) => {
                let (x, y) = (&b.categorical[*c], &b.categorical[*d]);
                fill(out, lo, hi, |i| x[i] == y[i])
            }
            Node::HsEq(code) => fill(out, lo, hi, |i| b.hs[i] == *code),
            Node::HsIn(codes) => fill(out, lo, hi, |i| codes.contains(&b.hs[i])),
            Node::HsPrefix(ps) => fill(out, lo, hi, |i| {
                let h = b.hs[i];
                ps.iter().any(|&(div, v)| h / div == v)
            }),
            Node::Date(op, day) => fill(out, lo, hi, |i| test_i(*op, b.dates[i], *day)),
            Node::ListCat(c, l) => {
                let col = &b.categorical[*c];
                let list = &cx.lists[*l];
                fill(out, lo, hi, |i| list.has_value(&col[i], b.dates[i]))
            }
            Node::ListHs(l) => {
                let list = &cx.lists[*l];
                fill(out, lo, hi, |i| list.has_prefix_of(b.hs[i], b.dates[i]))
            }
        }
    }
}
