//! Matching a file's columns (CSV header, Parquet fields, JSON keys) to the schema.

use std::collections::{BTreeSet, HashMap};

use crate::error::DataError;
use crate::schema::Schema;

/// Where each schema column sits in a row. `names[i]` is the name of cell `i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ColumnMap {
    pub names: Vec<String>,
    pub id: usize,
    pub date: usize,
    pub hs: usize,
    pub categorical: Vec<usize>,
    pub numeric: Vec<usize>,
    pub label: Option<usize>,
    pub revenue: Option<usize>,
    pub inspected: Option<usize>,
    pub selection: Option<usize>,
    pub propensity: Option<usize>,
}

/// Columns a file may lack without error: label (unless required), revenue, inspection, ignored.
fn optional_columns(schema: &Schema, require_label: bool) -> BTreeSet<&str> {
    let mut v: BTreeSet<&str> = BTreeSet::new();
    if !require_label {
        v.extend(schema.label.iter().map(|l| l.name.as_str()));
    }
    v.extend(schema.revenue.as_deref());
    v.extend(schema.inspected.as_deref());
    v.extend(schema.selection.as_deref());
    v.extend(schema.propensity.as_deref());
    v.extend(schema.ignore.iter().map(String::as_str));
    v
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl ColumnMap {
    /// Match file column names against the schema. All problems are reported in one error:
    /// duplicate names, columns the schema does not know (and does not ignore), and schema
    /// columns the file lacks (label, revenue and inspection columns may be missing unless
    /// `require_label`, which makes the label required).
    pub(crate) fn from_header(
        names: &[String],
        schema: &Schema,
        require_label: bool,
        source: &str,
    ) -> Result<ColumnMap, DataError> {
        if require_label && schema.label.is_none() {
            return Err(DataError::schema(format!(
                "{source}: a label is required but schema {:?} has no label column",
                schema.name
            )));
        }
        let known: BTreeSet<&str> = schema.all_columns().into_iter().collect();
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(names.len());
        let mut duplicates = Vec::new();
        for (i, n) in names.iter().enumerate() {
            if index.insert(n.as_str(), i).is_some() && !duplicates.contains(&n.as_str()) {
                duplicates.push(n.as_str());
            }
        }
        let mut unknown: Vec<&str> = Vec::new();
        for n in names.iter().map(String::as_str) {
            if !known.contains(n) && !unknown.contains(&n) {
                unknown.push(n);
            }
        }
        let optional = optional_columns(schema, require_label);
        let missing: Vec<&str> = schema
            .all_columns()
            .into_iter()
            .filter(|c| !index.contains_key(c) && !optional.contains(c))
            .collect();
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("missing columns: {}", quoted(&missing)));
        }
        if !unknown.is_empty() {
            parts.push(format!(
                "unknown columns: {} (add them to the schema, or to its `ignore` list)",
                quoted(&unknown)
            ));
        }
        if !duplicates.is_empty() {
            parts.push(format!(
                "columns named more than once: {}",
                quoted(&duplicates)
            ));
        }
        if !parts.is_empty() {
            return Err(DataError::columns(format!(
                "{source}: columns do not match schema {:?}: {}",
                schema.name,
                parts.join("; ")
            )));
        }
        // Every required column is present, so these lookups succeed.
        let req = |c: &str| {
            index
                .get(c)
                .copied()
                .ok_or_else(|| DataError::columns(format!("{source}: missing column {c:?}")))
        };
        let opt = |c: Option<&str>| c.and_then(|c| index.get(c).copied());
        Ok(ColumnMap {
            names: names.to_vec(),
            id: req(&schema.id)?,
            date: req(&schema.date)?,
            hs: req(&schema.hs_code)?,
            categorical: schema
                .categorical
                .iter()
                .map(|c| req(&c.name))
                .collect::<Result<_, _>>()?,
            numeric: schema
                .numeric
                .iter()
                .map(|c| req(&c.name))
                .collect::<Result<_, _>>()?,
            label: opt(schema.label.as_ref().map(|l| l.name.as_str())),
            revenue: opt(schema.revenue.as_deref()),
            inspected: opt(schema.inspected.as_deref()),
            selection: opt(schema.selection.as_deref()),
            propensity: opt(schema.propensity.as_deref()),
        })
    }

    /// Layout with every used (non-ignored) schema column, in `Schema::all_columns` order.
    pub(crate) fn for_schema(schema: &Schema) -> ColumnMap {
        let names: Vec<String> = used_columns(schema)
            .into_iter()
            .map(str::to_string)
            .collect();
        let pos = |c: &str| names.iter().position(|n| n == c).unwrap_or(0);
        let opt = |c: Option<&str>| c.map(&pos);
        ColumnMap {
            id: pos(&schema.id),
            date: pos(&schema.date),
            hs: pos(&schema.hs_code),
            categorical: schema.categorical.iter().map(|c| pos(&c.name)).collect(),
            numeric: schema.numeric.iter().map(|c| pos(&c.name)).collect(),
            label: opt(schema.label.as_ref().map(|l| l.name.as_str())),
            revenue: opt(schema.revenue.as_deref()),
            inspected: opt(schema.inspected.as_deref()),
            selection: opt(schema.selection.as_deref()),
            propensity: opt(schema.propensity.as_deref()),
            names,
        }
    }
}

/// The schema's columns that end up in a [`crate::Batch`] (all but `ignore`), in order.
pub(crate) fn used_columns(schema: &Schema) -> Vec<&str> {
    let n = schema.all_columns().len() - schema.ignore.len();
    let mut v = schema.all_columns();
    v.truncate(n);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::from_toml(
            r#"
name = "t"
id = { column = "id" }
date = { column = "date" }
hs_code = { column = "hs", width = 6 }
categorical = [ { column = "office" } ]
numeric = [ { column = "mass", kind = "mass" } ]
label = { column = "fraud" }
ignore = ["note"]
"#,
        )
        .unwrap()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn maps_in_any_order_and_optional_label() {
        let s = schema();
        let m = ColumnMap::from_header(
            &names(&["mass", "hs", "office", "date", "id", "note"]),
            &s,
            false,
            "f",
        )
        .unwrap();
        assert_eq!(
            (
                m.id,
                m.date,
                m.hs,
                m.categorical.clone(),
                m.numeric.clone(),
                m.label
            ),
            (4, 3, 1, vec![2], vec![0], None)
        );
        let e = ColumnMap::from_header(
            &names(&["mass", "hs", "office", "date", "id"]),
            &s,
            true,
            "f",
        )
        .unwrap_err();
        assert!(e.message.contains("missing columns: \"fraud\""), "{e}");
    }

    #[test]
    fn one_error_lists_everything() {
        let s = schema();
        let e = ColumnMap::from_header(
            &names(&["id", "hs", "x1", "office", "x2", "x1"]),
            &s,
            false,
            "f.csv",
        )
        .unwrap_err();
        assert_eq!(e.kind, crate::DataErrorKind::Columns);
        for part in [
            "missing columns: \"date\", \"mass\"",
            "unknown columns: \"x1\", \"x2\" (",
            "more than once: \"x1\"",
        ] {
            assert!(e.message.contains(part), "{part} not in {e}");
        }
    }

    #[test]
    fn for_schema_skips_ignored() {
        let m = ColumnMap::for_schema(&schema());
        assert_eq!(
            m.names,
            names(&["id", "date", "hs", "office", "mass", "fraud"])
        );
        assert_eq!(m.label, Some(5));
    }
}
