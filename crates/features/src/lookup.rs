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

const FREE: Entry = Entry {
    tag: 0,
    slot: EMPTY,
    len: 0,
    inline: [0; INLINE],
};

pub(crate) struct StrTable {
    entries: Vec<Entry>,
    /// `entries.len() - 1` (a power of two minus one).
    mask: usize,
    /// Keys longer than `INLINE`: 4-byte little-endian length, then the bytes.
    arena: Vec<u8>,
    len: usize,
}

/// Keys of up to this many bytes are hashed and compared as two words ([`short_words`]).
const SHORT: usize = 16;

/// Two words that, with the length, determine a key of at most [`SHORT`] bytes: fixed-size
/// (possibly overlapping) loads of its first and last bytes, no loop and no memmove call.
#[inline(always)]
fn short_words(b: &[u8]) -> (u64, u64) {
    let n = b.len();
    let w8 = |i: usize| {
        b.get(i..i + 8)
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
            .map_or(0, u64::from_le_bytes)
    };
    let w4 = |i: usize| {
        b.get(i..i + 4)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map_or(0, u32::from_le_bytes)
    };
    let at = |i: usize| u64::from(b.get(i).copied().unwrap_or(0));
    match n {
        8.. => (w8(0), w8(n - 8)),
        4..=7 => (u64::from(w4(0)) | u64::from(w4(n - 4)) << 32, 0),
        1..=3 => (at(0) | at(n / 2) << 8 | at(n - 1) << 16, 0),
        0 => (0, 0),
    }
}

