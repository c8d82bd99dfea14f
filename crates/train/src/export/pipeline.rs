//! The fitted feature pipeline as ONNX nodes over the raw declaration fields.
//!
//! Inputs (one `[N, 1]` tensor per schema column, named as in the schema):
//! categoricals `string` (trimmed cell, `""` = missing), the HS code `int64` (the integer code,
//! leading zeros implied), numerics `float` (NaN = missing), the date `string` `YYYY-MM-DD`.
//! Output: one `float [N, F]` tensor, bit-identical to [`cr_features::FittedPipeline::transform`].
//!
//! Every feature follows the arithmetic documented in `cr_features::calc`, op for op:
//! table lookups are `ai.onnx.ml.LabelEncoder` (string → float, default for unseen keys), keys
//! are built with `StringConcat` and `Cast(int64 → string)`, HS prefixes with int64 `Div`, the
//! calendar with `StringSplit` + `Cast` + Hinnant's `days_from_civil` in int64.

use std::collections::{BTreeMap, BTreeSet};

use cr_data::Schema;
use cr_features::{FeatureDef, FittedPipeline, KeyPart};
use cr_onnx::{attr, tensor, Dim, ElemType, GraphBuilder};

use crate::TrainError;

/// ONNX `TensorProto.DataType` codes used by `Cast`.
const FLOAT: i64 = 1;
const INT64: i64 = 7;
const STRING: i64 = 8;

/// A key that cannot be a real key string (used to keep `LabelEncoder` non-empty).
const NEVER_KEY: &str = "\u{0}customs-risk:no-key";

/// The raw inputs the pipeline reads, in schema order, with their ONNX element types.
pub fn raw_inputs(p: &FittedPipeline) -> Vec<(String, ElemType)> {
    let s = &p.schema;
    let mut needs_date = false;
    let mut cats = BTreeSet::new();
    let mut nums = BTreeSet::new();
    for f in &p.features {
        match f {
            FeatureDef::Numeric { index, .. } => {
                nums.insert(*index);
            }
            FeatureDef::UnitValue {
                value_index,
                mass_index,
                ..
            }
            | FeatureDef::RelUnitValue {
                value_index,
                mass_index,
                ..
            } => {
                nums.insert(*value_index);
                nums.insert(*mass_index);
            }
            FeatureDef::DayOfWeek { .. } | FeatureDef::Month { .. } => needs_date = true,
            FeatureDef::RiskRate { key, .. } | FeatureDef::RiskCount { key, .. } => {
                for part in key {
                    if let KeyPart::Categorical(c) = part {
                        cats.insert(*c);
                    }
                }
            }
            FeatureDef::HsPrefix { .. } => {}
        }
    }
    let mut out = Vec::new();
    if needs_date {
        out.push((s.date.clone(), ElemType::Str));
    }
    // The HS code is always an input: every model of ours is scored per declaration line.
    out.push((s.hs_code.clone(), ElemType::I64));
    for (i, c) in s.categorical.iter().enumerate() {
        if cats.contains(&i) {
            out.push((c.name.clone(), ElemType::Str));
        }
    }
    for (i, n) in s.numeric.iter().enumerate() {
        if nums.contains(&i) {
            out.push((n.name.clone(), ElemType::F32));
        }
    }
    out
}

/// Emits the pipeline into `g` (declaring the raw inputs) and returns the name of the
/// `float [N, F]` feature tensor.
pub fn emit(p: &FittedPipeline, g: &mut GraphBuilder) -> Result<String, TrainError> {
    for (name, elem) in raw_inputs(p) {
        g.add_input(&name, elem, &[Dim::batch(), Dim::Known(1)]);
    }
    let mut e = Emitter {
        g,
        schema: &p.schema,
        hs_int: BTreeMap::new(),
        hs_str: BTreeMap::new(),
        consts: BTreeMap::new(),
        keys: BTreeMap::new(),
        uv: None,
        civil: None,
    };
    let mut cols = Vec::with_capacity(p.features.len());
    for f in &p.features {
        cols.push(e.feature(f)?);
    }
    if cols.is_empty() {
        return Err(TrainError::Export("the pipeline has no features".into()));
    }
    let out = e.g.unique_name("features");
    let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
    e.g.add_node("Concat", "", &refs, &[&out], vec![attr::int("axis", 1)]);
    Ok(out)
}

