//! Matching a file's columns (CSV header, Parquet fields, JSON keys) to the schema.

use std::collections::{BTreeSet, HashMap};

use crate::error::DataError;
use crate::read::ExtraColumns;
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
    /// `require_label`, which makes the label required). With [`ExtraColumns::Ignore`],
    /// columns the schema does not know are left unread instead of refused. When no schema
    /// column is found and the header looks split by another delimiter, the error says which.
    pub(crate) fn from_header(
        names: &[String],
        schema: &Schema,
        require_label: bool,
        extra: ExtraColumns,
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
        if !missing.is_empty() && missing.len() == schema.all_columns().len() - optional.len() {
            if let Some(hint) = delimiter_hint(names, &known) {
                parts.push(hint);
            }
        }
        if extra == ExtraColumns::Ignore {
            unknown.clear();
        }
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

/// When a header came out as one field, the delimiter that splits it into the most schema
/// columns (`,` `;` tab `|`), as a sentence for the error.
fn delimiter_hint(names: &[String], known: &BTreeSet<&str>) -> Option<String> {
    let [only] = names else {
        return None;
    };
    let (best, hits) = [',', ';', '\t', '|']
        .into_iter()
        .map(|d| {
            let hits = only
                .split(d)
                .filter(|n| known.contains(n.trim().trim_matches('"')))
                .count();
            (d, hits)
        })
        .max_by_key(|&(_, hits)| hits)?;
    if hits < 2 {
        return None;
    }
    let shown = if best == '\t' {
        "a tab ('\\t', or name the file .tsv)".to_string()
    } else {
        format!("{best:?} (--delimiter '{best}')")
    };
    Some(format!(
        "the header is one column but splits into {hits} schema columns at {shown}: \
         the file is separated by {best:?}, read it with that delimiter"
    ))
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
            ExtraColumns::Refuse,
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
            ExtraColumns::Refuse,
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
            ExtraColumns::Refuse,
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

    #[test]
    fn extra_columns_ignored_on_request_missing_still_an_error() {
        let s = schema();
        let m = ColumnMap::from_header(
            &names(&["extra", "mass", "hs", "office", "date", "id"]),
            &s,
            false,
            ExtraColumns::Ignore,
            "f",
        )
        .unwrap();
        assert_eq!((m.id, m.numeric.clone()), (5, vec![1]));
        let e = ColumnMap::from_header(
            &names(&["extra", "hs", "office", "date", "id"]),
            &s,
            false,
            ExtraColumns::Ignore,
            "f",
        )
        .unwrap_err();
        assert!(e.message.contains("missing columns: \"mass\""), "{e}");
        assert!(!e.message.contains("extra"), "{e}");
    }

    #[test]
    fn a_header_in_one_piece_names_its_delimiter() {
        let s = schema();
        for (header, shown) in [
            ("id;date;hs;office;mass", "';'"),
            ("id|date|hs|office|mass", "'|'"),
            ("id\tdate\ths\toffice\tmass", "a tab ('\\t'"),
        ] {
            let e =
                ColumnMap::from_header(&names(&[header]), &s, false, ExtraColumns::Refuse, "f.csv")
                    .unwrap_err();
            assert!(
                e.message
                    .contains(&format!("splits into 5 schema columns at {shown}")),
                "{e}"
            );
        }
        // One real column found: no guess.
        let e = ColumnMap::from_header(&names(&["id"]), &s, false, ExtraColumns::Refuse, "f")
            .unwrap_err();
        assert!(!e.message.contains("splits into"), "{e}");
    }
}
