//! The caller's memory, as a C application would lay it out: every non-NULL pointer handed to the
//! module points to a live allocation of exactly the stated length (so AddressSanitizer sees any
//! read or write past it), or the stated length is one the module promises to refuse before
//! touching memory (above its 1 GiB `MAX_LEN`). Allocations live until the [`Arena`] is dropped,
//! at the end of an iteration.

use std::any::Any;

use cryptoki_sys::CK_ULONG;

use crate::input::Reader;

/// The module refuses any length above this (src/ffi/ptr.rs) before reading or writing.
pub const MAX_LEN: CK_ULONG = 1 << 30;

/// Lengths above [`MAX_LEN`], paired with small real buffers: the module must refuse them
/// without dereferencing.
pub const HUGE_LENS: &[CK_ULONG] = &[MAX_LEN + 1, 1 << 40, CK_ULONG::MAX - 1, CK_ULONG::MAX];

#[derive(Default)]
pub struct Arena {
    bytes: Vec<Box<[u8]>>,
    values: Vec<Box<dyn Any>>,
}

impl Arena {
    /// A fresh allocation holding exactly `data` (a zero-length one is a dangling, non-NULL
    /// pointer: fine with a zero length).
    pub fn buf(&mut self, data: &[u8]) -> *mut u8 {
        self.bytes.push(data.into());
        self.bytes
            .last_mut()
            .map_or(std::ptr::null_mut(), |b| b.as_mut_ptr())
    }

    pub fn zeroed(&mut self, n: usize) -> *mut u8 {
        self.buf(&vec![0u8; n])
    }

    /// Keeps `value` alive and returns a pointer to it (heap memory: moving the box later does
    /// not move it).
    pub fn keep<T: 'static>(&mut self, value: T) -> *mut T {
        self.values.push(Box::new(value));
        self.values
            .last_mut()
            .and_then(|b| b.downcast_mut::<T>())
            .map_or(std::ptr::null_mut(), |v| v as *mut T)
    }

    /// Keeps `items` as one array of exactly their number and returns its first element.
    pub fn array<T: 'static>(&mut self, items: Vec<T>) -> *mut T {
        let boxed: Box<[T]> = items.into_boxed_slice();
        let p = self.keep(boxed);
        if p.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: `p` points to the live `Box<[T]>` just stored.
        unsafe { (*p).as_mut_ptr() }
    }
}

/// A `(pointer, length)` pair inside a parameter structure or a template entry.
#[derive(Clone, Copy)]
pub struct Field {
    pub ptr: *mut u8,
    pub len: CK_ULONG,
}

impl Field {
    pub fn null() -> Self {
        Field {
            ptr: std::ptr::null_mut(),
            len: 0,
        }
    }

    pub fn of(arena: &mut Arena, data: &[u8]) -> Self {
        Field {
            ptr: arena.buf(data),
            len: data.len() as CK_ULONG,
        }
    }
}

/// Modes of [`field`].
pub const FIELD_EXACT: u8 = 0;
pub const FIELD_NULL: u8 = 1;
pub const FIELD_NULL_WITH_LEN: u8 = 2;
pub const FIELD_SHORTER: u8 = 3;
pub const FIELD_HUGE: u8 = 4;
pub const FIELD_GOOD: u8 = 5;
const FIELD_MODES: u8 = 6;

/// A fuzzed `(pointer, length)`: an exact buffer of up to `max` fuzzed bytes, NULL with a zero
/// or non-zero length, a buffer longer than the stated length, a small buffer with a length above
/// `MAX_LEN`, or `good` (a meaningful value the target knows) when given.
pub fn field(r: &mut Reader, arena: &mut Arena, max: usize, good: Option<&[u8]>) -> Field {
    match r.u8() % FIELD_MODES {
        FIELD_NULL => Field::null(),
        FIELD_NULL_WITH_LEN => Field {
            ptr: std::ptr::null_mut(),
            len: r.ulong(),
        },
        FIELD_SHORTER => {
            let data = r.blob(max);
            let shorter = r.len(data.len());
            Field {
                ptr: arena.buf(&data),
                len: shorter as CK_ULONG,
            }
        }
        FIELD_HUGE => {
            let data = r.blob(16);
            Field {
                ptr: arena.buf(&data),
                len: r.choose(HUGE_LENS),
            }
        }
        FIELD_GOOD if good.is_some() => Field::of(arena, good.unwrap_or_default()),
        _ => {
            let data = r.blob(max);
            Field::of(arena, &data)
        }
    }
}
