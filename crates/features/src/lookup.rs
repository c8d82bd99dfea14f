//! A read-only string -> slot table for the per-row key lookups of
//! [`crate::CompiledPipeline`]: open addressing over a flat array whose entries carry the full
//! 64-bit hash and, for keys of up to [`INLINE`] bytes, the key bytes themselves, so a lookup
//! touches one cache line (hashbrown with `Box<str>` keys touches the control bytes, the bucket
//! and the key's heap block). Keys are compared byte for byte: the result is exactly that of a
//! `HashMap<String, u32>` lookup.

/// Key bytes stored in the entry itself.
pub(crate) const INLINE: usize = 20;

const EMPTY: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Entry {
    hash: u64,
    /// `EMPTY` for a free entry.
    slot: u32,
    len: u32,
    /// Offset of the key in `arena` when `len > INLINE`.
    off: u32,
    inline: [u8; INLINE],
}

const FREE: Entry = Entry { hash: 0, slot: EMPTY, len: 0, off: 0, inline: [0; INLINE] };

pub(crate) struct StrTable {
    entries: Vec<Entry>,
    /// `entries.len() - 1` (a power of two minus one).
    mask: usize,
    /// Bytes of the keys longer than `INLINE`.
    arena: Vec<u8>,
    len: usize,
}

/// FxHash-style mixing of 8-byte words, then a final avalanche (the table index uses the low
/// bits). Deterministic; only used for lookups.
#[inline(always)]
fn hash_bytes(b: &[u8]) -> u64 {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let mut h = b.len() as u64;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    // murmur3 finaliser
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

impl StrTable {
    /// A table of `keys` (distinct) with their slots (each < `u32::MAX`).
    pub(crate) fn new<'a>(keys: impl IntoIterator<Item = (&'a str, u32)>) -> StrTable {
        let keys: Vec<(&str, u32)> = keys.into_iter().collect();
        let cap = (keys.len() * 2).next_power_of_two().max(8);
        let mut t = StrTable { entries: vec![FREE; cap], mask: cap - 1, arena: Vec::new(), len: 0 };
        for (k, s) in keys {
            t.insert(k.as_bytes(), s);
        }
        t
    }

    fn insert(&mut self, key: &[u8], slot: u32) {
        debug_assert!(slot != EMPTY);
        let hash = hash_bytes(key);
        let mut i = hash as usize & self.mask;
        while self.entries[i].slot != EMPTY {
            i = (i + 1) & self.mask;
        }
        let mut e = Entry { hash, slot, len: key.len() as u32, off: 0, inline: [0; INLINE] };
        if key.len() <= INLINE {
            e.inline[..key.len()].copy_from_slice(key);
        } else {
            e.off = self.arena.len() as u32;
            self.arena.extend_from_slice(key);
        }
        self.entries[i] = e;
        self.len += 1;
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The slot of `key`, if it is in the table.
    #[inline]
    pub(crate) fn get(&self, key: &[u8]) -> Option<u32> {
        let hash = hash_bytes(key);
        let short = key.len() <= INLINE;
        let mut padded = [0u8; INLINE];
        if short {
            padded[..key.len()].copy_from_slice(key);
        }
        let mut i = hash as usize & self.mask;
        loop {
            let e = &self.entries[i];
            if e.slot == EMPTY {
                return None;
            }
            if e.hash == hash && e.len as usize == key.len() {
                let same = if short {
                    e.inline == padded
                } else {
                    let off = e.off as usize;
                    self.arena.get(off..off + key.len()) == Some(key)
                };
                if same {
                    return Some(e.slot);
                }
            }
            i = (i + 1) & self.mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exactly_the_inserted_keys() {
        let long = "a-key-longer-than-twenty-bytes|with|parts";
        let keys = ["", "a", "IMP002301", "IMP002301|DCL0001", long, "a|b|c", "a|b", "b|c"];
        let t = StrTable::new(keys.iter().enumerate().map(|(i, k)| (*k, i as u32)));
        assert_eq!(t.len(), keys.len());
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(t.get(k.as_bytes()), Some(i as u32), "{k:?}");
        }
        for k in ["b", "IMP002301|", "IMP00230", "a-key-longer-than-twenty-bytes|with|part", "a\0"] {
            assert_eq!(t.get(k.as_bytes()), None, "{k:?}");
        }
        let many = StrTable::new((0..10_000u32).map(|i| (Box::leak(format!("K{i}").into_boxed_str()) as &str, i)));
        assert!((0..10_000u32).all(|i| many.get(format!("K{i}").as_bytes()) == Some(i)));
        assert_eq!(many.get(b"K10000"), None);
        assert_eq!(StrTable::new(std::iter::empty()).get(b""), None);
    }
}
