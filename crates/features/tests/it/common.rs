use cr_data::{Batch, Schema};

pub const SCHEMA: &str = r#"
name = "t"
id = { column = "id" }
date = { column = "date" }
hs_code = { column = "hs", width = 6 }
categorical = [
  { column = "importer", kind = "importer" },
  { column = "declarant", kind = "declarant" },
  { column = "origin", kind = "country_of_origin" },
]
numeric = [ { column = "value", kind = "value" }, { column = "mass", kind = "mass" } ]
label = { column = "fraud" }
"#;

pub fn schema() -> Schema {
    Schema::from_toml(SCHEMA).expect("test schema")
}

pub fn schema_from(toml: &str) -> Schema {
    Schema::from_toml(toml).expect("test schema")
}

/// Appends one row; `cats` and `nums` in schema order.
pub fn push(b: &mut Batch, date: i32, hs: u64, cats: &[&str], nums: &[f32], label: Option<bool>) {
    let r = b.len();
    b.lines.push(r as u64 + 2);
    b.ids.push(format!("D{r}"));
    b.dates.push(date);
    b.hs.push(hs);
    for (c, v) in b.categorical.iter_mut().zip(cats) {
        c.push(v.to_string());
    }
    for (c, v) in b.numeric.iter_mut().zip(nums) {
        c.push(*v);
    }
    b.label.push(label);
    b.revenue.push(None);
    b.inspected.push(label.is_some());
    b.selection.push(None);
    b.propensity.push(None);
}

/// Tiny deterministic generator (xorshift64*), independent of the crate under test.
pub struct Gen(pub u64);
impl Gen {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A synthetic batch on `schema()` with a learnable importer effect.
pub fn synthetic(n: usize, seed: u64, label_share: u64) -> Batch {
    let s = schema();
    let mut g = Gen(seed | 1);
    let mut b = Batch::empty(&s, "synthetic");
    for _ in 0..n {
        let imp = g.below(40);
        let dec = g.below(12);
        let org = g.below(8);
        let hs = (100 + g.below(30)) * 100 + g.below(3);
        let value = (1 + g.below(10_000)) as f32 / 7.0;
        let mass = if g.below(20) == 0 {
            0.0
        } else {
            (1 + g.below(500)) as f32 / 3.0
        };
        let labelled = g.below(100) < label_share;
        let y = g.below(100) < if imp < 5 { 40 } else { 5 };
        push(
            &mut b,
            18_000 + g.below(900) as i32,
            hs,
            &[&format!("I{imp}"), &format!("D{dec}"), &format!("O{org}")],
            &[value, mass],
            labelled.then_some(y),
        );
    }
    b
}

/// ROC AUC by pairwise comparison (ties count 1/2).
pub fn auc(score: &[f32], y: &[bool]) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (i, &si) in score.iter().enumerate() {
        if !y[i] {
            continue;
        }
        for (j, &sj) in score.iter().enumerate() {
            if y[j] {
                continue;
            }
            den += 1.0;
            num += if si > sj {
                1.0
            } else if si == sj {
                0.5
            } else {
                0.0
            };
        }
    }
    num / den
}
