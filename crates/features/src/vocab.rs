//! Risk keys compiled to per-column vocabularies, for [`crate::CompiledPipeline`].
//!
//! Several keys share a raw column (the importer cell feeds `importer`, `importer|declarant`
//! and `importer|hs4`). Each such column gets one *vocabulary*: every string (categorical
//! column) or HS prefix (HS part of `d` digits) that can make up a table key, numbered. A block
//! of rows is turned into ids once per column (one string hash and probe per cell, shared by
//! every key of that column), then:
//!
//! - a one-part key's slot is `by_id[id]` (an array load);
//! - a two-part key's slot is looked up by the pair of ids packed in a `u64`
//!   ([`U64Table`]), with no key string built or hashed.
//!
//! Exactness: a two-part table key `k` is registered under every split `k = left + "|" +
//! right` whose parts are valid (any string for a categorical part, a canonical decimal below
//! `10^d` for an HS part: what [`crate::calc::push_key`] writes). A row's key string
//! `cell_a + "|" + cell_b` equals `k` exactly when `(cell_a, cell_b)` is one of those splits,
//! so the pair lookup answers what the string lookup answers, including for cells that contain
//! `"|"` (`("a|b", "c")` and `("a", "b|c")` both reach key `"a|b|c"`). Keys of three or more
//! parts keep the string path.

use crate::calc::{parse_canonical_decimal, FxHashMap, POW10};
use crate::config::KeyPart;
use crate::error::FeatureError;
use crate::lookup::{IntTable, StrTable, U64Table};

/// Id of a value in no vocabulary (it can be in no table).
pub(crate) const NONE: u32 = u32::MAX;

/// A key part's source: index into [`Vocabs::cat`] or [`Vocabs::hs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Cat(usize),
    Hs(usize),
}

/// Cell string -> id for categorical column `col`.
pub(crate) struct CatVocab {
    pub(crate) col: usize,
    pub(crate) table: StrTable,
}

/// HS prefix of `digits` digits -> id.
pub(crate) struct HsVocab {
    pub(crate) digits: u8,
    pub(crate) map: HsMap,
}

/// Prefixes of up to [`DENSE_DIGITS`] digits index an array (`NONE` where absent); longer
/// ones go through an integer hash table.
pub(crate) enum HsMap {
    Dense(Vec<u32>),
    Table(U64Table),
}

/// Largest prefix width (digits) kept in a dense array (10^4 entries).
pub(crate) const DENSE_DIGITS: u8 = 4;

impl HsMap {
    #[inline(always)]
    pub(crate) fn get(&self, prefix: u64) -> u32 {
        match self {
            HsMap::Dense(d) => d.get(prefix as usize).copied().unwrap_or(NONE),
            HsMap::Table(t) => t.get(prefix).unwrap_or(NONE),
        }
    }
}

/// Pairs of ids -> slot: `(id_a << shift) | id_b` in a `u32` when both vocabularies are small
/// enough (8-byte entries: half the cache footprint), else `(id_a << 32) | id_b`.
pub(crate) enum PairTable {
    Narrow { shift: u32, table: IntTable<u32> },
    Wide(U64Table),
}

/// How a key's slot is found for a row.
pub(crate) enum KeyKind {
    /// One part: `by_id[id]`, `n_slots` past its end (and for `NONE`).
    Single { part: Part, by_id: Vec<u32> },
    /// Two parts: the packed pair of ids in `table`; absent when either id is `NONE`.
    Pair { a: Part, b: Part, table: PairTable },
    /// Three or more parts: the key string built in a buffer, looked up whole.
    Str {
        parts: Vec<KeyPart>,
        table: StrTable,
    },
}

pub(crate) struct CompiledKey {
    pub(crate) kind: KeyKind,
    /// Number of slots; slot `n_slots` means "not in any table of this key".
    pub(crate) n_slots: u32,
}

/// The vocabularies and keys of a pipeline.
pub(crate) struct Vocabs {
    pub(crate) cat: Vec<CatVocab>,
    pub(crate) hs: Vec<HsVocab>,
    pub(crate) keys: Vec<CompiledKey>,
}

/// The vocabularies being built: values in first-seen order.
#[derive(Default)]
struct Builder<'a> {
    cat: Vec<(usize, FxHashMap<&'a str, u32>, Vec<&'a str>)>,
    hs: Vec<(u8, FxHashMap<u64, u32>, Vec<u64>)>,
}

fn too_many() -> FeatureError {
    FeatureError::format("more than 2^32 - 2 distinct values in one column's risk tables")
}