struct Emitter<'a> {
    g: &'a mut GraphBuilder,
    schema: &'a Schema,
    hs_int: BTreeMap<u8, String>,
    hs_str: BTreeMap<u8, String>,
    consts: BTreeMap<String, String>,
    keys: BTreeMap<Vec<KeyPart>, String>,
    uv: Option<String>,
    /// (year, month, day) int64 tensors of the date input.
    civil: Option<(String, String, String)>,
}

impl Emitter<'_> {
    fn node(
        &mut self,
        op: &str,
        domain: &str,
        inputs: &[&str],
        attrs: Vec<cr_onnx::proto::AttributeProto>,
    ) -> String {
        let out = self.g.unique_name(&op.to_ascii_lowercase());
        self.g.add_node(op, domain, inputs, &[&out], attrs);
        out
    }

    fn const_f32(&mut self, v: f32) -> String {
        let key = format!("f32:{:08x}", v.to_bits());
        if let Some(n) = self.consts.get(&key) {
            return n.clone();
        }
        let name = self.g.unique_name("c_f32");
        self.g.add_initializer(tensor::f32(&name, &[], &[v]));
        self.consts.insert(key, name.clone());
        name
    }

    fn const_i64(&mut self, v: i64) -> String {
        let key = format!("i64:{v}");
        if let Some(n) = self.consts.get(&key) {
            return n.clone();
        }
        let name = self.g.unique_name("c_i64");
        self.g.add_initializer(tensor::i64(&name, &[], &[v]));
        self.consts.insert(key, name.clone());
        name
    }

    fn const_str(&mut self, v: &str) -> String {
        let key = format!("str:{v}");
        if let Some(n) = self.consts.get(&key) {
            return n.clone();
        }
        let name = self.g.unique_name("c_str");
        self.g.add_initializer(tensor::strings(&name, &[], &[v]));
        self.consts.insert(key, name.clone());
        name
    }

    fn cast(&mut self, x: &str, to: i64) -> String {
        self.node("Cast", "", &[x], vec![attr::int("to", to)])
    }

    fn bin(&mut self, op: &str, a: &str, b: &str) -> String {
        self.node(op, "", &[a, b], vec![])
    }

    fn numeric_input(&self, index: usize) -> Result<String, TrainError> {
        self.schema
            .numeric
            .get(index)
            .map(|c| c.name.clone())
            .ok_or_else(|| TrainError::Export(format!("numeric index {index} not in schema")))
    }

    /// int64 HS prefix of `digits` digits: `hs / 10^(width - digits)`.
    fn hs_prefix(&mut self, digits: u8) -> String {
        if let Some(n) = self.hs_int.get(&digits) {
            return n.clone();
        }
        let shift = self.schema.hs_width.saturating_sub(digits).min(12);
        let hs = self.schema.hs_code.clone();
        let out = if shift == 0 {
            hs
        } else {
            let d = self.const_i64(10i64.pow(u32::from(shift)));
            self.bin("Div", &hs, &d)
        };
        self.hs_int.insert(digits, out.clone());
        out
    }

    fn hs_prefix_str(&mut self, digits: u8) -> String {
        if let Some(n) = self.hs_str.get(&digits) {
            return n.clone();
        }
        let i = self.hs_prefix(digits);
        let s = self.cast(&i, STRING);
        self.hs_str.insert(digits, s.clone());
        s
    }

    /// The key string tensor: parts joined with "|".
    fn key(&mut self, key: &[KeyPart]) -> Result<String, TrainError> {
        if let Some(n) = self.keys.get(key) {
            return Ok(n.clone());
        }
        let mut acc: Option<String> = None;
        for part in key {
            let t = match *part {
                KeyPart::Categorical(c) => self
                    .schema
                    .categorical
                    .get(c)
                    .map(|c| c.name.clone())
                    .ok_or_else(|| {
                    TrainError::Export(format!("categorical index {c} not in schema"))
                })?,
                KeyPart::Hs(d) => self.hs_prefix_str(d),
            };
            acc = Some(match acc {
                None => t,
                Some(prev) => {
                    let sep = self.const_str("|");
                    let with_sep = self.bin("StringConcat", &prev, &sep);
                    self.bin("StringConcat", &with_sep, &t)
                }
            });
        }
        let out = acc.ok_or_else(|| TrainError::Export("empty risk key".into()))?;
        self.keys.insert(key.to_vec(), out.clone());
        Ok(out)
    }

    fn lookup(&mut self, key: &str, table: &BTreeMap<String, f32>, default: f32) -> String {
        let (keys, values): (Vec<&str>, Vec<f32>) = if table.is_empty() {
            (vec![NEVER_KEY], vec![default])
        } else {
            table.iter().map(|(k, v)| (k.as_str(), *v)).unzip()
        };
        self.node(
            "LabelEncoder",
            "ai.onnx.ml",
            &[key],
            vec![
                attr::strings("keys_strings", &keys),
                attr::floats("values_floats", values),
                attr::float("default_float", default),
            ],
        )
    }

    /// `Where(And(Greater(mass, 0), Not(IsNaN(value))), Div(value, mass), NaN)`.
    fn unit_value(&mut self, value_index: usize, mass_index: usize) -> Result<String, TrainError> {
        if let Some(u) = &self.uv {
            return Ok(u.clone());
        }
        let v = self.numeric_input(value_index)?;
        let m = self.numeric_input(mass_index)?;
        let zero = self.const_f32(0.0);
        let nan = self.const_f32(f32::NAN);
        let pos = self.bin("Greater", &m, &zero);
        let vnan = self.node("IsNaN", "", &[&v], vec![]);
        let vok = self.node("Not", "", &[&vnan], vec![]);
        let ok = self.bin("And", &pos, &vok);
        let q = self.bin("Div", &v, &m);
        let out = self.node("Where", "", &[&ok, &q, &nan], vec![]);
        self.uv = Some(out.clone());
        Ok(out)
    }

    /// (year, month, day) as int64 `[N, 1]` from the ISO date string.
    fn civil(&mut self) -> (String, String, String) {
        if let Some(c) = &self.civil {
            return c.clone();
        }
        let date = self.schema.date.clone();
        let parts = self.g.unique_name("date_parts");
        let lens = self.g.unique_name("date_part_count");
        self.g.add_node(
            "StringSplit",
            "",
            &[&date],
            &[&parts, &lens],
            vec![attr::string("delimiter", "-"), attr::int("maxsplit", 2)],
        );
        let ints = self.cast(&parts, INT64); // [N, 1, 3]
        let (y3, m3, d3) = (
            self.g.unique_name("year3"),
            self.g.unique_name("month3"),
            self.g.unique_name("day3"),
        );
        self.g.add_node(
            "Split",
            "",
            &[&ints],
            &[&y3, &m3, &d3],
            vec![attr::int("axis", 2), attr::int("num_outputs", 3)],
        );
        let axes = self.g.unique_name("axis2");
        self.g.add_initializer(tensor::i64(&axes, &[1], &[2]));
        let y = self.node("Squeeze", "", &[&y3, &axes], vec![]);
        let m = self.node("Squeeze", "", &[&m3, &axes], vec![]);
        let d = self.node("Squeeze", "", &[&d3, &axes], vec![]);
        self.civil = Some((y.clone(), m.clone(), d.clone()));
        (y, m, d)
    }

    /// Hinnant's days_from_civil in int64 (dates >= 0000-03-01, so truncating Div = floor).
    fn days(&mut self) -> String {
        let (y, m, d) = self.civil();
        let c = |e: &mut Self, v: i64| e.const_i64(v);
        let two = c(self, 2);
        let le2b = self.bin("LessOrEqual", &m, &two);
        let le2 = self.cast(&le2b, INT64);
        let yp = self.bin("Sub", &y, &le2);
        let k400 = c(self, 400);
        let era = self.bin("Div", &yp, &k400);
        let era400 = self.bin("Mul", &era, &k400);
        let yoe = self.bin("Sub", &yp, &era400);
        let gt2 = self.bin("Greater", &m, &two);
        let k3 = c(self, 3);
        let k9 = c(self, 9);
        let m_minus3 = self.bin("Sub", &m, &k3);
        let m_plus9 = self.bin("Add", &m, &k9);
        let mp = self.node("Where", "", &[&gt2, &m_minus3, &m_plus9], vec![]);
        let k153 = c(self, 153);
        let k5 = c(self, 5);
        let k1 = c(self, 1);
        let t = self.bin("Mul", &k153, &mp);
        let t = self.bin("Add", &t, &two);
        let t = self.bin("Div", &t, &k5);
        let t = self.bin("Add", &t, &d);
        let doy = self.bin("Sub", &t, &k1);
        let k365 = c(self, 365);
        let k4 = c(self, 4);
        let k100 = c(self, 100);
        let a = self.bin("Mul", &yoe, &k365);
        let b = self.bin("Div", &yoe, &k4);
        let cc = self.bin("Div", &yoe, &k100);
        let doe = self.bin("Add", &a, &b);
        let doe = self.bin("Sub", &doe, &cc);
        let doe = self.bin("Add", &doe, &doy);
        let k146097 = c(self, 146_097);
        let k719468 = c(self, 719_468);
        let e = self.bin("Mul", &era, &k146097);
        let e = self.bin("Add", &e, &doe);
        self.bin("Sub", &e, &k719468)
    }

    fn feature(&mut self, f: &FeatureDef) -> Result<String, TrainError> {
        Ok(match f {
            FeatureDef::Numeric { index, .. } => {
                let x = self.numeric_input(*index)?;
                self.node("Identity", "", &[&x], vec![])
            }
            FeatureDef::UnitValue {
                value_index,
                mass_index,
                ..
            } => {
                let u = self.unit_value(*value_index, *mass_index)?;
                self.node("Identity", "", &[&u], vec![])
            }
            FeatureDef::RelUnitValue {
                value_index,
                mass_index,
                hs4_median,
                hs2_median,
                global_median,
                ..
            } => {
                let uv = self.unit_value(*value_index, *mass_index)?;
                let hs2 = self.hs_prefix_str(2);
                let m2 = self.lookup(&hs2, hs2_median, *global_median);
                let median = if hs4_median.is_empty() || self.schema.hs_width < 4 {
                    m2
                } else {
                    let hs4 = self.hs_prefix_str(4);
                    let m4 = self.lookup(&hs4, hs4_median, f32::NAN);
                    let m4nan = self.node("IsNaN", "", &[&m4], vec![]);
                    self.node("Where", "", &[&m4nan, &m2, &m4], vec![])
                };
                let q = self.bin("Div", &uv, &median);
                let uvnan = self.node("IsNaN", "", &[&uv], vec![]);
                let nan = self.const_f32(f32::NAN);
                self.node("Where", "", &[&uvnan, &nan, &q], vec![])
            }
            FeatureDef::HsPrefix { digits, .. } => {
                let i = self.hs_prefix(*digits);
                self.cast(&i, FLOAT)
            }
            FeatureDef::DayOfWeek { .. } => {
                let days = self.days();
                let k3 = self.const_i64(3);
                let k7 = self.const_i64(7);
                let s = self.bin("Add", &days, &k3);
                let r = self.node("Mod", "", &[&s, &k7], vec![attr::int("fmod", 0)]);
                self.cast(&r, FLOAT)
            }
            FeatureDef::Month { .. } => {
                let (_, m, _) = self.civil();
                self.cast(&m, FLOAT)
            }
            FeatureDef::RiskRate {
                key,
                table,
                default,
                ..
            }
            | FeatureDef::RiskCount {
                key,
                table,
                default,
                ..
            } => {
                let k = self.key(key)?;
                self.lookup(&k, table, *default)
            }
        })
    }
}
