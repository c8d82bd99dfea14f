//! A read-only string -> slot table for the per-row key lookups of
//! [`crate::CompiledPipeline`]: open addressing over a flat array whose entries carry the full
//! 64-bit hash and, for keys of up to [`INLINE`] bytes, the key bytes themselves, so a lookup
//! touches one cache line (hashbrown with `Box<str>` keys touches the control bytes, the bucket
//! and the key's heap block). Keys are compared byte for byte: the result is exactly that of a
//! `HashMap<String, u32>` lookup.

/// Key bytes stored in the entry itself (longer keys live in an arena, their offset in the
/// first four of these bytes).
pub(crate) const INLINE: usize = 23;

const EMPTY: u32 = u32::MAX;

/// 32 bytes: two entries per cache line.
#[derive(Clone, Copy)]
#[repr(C)]
struct Entry {
    /// High 32 bits of the key's hash.
    tag: u32,
    /// `EMPTY` for a free entry.
    slot: u32,
    /// Key length, saturated at 255 (longer keys: the arena holds the length).
    len: u8,
    inline: [u8; INLINE],
}

const FREE: Entry = Entry { tag: 0, slot: EMPTY, len: 0, inline: [0; INLINE] };

pub(crate) struct StrTable {
    entries: Vec<Entry>,
    /// `entries.len() - 1` (a power of two minus one).
    mask: usize,
    /// Keys longer than `INLINE`: 4-byte little-endian length, then the bytes.
    arena: Vec<u8>,
    len: usize,
}

/// FxHash-style mixing of 8-byte words, then a final avalanche (the table index uses the low
/// bits, the tag the high ones). Deterministic; only used for lookups.
#[inline(always)]
pub(crate) fn hash_bytes(b: &[u8]) -> u64 {
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
        // byte loop, not copy_from_slice: a variable-length copy is a memmove call
        let w = rest.iter().enumerate().fold(0u64, |w, (i, &b)| w | u64::from(b) << (8 * i));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    // murmur3 finaliser
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// Hint the CPU to load the cache line at `p` (any address: a prefetch never faults).
#[inline(always)]
pub(crate) fn prefetch_ptr(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it never faults and reads no value.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl StrTable {
    /// A table of `keys` (distinct) with their slots (each < `u32::MAX`). At most 3/4 full.
    pub(crate) fn new<'a>(keys: impl IntoIterator<Item = (&'a str, u32)>) -> StrTable {
        let keys: Vec<(&str, u32)> = keys.into_iter().collect();
        let cap = (keys.len() + keys.len() / 3 + 1).next_power_of_two().max(8);
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
        let mut e = Entry { tag: (hash >> 32) as u32, slot, len: key.len().min(255) as u8, inline: [0; INLINE] };
        if key.len() <= INLINE {
            e.inline[..key.len()].copy_from_slice(key);
        } else {
            e.inline[..4].copy_from_slice(&(self.arena.len() as u32).to_le_bytes());
            self.arena.extend_from_slice(&(key.len() as u32).to_le_bytes());
            self.arena.extend_from_slice(key);
        }
        self.entries[i] = e;
        self.len += 1;
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Hint the CPU to load the entry line `hash` probes first (lookups of many keys: hash
    /// them all, prefetch a few ahead, then [`StrTable::get_hashed`]).
    #[inline(always)]
    pub(crate) fn prefetch(&self, hash: u64) {
        prefetch_ptr(self.entries.as_ptr().wrapping_add(hash as usize & self.mask).cast::<u8>());
    }

    /// The slot of `key`, if it is in the table.
    #[cfg(test)]
    pub(crate) fn get(&self, key: &[u8]) -> Option<u32> {
        self.get_hashed(key, hash_bytes(key))
    }

    /// [`StrTable::get`] with `hash == hash_bytes(key)` computed by the caller.
    #[inline]
    pub(crate) fn get_hashed(&self, key: &[u8], hash: u64) -> Option<u32> {
        let tag = (hash >> 32) as u32;
        let short = key.len() <= INLINE;
        let mut padded = [0u8; INLINE];
        if short {
            // byte loop, not copy_from_slice: a variable-length copy is a memmove call
            for (p, &b) in padded.iter_mut().zip(key) {
                *p = b;
            }
        }
        let mut i = hash as usize & self.mask;
        loop {
            let e = &self.entries[i];
            if e.slot == EMPTY {
                return None;
            }
            if e.tag == tag && usize::from(e.len) == key.len().min(255) {
                let same = if short { e.inline == padded } else { self.long_key(e) == Some(key) };
                if same {
                    return Some(e.slot);
                }
            }
            i = (i + 1) & self.mask;
        }
    }

    fn long_key(&self, e: &Entry) -> Option<&[u8]> {
        let mut w = [0u8; 4];
        w.copy_from_slice(&e.inline[..4]);
        let off = u32::from_le_bytes(w) as usize;
        let len_bytes: [u8; 4] = self.arena.get(off..off + 4)?.try_into().ok()?;
        let len = u32::from_le_bytes(len_bytes) as usize;
        self.arena.get(off + 4..off + 4 + len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exactly_the_inserted_keys() {
        let long = "a-key-longer-than-twenty-three-bytes|with|parts";
        let long2 = "a-key-longer-than-twenty-three-bytes|with|partz";
        let exactly = "12345678901234567890123"; // INLINE bytes
        let keys = ["", "a", "IMP002301", "IMP002301|DCL0001", long, long2, exactly, "a|b|c", "a|b", "b|c"];
        let t = StrTable::new(keys.iter().enumerate().map(|(i, k)| (*k, i as u32)));
        assert_eq!(t.len(), keys.len());
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(t.get(k.as_bytes()), Some(i as u32), "{k:?}");
        }
        let long3 = "a-key-longer-than-twenty-three-bytes|with|party";
        let v = "x".repeat(300);
        for k in ["b", "IMP002301|", "IMP00230", "a-key-longer-than-twenty-three-bytes|with|part", long3, "1234567890123456789012", "a\0", &v] {
            assert_eq!(t.get(k.as_bytes()), None, "{k:?}");
        }
        let huge = StrTable::new([(v.as_str(), 7), ("y", 8)]);
        assert_eq!(huge.get(v.as_bytes()), Some(7));
        assert_eq!(huge.get("x".repeat(299).as_bytes()), None);
        let many = StrTable::new((0..10_000u32).map(|i| (Box::leak(format!("K{i}").into_boxed_str()) as &str, i)));
        assert!((0..10_000u32).all(|i| many.get(format!("K{i}").as_bytes()) == Some(i)));
        assert_eq!(many.get(b"K10000"), None);
        assert_eq!(StrTable::new(std::iter::empty()).get(b""), None);
    }
}