impl<'a> Builder<'a> {
    fn part(&mut self, p: KeyPart) -> Part {
        match p {
            KeyPart::Categorical(c) => {
                Part::Cat(self.cat.iter().position(|v| v.0 == c).unwrap_or_else(|| {
                    self.cat.push((c, FxHashMap::default(), Vec::new()));
                    self.cat.len() - 1
                }))
            }
            KeyPart::Hs(d) => {
                Part::Hs(self.hs.iter().position(|v| v.0 == d).unwrap_or_else(|| {
                    self.hs.push((d, FxHashMap::default(), Vec::new()));
                    self.hs.len() - 1
                }))
            }
        }
    }

    /// Whether some row's part can be the string `s`.
    fn valid(&self, part: Part, s: &str) -> bool {
        match part {
            Part::Cat(_) => true,
            Part::Hs(i) => self.hs_value(i, s).is_some(),
        }
    }

    /// The prefix `s` stands for, if a row can produce it (canonical and below `10^digits`).
    fn hs_value(&self, i: usize, s: &str) -> Option<u64> {
        let d = self.hs.get(i)?.0;
        parse_canonical_decimal(s).filter(|&v| v < POW10[usize::from(d).min(12)])
    }

    /// The id of `s` (added when new); `None` when `part` can never be `s`.
    fn id(&mut self, part: Part, s: &'a str) -> Result<Option<u32>, FeatureError> {
        fn get_or_add<K: Copy + Eq + std::hash::Hash>(
            map: &mut FxHashMap<K, u32>,
            order: &mut Vec<K>,
            k: K,
        ) -> Result<u32, FeatureError> {
            if let Some(&id) = map.get(&k) {
                return Ok(id);
            }
            let id = u32::try_from(order.len())
                .ok()
                .filter(|&n| n < NONE - 1)
                .ok_or_else(too_many)?;
            map.insert(k, id);
            order.push(k);
            Ok(id)
        }
        match part {
            Part::Cat(i) => match self.cat.get_mut(i) {
                Some((_, map, order)) => get_or_add(map, order, s).map(Some),
                None => Ok(None),
            },
            Part::Hs(i) => {
                let Some(v) = self.hs_value(i, s) else {
                    return Ok(None);
                };
                match self.hs.get_mut(i) {
                    Some((_, map, order)) => get_or_add(map, order, v).map(Some),
                    None => Ok(None),
                }
            }
        }
    }
}

