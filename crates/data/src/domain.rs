//! Categorical domains: case folding, known values / patterns, unseen-category counts and
//! pseudonyms, compiled once per read from the schema's categorical columns.
//!
//! Order of the rules for one cell: trim, `case`, then (non-empty cells only) the domain
//! check (`values` and/or `pattern`; a cell outside is an *unseen category*: counted, or a
//! reject with [`crate::ReadOptions::strict_categories`]), then the pseudonym.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::pseudonym::PseudonymKey;
use crate::schema::{Case, CategoricalColumn, Schema};

/// Distinct unseen values remembered per column (further values are counted, not named).
pub const MAX_UNSEEN_VALUES: usize = 1000;

/// A regex that must match a whole value.
pub(crate) fn whole_match(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

/// Cells of one categorical column outside its declared domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unseen {
    /// Cells outside the domain.
    pub cells: u64,
    /// Count per value (as stored: after `case`, pseudonymised where the column is), for the
    /// first [`MAX_UNSEEN_VALUES`] distinct values met.
    pub values: BTreeMap<String, u64>,
}

impl Unseen {
    pub(crate) fn add(&mut self, value: &str, n: u64) {
        self.cells += n;
        if let Some(c) = self.values.get_mut(value) {
            *c += n;
        } else if self.values.len() < MAX_UNSEEN_VALUES {
            self.values.insert(value.to_string(), n);
        }
    }

    /// Add `other`'s counts (in read order, so the remembered values do not depend on the
    /// thread count).
    pub fn merge(&mut self, other: &Unseen) {
        let named: u64 = other.values.values().sum();
        for (v, &n) in &other.values {
            self.add(v, n);
        }
        self.cells += other.cells - named;
    }
}

/// The compiled rules of one categorical column.
#[derive(Debug)]
pub(crate) struct Domain {
    case: Case,
    values: Option<HashSet<String>>,
    pattern: Option<Regex>,
    pseudonym: Option<PseudonymKey>,
}

impl Domain {
    fn new(c: &CategoricalColumn, key: Option<&PseudonymKey>) -> Result<Domain, DataError> {
        let pattern = match &c.pattern {
            Some(p) => Some(whole_match(p).map_err(|e| {
                DataError::schema(format!("categorical {:?}: bad pattern {p:?}: {e}", c.name))
            })?),
            None => None,
        };
        Ok(Domain {
            case: c.case,
            values: c.values.as_ref().map(|v| v.iter().cloned().collect()),
            pattern,
            pseudonym: if c.pseudonymise { key.cloned() } else { None },
        })
    }

    /// Fold the case of `out` in place; `true` when the (non-empty) value is inside the
    /// domain or no domain is declared.
    pub(crate) fn fold_and_check(&self, out: &mut str) -> bool {
        match self.case {
            Case::Keep => {}
            Case::Upper => out.make_ascii_uppercase(),
            Case::Lower => out.make_ascii_lowercase(),
        }
        if out.is_empty() {
            return true;
        }
        self.values.as_ref().is_none_or(|v| v.contains(&*out))
            && self.pattern.as_ref().is_none_or(|p| p.is_match(out))
    }

    pub(crate) fn pseudonymise(&self, out: &mut String) {
        if let Some(k) = &self.pseudonym {
            k.apply(out);
        }
    }
}

/// The error of a pseudonymising schema read without a key.
pub(crate) fn no_key_error(schema: &Schema) -> DataError {
    DataError::schema(format!(
        "schema {:?} pseudonymises column(s) {}: give the key with --pseudonym-key FILE or the \
         environment variable {}",
        schema.name,
        schema.pseudonymised().join(", "),
        crate::pseudonym::KEY_ENV
    ))
}

/// Whether `key` can read data for `schema`: a schema that pseudonymises a column needs a
/// key, and the key whose fingerprint the schema records (a model's schema does); a schema
/// that pseudonymises nothing needs none. The one check every reader (files, JSON, the
/// service at model load) makes, so a missing or wrong key is an error, never a model that
/// scores every identifier as unseen.
pub fn check_pseudonym_key(schema: &Schema, key: Option<&PseudonymKey>) -> Result<(), DataError> {
    if schema.pseudonymised().is_empty() {
        return Ok(());
    }
    let Some(key) = key else {
        return Err(no_key_error(schema));
    };
    if let Some(want) = &schema.pseudonym_fingerprint {
        if want != key.fingerprint() {
            return Err(DataError::schema(format!(
                "wrong pseudonym key: its fingerprint is {}, the model was trained with \
                 the key of fingerprint {want} (every identifier would read as unseen)",
                key.fingerprint()
            )));
        }
    }
    Ok(())
}

/// Every categorical column's compiled rules, shared read-only by the validating threads.
#[derive(Debug)]
pub(crate) struct Domains {
    pub columns: Vec<Domain>,
    pub strict: bool,
}

impl Domains {
    /// Compile the schema's rules; a schema that pseudonymises a column needs `key`.
    pub(crate) fn new(
        schema: &Schema,
        key: Option<&PseudonymKey>,
        strict: bool,
    ) -> Result<Arc<Domains>, DataError> {
        check_pseudonym_key(schema, key)?;
        Ok(Arc::new(Domains {
            columns: schema
                .categorical
                .iter()
                .map(|c| Domain::new(c, key))
                .collect::<Result<_, _>>()?,
            strict,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unseen_merge_keeps_totals_and_caps_names() {
        let mut a = Unseen::default();
        for i in 0..MAX_UNSEEN_VALUES + 5 {
            a.add(&format!("v{i}"), 1);
        }
        a.add("v0", 2);
        assert_eq!(a.cells, MAX_UNSEEN_VALUES as u64 + 7);
        assert_eq!(a.values.len(), MAX_UNSEEN_VALUES);
        assert_eq!(a.values["v0"], 3);
        let mut b = Unseen::default();
        b.merge(&a);
        b.merge(&a);
        assert_eq!(b.cells, 2 * a.cells);
        assert_eq!(b.values["v0"], 6);
    }

    #[test]
    fn patterns_match_whole_values() {
        let re = whole_match("[A-Z]{2}").unwrap();
        assert!(re.is_match("CN"));
        assert!(!re.is_match("CNX") && !re.is_match("xCN") && !re.is_match("cn"));
        let alt = whole_match("A|BB").unwrap();
        assert!(
            alt.is_match("BB") && !alt.is_match("ABB"),
            "alternation anchored as a group"
        );
    }
}
