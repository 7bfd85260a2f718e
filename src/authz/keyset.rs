//! A set of catalog keys as a fixed bitset: unions and subset tests cost a few instructions.

/// Largest catalog the bitset can hold.
pub const MAX_KEYS: usize = 256;

/// Index of a key in the loaded catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyIndex(pub(crate) u16);

/// A set of keys of one catalog.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeySet([u64; MAX_KEYS / 64]);

impl KeySet {
    /// The empty set.
    pub const EMPTY: KeySet = KeySet([0; MAX_KEYS / 64]);

    pub fn insert(&mut self, key: KeyIndex) {
        let i = key.0 as usize;
        self.0[i / 64] |= 1 << (i % 64);
    }

    pub fn contains(&self, key: KeyIndex) -> bool {
        let i = key.0 as usize;
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    pub fn union(&self, other: &KeySet) -> KeySet {
        let mut out = *self;
        out.union_with(other);
        out
    }

    pub fn union_with(&mut self, other: &KeySet) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a |= b;
        }
    }

    pub fn intersection(&self, other: &KeySet) -> KeySet {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(other.0.iter()) {
            *a &= b;
        }
        out
    }

    pub fn difference(&self, other: &KeySet) -> KeySet {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(other.0.iter()) {
            *a &= !b;
        }
        out
    }

    pub fn is_subset_of(&self, other: &KeySet) -> bool {
        self.0.iter().zip(other.0.iter()).all(|(a, b)| a & !b == 0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Members in catalog order.
    pub fn iter(&self) -> impl Iterator<Item = KeyIndex> + '_ {
        self.0.iter().enumerate().flat_map(|(w, bits)| {
            (0..64)
                .filter(move |b| bits & (1 << b) != 0)
                .map(move |b| KeyIndex((w * 64 + b) as u16))
        })
    }
}

impl FromIterator<KeyIndex> for KeySet {
    fn from_iter<I: IntoIterator<Item = KeyIndex>>(iter: I) -> Self {
        let mut set = KeySet::EMPTY;
        for key in iter {
            set.insert(key);
        }
        set
    }
}