/// Compiles every distinct key (`parts[k]`, whose table keys are `order[k]`, slot = index).
pub(crate) fn compile_keys(
    parts: &[Vec<KeyPart>],
    order: &[Vec<&str>],
) -> Result<Vocabs, FeatureError> {
    enum Pending {
        Single(Part, Vec<(u32, u32)>),
        Pair(Part, Part, Vec<(u64, u32)>),
        Str,
    }
    let mut b = Builder::default();
    let mut pending = Vec::with_capacity(parts.len());
    for (key, keys) in parts.iter().zip(order) {
        pending.push(match key.as_slice() {
            [p] => {
                let part = b.part(*p);
                let mut ids = Vec::with_capacity(keys.len());
                for (slot, k) in keys.iter().enumerate() {
                    if let Some(id) = b.id(part, k)? {
                        ids.push((id, slot as u32));
                    }
                }
                Pending::Single(part, ids)
            }
            [p, q] => {
                let (a, c) = (b.part(*p), b.part(*q));
                let mut pairs = Vec::with_capacity(keys.len());
                for (slot, k) in keys.iter().enumerate() {
                    for (i, _) in k.match_indices('|') {
                        let (left, right) = (&k[..i], &k[i + 1..]);
                        if !(b.valid(a, left) && b.valid(c, right)) {
                            continue;
                        }
                        if let (Some(x), Some(y)) = (b.id(a, left)?, b.id(c, right)?) {
                            pairs.push((u64::from(x) << 32 | u64::from(y), slot as u32));
                        }
                    }
                }
                Pending::Pair(a, c, pairs)
            }
            _ => Pending::Str,
        });
    }
    let vocab_len = |b: &Builder, p: Part| match p {
        Part::Cat(i) => b.cat.get(i).map_or(0, |v| v.2.len()),
        Part::Hs(i) => b.hs.get(i).map_or(0, |v| v.2.len()),
    };
    let keys = pending
        .into_iter()
        .zip(parts.iter().zip(order))
        .map(|(p, (key, keys))| {
            let n_slots = keys.len() as u32;
            let kind = match p {
                Pending::Single(part, ids) => {
                    let mut by_id = vec![n_slots; vocab_len(&b, part)];
                    for (id, slot) in ids {
                        if let Some(s) = by_id.get_mut(id as usize) {
                            *s = slot;
                        }
                    }
                    KeyKind::Single { part, by_id }
                }
                Pending::Pair(a, c, pairs) => {
                    // ids of `c` are below its vocabulary length, which fits in `shift` bits
                    let shift = 32 - (vocab_len(&b, c) as u32).leading_zeros();
                    let narrow = shift < 32 && (vocab_len(&b, a) as u64) << shift < 1 << 32;
                    let table = if narrow {
                        let pack = |k: u64| ((k >> 32) << shift | (k & 0xffff_ffff)) as u32;
                        PairTable::Narrow {
                            shift,
                            table: IntTable::new(pairs.into_iter().map(|(k, s)| (pack(k), s))),
                        }
                    } else {
                        PairTable::Wide(U64Table::new(pairs))
                    };
                    KeyKind::Pair { a, b: c, table }
                }
                Pending::Str => KeyKind::Str {
                    parts: key.clone(),
                    table: StrTable::new(
                        keys.iter().enumerate().map(|(slot, k)| (*k, slot as u32)),
                    ),
                },
            };
            CompiledKey { kind, n_slots }
        })
        .collect();
    let cat = b
        .cat
        .iter()
        .map(|(col, _, order)| CatVocab {
            col: *col,
            table: StrTable::new(order.iter().enumerate().map(|(id, s)| (*s, id as u32))),
        })
        .collect();
    let hs =
        b.hs.iter()
            .map(|(digits, _, order)| {
                let map = if *digits <= DENSE_DIGITS {
                    let mut dense = vec![NONE; POW10[usize::from(*digits)] as usize];
                    for (id, &v) in order.iter().enumerate() {
                        if let Some(d) = dense.get_mut(v as usize) {
                            *d = id as u32;
                        }
                    }
                    HsMap::Dense(dense)
                } else {
                    HsMap::Table(U64Table::new(
                        order.iter().enumerate().map(|(id, &v)| (v, id as u32)),
                    ))
                };
                HsVocab {
                    digits: *digits,
                    map,
                }
            })
            .collect();
    Ok(Vocabs { cat, hs, keys })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slot of the pair (`left`, `right`) through the vocabularies, as the transform finds it.
    fn pair_slot(v: &Vocabs, key: usize, left: &str, right: &str) -> Option<u32> {
        let KeyKind::Pair {
            a: Part::Cat(a),
            b: Part::Cat(b),
            table,
        } = &v.keys[key].kind
        else {
            return None;
        };
        let id = |i: usize, s: &str| v.cat[i].table.get(s.as_bytes()).unwrap_or(NONE);
        let (x, y) = (id(*a, left), id(*b, right));
        if x == NONE || y == NONE {
            return None;
        }
        match table {
            PairTable::Narrow { shift, table } => table.get(x << shift | y),
            PairTable::Wide(t) => t.get(u64::from(x) << 32 | u64::from(y)),
        }
    }

    #[test]
    fn pairs_of_large_vocabularies_use_wide_keys_and_small_ones_narrow() {
        // 70,000 distinct values on each side: 17 + 17 bits do not fit a u32
        let keys: Vec<String> = (0..70_000)
            .map(|i| format!("a{i}|b{}", 69_999 - i))
            .collect();
        let small: Vec<String> = (0..100).map(|i| format!("a{i}|b|{i}")).collect();
        let order = vec![
            keys.iter().map(String::as_str).collect::<Vec<_>>(),
            small.iter().map(String::as_str).collect(),
        ];
        let parts = vec![
            vec![KeyPart::Categorical(0), KeyPart::Categorical(1)],
            vec![KeyPart::Categorical(2), KeyPart::Categorical(3)],
        ];
        let v = compile_keys(&parts, &order).expect("compile");
        assert!(matches!(
            v.keys[0].kind,
            KeyKind::Pair {
                table: PairTable::Wide(_),
                ..
            }
        ));
        assert!(matches!(
            v.keys[1].kind,
            KeyKind::Pair {
                table: PairTable::Narrow { .. },
                ..
            }
        ));
        for i in (0..70_000).step_by(997) {
            assert_eq!(
                pair_slot(&v, 0, &format!("a{i}"), &format!("b{}", 69_999 - i)),
                Some(i as u32)
            );
            assert_eq!(
                pair_slot(&v, 0, &format!("a{i}"), &format!("b{}", 69_998 - i)),
                None
            );
        }
        // "a7|b|7" splits as ("a7", "b|7") and ("a7|b", "7"): both reach slot 7
        assert_eq!(pair_slot(&v, 1, "a7", "b|7"), Some(7));
        assert_eq!(pair_slot(&v, 1, "a7|b", "7"), Some(7));
        assert_eq!(pair_slot(&v, 1, "a7", "b|8"), None);
    }
}