/// FxHash-style mixing of 8-byte words, then a final avalanche (the table index uses the low
/// bits, the tag the high ones). Deterministic; only used for lookups.
#[inline(always)]
pub(crate) fn hash_bytes(b: &[u8]) -> u64 {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let mut h = b.len() as u64;
    if b.len() <= SHORT {
        let (w0, w1) = short_words(b);
        h = (h.rotate_left(5) ^ w0).wrapping_mul(K);
        h = (h.rotate_left(5) ^ w1).wrapping_mul(K);
    } else {
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // byte loop, not copy_from_slice: a variable-length copy is a memmove call
            let w = rest
                .iter()
                .enumerate()
                .fold(0u64, |w, (i, &b)| w | u64::from(b) << (8 * i));
            h = (h.rotate_left(5) ^ w).wrapping_mul(K);
        }
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
        let mut t = StrTable {
            entries: vec![FREE; cap],
            mask: cap - 1,
            arena: Vec::new(),
            len: 0,
        };
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
        let mut e = Entry {
            tag: (hash >> 32) as u32,
            slot,
            len: key.len().min(255) as u8,
            inline: [0; INLINE],
        };
        if key.len() <= INLINE {
            e.inline[..key.len()].copy_from_slice(key);
        } else {
            e.inline[..4].copy_from_slice(&(self.arena.len() as u32).to_le_bytes());
            self.arena
                .extend_from_slice(&(key.len() as u32).to_le_bytes());
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
        prefetch_ptr(
            self.entries
                .as_ptr()
                .wrapping_add(hash as usize & self.mask)
                .cast::<u8>(),
        );
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
        let len = key.len();
        // keys of <= SHORT bytes: equal lengths and equal `short_words` mean equal bytes
        let words = if len <= SHORT {
            short_words(key)
        } else {
            (0, 0)
        };
        let mut padded = [0u8; INLINE];
        if len > SHORT && len <= INLINE {
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
            if e.tag == tag && usize::from(e.len) == len.min(255) {
                let same = if len <= SHORT {
                    e.inline.get(..len).map(short_words) == Some(words)
                } else if len <= INLINE {
                    e.inline == padded
                } else {
                    self.long_key(e) == Some(key)
                };
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

/// 64-bit mixing of an integer key (murmur3's finaliser): the table index uses the low bits.
#[inline(always)]
pub(crate) fn hash_u64(k: u64) -> u64 {
    let mut h = k;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// An integer key of [`IntTable`]: its all-ones value marks a free entry.
pub(crate) trait IntKey: Copy + Eq {
    const FREE: Self;
    fn mix(self) -> u64;
}

impl IntKey for u64 {
    const FREE: u64 = u64::MAX;
    #[inline(always)]
    fn mix(self) -> u64 {
        hash_u64(self)
    }
}

impl IntKey for u32 {
    const FREE: u32 = u32::MAX;
    #[inline(always)]
    fn mix(self) -> u64 {
        hash_u64(u64::from(self))
    }
}

/// 8 bytes (`u32` keys, eight per cache line) or 16 (`u64` keys, four per line).
#[derive(Clone, Copy)]
#[repr(C)]
struct IntEntry<K> {
    /// `K::FREE` for a free entry.
    key: K,
    slot: u32,
}

/// A read-only `integer -> slot` table (open addressing, linear probing, at most 3/4 full)
/// for pairs of vocabulary ids and long HS prefixes. Key `K::FREE` is reserved.
pub(crate) struct IntTable<K> {
    entries: Vec<IntEntry<K>>,
    mask: usize,
}

pub(crate) type U64Table = IntTable<u64>;

impl<K: IntKey> IntTable<K> {
    /// A table of `entries`; a repeated key keeps its first slot, key `K::FREE` is ignored.
    pub(crate) fn new(entries: impl IntoIterator<Item = (K, u32)>) -> IntTable<K> {
        let entries: Vec<(K, u32)> = entries.into_iter().collect();
        let cap = (entries.len() + entries.len() / 3 + 1)
            .next_power_of_two()
            .max(8);
        let mut t = IntTable {
            entries: vec![
                IntEntry {
                    key: K::FREE,
                    slot: 0
                };
                cap
            ],
            mask: cap - 1,
        };
        for (k, s) in entries {
            if k == K::FREE {
                continue;
            }
            let mut i = k.mix() as usize & t.mask;
            loop {
                let e = &mut t.entries[i];
                if e.key == K::FREE {
                    *e = IntEntry { key: k, slot: s };
                    break;
                }
                if e.key == k {
                    break;
                }
                i = (i + 1) & t.mask;
            }
        }
        t
    }

    /// Hint the CPU to load the entry line `hash` probes first.
    #[inline(always)]
    pub(crate) fn prefetch(&self, hash: u64) {
        prefetch_ptr(
            self.entries
                .as_ptr()
                .wrapping_add(hash as usize & self.mask)
                .cast::<u8>(),
        );
    }

    /// The slot of `key` (`hash == key.mix()`), if it is in the table.
    #[inline]
    pub(crate) fn get_hashed(&self, key: K, hash: u64) -> Option<u32> {
        let mut i = hash as usize & self.mask;
        loop {
            let e = self.entries[i];
            if e.key == key {
                // a free entry never matches: its key, K::FREE, is never looked up as present
                return (key != K::FREE).then_some(e.slot);
            }
            if e.key == K::FREE {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }

    #[inline]
    pub(crate) fn get(&self, key: K) -> Option<u32> {
        self.get_hashed(key, key.mix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_every_length_differing_in_any_byte_are_told_apart() {
        let base: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for n in 0..=40 {
            keys.push(base[..n].to_vec());
            for i in 0..n {
                let mut k = base[..n].to_vec();
                k[i] = b'#';
                keys.push(k);
            }
        }
        let strs: Vec<String> = keys
            .iter()
            .map(|k| String::from_utf8(k.clone()).expect("ascii"))
            .collect();
        let t = StrTable::new(strs.iter().enumerate().map(|(i, k)| (k.as_str(), i as u32)));
        for (i, k) in strs.iter().enumerate() {
            assert_eq!(t.get(k.as_bytes()), Some(i as u32), "{k:?}");
            let mut other = k.clone().into_bytes();
            other.push(b'!');
            assert_eq!(t.get(&other), None, "{other:?}");
        }
        let half = StrTable::new(strs.iter().step_by(2).map(|k| (k.as_str(), 0)));
        for (i, k) in strs.iter().enumerate() {
            assert_eq!(half.get(k.as_bytes()).is_some(), i % 2 == 0, "{k:?}");
        }
    }

    #[test]
    fn finds_exactly_the_inserted_keys() {
        let long = "a-key-longer-than-twenty-three-bytes|with|parts";
        let long2 = "a-key-longer-than-twenty-three-bytes|with|partz";
        let exactly = "12345678901234567890123"; // INLINE bytes
        let keys = [
            "",
            "a",
            "IMP002301",
            "IMP002301|DCL0001",
            long,
            long2,
            exactly,
            "a|b|c",
            "a|b",
            "b|c",
        ];
        let t = StrTable::new(keys.iter().enumerate().map(|(i, k)| (*k, i as u32)));
        assert_eq!(t.len(), keys.len());
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(t.get(k.as_bytes()), Some(i as u32), "{k:?}");
        }
        let long3 = "a-key-longer-than-twenty-three-bytes|with|party";
        let v = "x".repeat(300);
        for k in [
            "b",
            "IMP002301|",
            "IMP00230",
            "a-key-longer-than-twenty-three-bytes|with|part",
            long3,
            "1234567890123456789012",
            "a\0",
            &v,
        ] {
            assert_eq!(t.get(k.as_bytes()), None, "{k:?}");
        }
        let huge = StrTable::new([(v.as_str(), 7), ("y", 8)]);
        assert_eq!(huge.get(v.as_bytes()), Some(7));
        assert_eq!(huge.get("x".repeat(299).as_bytes()), None);
        let many = StrTable::new(
            (0..10_000u32).map(|i| (Box::leak(format!("K{i}").into_boxed_str()) as &str, i)),
        );
        assert!((0..10_000u32).all(|i| many.get(format!("K{i}").as_bytes()) == Some(i)));
        assert_eq!(many.get(b"K10000"), None);
        assert_eq!(StrTable::new(std::iter::empty()).get(b""), None);
    }

    #[test]
    fn u64_table_finds_exactly_the_inserted_keys() {
        let keys: Vec<u64> = (0..5_000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (i % 40))
            .collect();
        let t = U64Table::new(keys.iter().enumerate().map(|(i, &k)| (k, i as u32)));
        let first = |k: u64| keys.iter().position(|&x| x == k).map(|i| i as u32);
        assert!(keys.iter().all(|&k| t.get(k) == first(k)));
        assert!((0..2_000u64)
            .map(|i| i * 7 + 1_000_000_007)
            .all(|k| t.get(k) == first(k)));
        assert_eq!(t.get(u64::MAX), None);
        let with_max = U64Table::new([(u64::MAX, 1), (0, 2), (0, 3)]);
        assert_eq!(
            (with_max.get(u64::MAX), with_max.get(0), with_max.get(1)),
            (None, Some(2), None)
        );
        assert_eq!(U64Table::new(std::iter::empty()).get(0), None);
        let narrow = IntTable::<u32>::new((0..3_000u32).map(|i| (i * 977, i)));
        assert!((0..3_000u32).all(|i| narrow.get(i * 977) == Some(i)));
        assert!((0..3_000u32).all(|i| narrow.get(i * 977 + 1).is_none()));
        assert_eq!(IntTable::<u32>::new([(u32::MAX, 1)]).get(u32::MAX), None);
    }
}
