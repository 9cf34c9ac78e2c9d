//! The fuzzer's bytes as a stream of choices, and the writer that encodes the checked-in seeds in
//! the same layout. Reading past the end yields zeros, so every input is a valid (if short) script.

use cryptoki_sys::{CK_ULONG, CK_UNAVAILABLE_INFORMATION};

/// Values worth trying wherever the C caller hands a `CK_ULONG`: boundaries of the module's own
/// limits (`MAX_LEN` is 1 GiB) and of the type.
pub const SPECIAL_ULONGS: &[CK_ULONG] = &[
    0,
    1,
    2,
    7,
    8,
    15,
    16,
    17,
    24,
    31,
    32,
    33,
    48,
    64,
    255,
    256,
    512,
    513,
    1024,
    2048,
    4096,
    (1 << 30) - 1,
    1 << 30,
    (1 << 30) + 1,
    1 << 31,
    1 << 32,
    (1 << 63) - 1,
    1 << 63,
    CK_UNAVAILABLE_INFORMATION - 1,
    CK_UNAVAILABLE_INFORMATION,
];

/// Tags of [`Reader::ulong`].
pub const ULONG_U8: u8 = 0;
pub const ULONG_U16: u8 = 1;
pub const ULONG_U32: u8 = 2;
pub const ULONG_U64: u8 = 3;
pub const ULONG_SPECIAL: u8 = 4;
pub const ULONG_VENDOR: u8 = 5;
const ULONG_TAGS: u8 = 6;

pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// True for one byte value in `n` (0, `n`, 2`n`, …).
    pub fn one_in(&mut self, n: u8) -> bool {
        self.u8().is_multiple_of(n)
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    fn le<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in &mut out {
            *b = self.u8();
        }
        out
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.le())
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.le())
    }

    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.le())
    }

    /// A length in `0..=max`, from two bytes.
    pub fn len(&mut self, max: usize) -> usize {
        usize::from(self.u16()) % (max + 1)
    }

    /// Exactly `n` bytes: what is left of the input, padded with zeros.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let take = n.min(self.data.len());
        let (head, rest) = self.data.split_at(take);
        self.data = rest;
        let mut out = head.to_vec();
        out.resize(n, 0);
        out
    }

    /// A length in `0..=max` followed by that many bytes.
    pub fn blob(&mut self, max: usize) -> Vec<u8> {
        let n = self.len(max);
        self.bytes(n)
    }

    /// One of `items` (the first when `items` is empty is impossible: callers pass non-empty).
    pub fn choose<T: Copy>(&mut self, items: &[T]) -> T {
        items[usize::from(self.u8()) % items.len()]
    }

    /// A `CK_ULONG` as a C caller might pass it: small, 16/32/64-bit, a boundary value, or a
    /// vendor-range value.
    pub fn ulong(&mut self) -> CK_ULONG {
        match self.u8() % ULONG_TAGS {
            ULONG_U8 => CK_ULONG::from(self.u8()),
            ULONG_U16 => CK_ULONG::from(self.u16()),
            ULONG_U32 => CK_ULONG::from(self.u32()),
            ULONG_U64 => self.u64(),
            ULONG_SPECIAL => self.choose(SPECIAL_ULONGS),
            _ => 0x8000_0000 | CK_ULONG::from(self.u16()),
        }
    }
}

/// Encodes choices in [`Reader`]'s layout (for the seed corpus).
#[derive(Default)]
pub struct Writer {
    pub out: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, b: u8) -> &mut Self {
        self.out.push(b);
        self
    }

    pub fn bool(&mut self, b: bool) -> &mut Self {
        self.u8(u8::from(b))
    }

    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// The length for [`Reader::len`] (taken modulo `max + 1` on reading).
    pub fn len(&mut self, n: usize) -> &mut Self {
        self.u16(u16::try_from(n).unwrap_or(u16::MAX))
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.out.extend_from_slice(b);
        self
    }

    pub fn blob(&mut self, b: &[u8]) -> &mut Self {
        self.len(b.len()).bytes(b)
    }

    /// The index byte [`Reader::choose`] reads to pick `items[index]`.
    pub fn index(&mut self, index: usize) -> &mut Self {
        self.u8(u8::try_from(index).unwrap_or(u8::MAX))
    }

    /// A full 64-bit [`Reader::ulong`].
    pub fn ulong(&mut self, v: CK_ULONG) -> &mut Self {
        self.u8(ULONG_U64).u64(v)
    }
}
