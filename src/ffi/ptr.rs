//! The small set of helpers that turn the caller's raw memory into Rust values (PKCS#11 3.0 §5.2).
//! All `unsafe` lives in `ffi`, and raw pointers become owned or borrowed Rust values here, at the
//! boundary: every export goes through these; no other code reads or writes through a raw pointer.
//!
//! Rules encoded once here:
//! - a NULL pointer where the spec requires one → `CKR_ARGUMENTS_BAD`;
//! - a NULL pointer with a zero length is an empty slice;
//! - a length above [`MAX_LEN`] bytes is refused, so a garbage length never makes us read or write
//!   wild memory (and never overflows `isize`);
//! - a misaligned structure pointer is refused rather than dereferenced;
//! - the two-call output rule goes through [`OutBuf`] and its length is written back only on
//!   success or `CKR_BUFFER_TOO_SMALL`.

use std::ffi::c_void;
use std::mem::size_of;
use std::ops::Deref;
use std::ptr::NonNull;

use cryptoki_sys::{
    CKF_HKDF_SALT_DATA, CKF_HKDF_SALT_KEY, CKF_HKDF_SALT_NULL, CKZ_DATA_SPECIFIED,
    CK_AES_CBC_ENCRYPT_DATA_PARAMS, CK_ATTRIBUTE, CK_BYTE, CK_CCM_MESSAGE_PARAMS, CK_CCM_PARAMS,
    CK_CHACHA20_PARAMS, CK_DERIVED_KEY, CK_ECDH1_DERIVE_PARAMS, CK_EDDSA_PARAMS,
    CK_GCM_MESSAGE_PARAMS, CK_GCM_PARAMS, CK_HKDF_PARAMS, CK_KEY_DERIVATION_STRING_DATA,
    CK_MECHANISM, CK_MECHANISM_TYPE, CK_OBJECT_HANDLE, CK_PRF_DATA_PARAM, CK_RSA_PKCS_OAEP_PARAMS,
    CK_RSA_PKCS_PSS_PARAMS, CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS,
    CK_SALSA20_CHACHA20_POLY1305_PARAMS, CK_SP800_108_BYTE_ARRAY, CK_SP800_108_COUNTER_FORMAT,
    CK_SP800_108_DKM_LENGTH, CK_SP800_108_DKM_LENGTH_FORMAT, CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS,
    CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS, CK_SP800_108_FEEDBACK_KDF_PARAMS,
    CK_SP800_108_ITERATION_VARIABLE, CK_SP800_108_KDF_PARAMS, CK_SP800_108_KEY_HANDLE,
    CK_SP800_108_OPTIONAL_COUNTER, CK_ULONG, CK_UNAVAILABLE_INFORMATION,
};
use zeroize::Zeroizing;

use crate::api::object::AttributeRequest;
use crate::error::{Error, Result, Rv};
use crate::types::{
    is_attribute_array, Attribute, CounterFormat, HkdfSalt, Mechanism, MechanismParam,
    MessageParam, OutBuf, ParamShape, PrfData, Template,
};

/// The largest buffer, in bytes, we accept from a caller (1 GiB). Nothing sqlhsm handles comes
/// close; a larger length is a garbage value, not a request.
pub(crate) const MAX_LEN: usize = 1 << 30;

/// A `usize` as the caller's `CK_ULONG` (lossless on every platform we build for).
pub(crate) fn to_ulong(n: usize) -> CK_ULONG {
    CK_ULONG::try_from(n).unwrap_or(CK_ULONG::MAX)
}

/// The number of `T`s a caller's count stands for, refused when the bytes exceed [`MAX_LEN`].
fn checked_count<T>(count: CK_ULONG) -> Result<usize> {
    usize::try_from(count)
        .ok()
        .filter(|&n| n.saturating_mul(size_of::<T>().max(1)) <= MAX_LEN)
        .ok_or(Error::Pkcs11(Rv::ARGUMENTS_BAD))
}

/// A required pointer: NULL or misaligned → `CKR_ARGUMENTS_BAD`.
fn non_null<T>(p: *mut T) -> Result<NonNull<T>> {
    match NonNull::new(p) {
        Some(p) if p.as_ptr().is_aligned() => Ok(p),
        _ => Err(Rv::ARGUMENTS_BAD)?,
    }
}

/// Reads a required input structure (`CK_C_INITIALIZE_ARGS`, `CK_MECHANISM`, …) by value.
///
/// # Safety
/// When non-NULL, `p` must be valid for reads of one `T`.
pub(crate) unsafe fn read<T: Copy>(p: *const T) -> Result<T> {
    let p = non_null(p.cast_mut())?;
    // SAFETY: non-NULL and aligned (checked); valid for reads by the caller's contract.
    Ok(unsafe { p.as_ptr().read() })
}

/// Reads an optional input structure: NULL → `None`.
///
/// # Safety
/// As [`read`].
pub(crate) unsafe fn read_opt<T: Copy>(p: *const T) -> Result<Option<T>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { read(p) }.map(Some)
}

/// A checked output location (`phSession`, `pInfo`, `pulCount`, …). Holding the raw pointer
/// rather than a `&mut T` keeps two output arguments that the caller made alias (say the same
/// handle pointer twice) from becoming two live `&mut`.
pub(crate) struct Out<T> {
    p: NonNull<T>,
}

impl<T> Out<T> {
    /// Stores `value` in the caller's location.
    pub(crate) fn set(&self, value: T) {
        // SAFETY: `out` only builds an `Out` from a non-NULL, aligned pointer that its caller
        // promised is valid for writes for the whole export call, which `Out` does not outlive.
        unsafe { self.p.as_ptr().write(value) }
    }
}

impl<T: Copy> Out<T> {
    /// What the caller left in the location (the capacity in a `pulDataLen`, say).
    pub(crate) fn get(&self) -> T {
        // SAFETY: as in `set`; `pulXxxLen`-style locations are in/out, so also valid for reads.
        unsafe { self.p.as_ptr().read() }
    }
}

/// A required output location: NULL or misaligned → `CKR_ARGUMENTS_BAD`.
///
/// # Safety
/// When non-NULL, `p` must be valid for reads and writes of one `T` for as long as the returned
/// `Out` lives, and not be accessed otherwise meanwhile.
pub(crate) unsafe fn out<T>(p: *mut T) -> Result<Out<T>> {
    Ok(Out { p: non_null(p)? })
}

/// A slice of the caller's `T`s: NULL with count 0 is empty; NULL otherwise, misaligned, or
/// larger than [`MAX_LEN`] bytes → `CKR_ARGUMENTS_BAD`.
///
/// # Safety
/// When non-NULL and `count > 0`, `p` must be valid for reads of `count` `T`s for `'a`, with no
/// writer meanwhile.
pub(crate) unsafe fn slice<'a, T>(p: *const T, count: CK_ULONG) -> Result<&'a [T]> {
    let count = checked_count::<T>(count)?;
    if count == 0 {
        return Ok(&[]);
    }
    let p = non_null(p.cast_mut())?;
    // SAFETY: non-NULL, aligned, at most MAX_LEN bytes (so within isize), and valid for reads of
    // `count` elements for 'a by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(p.as_ptr(), count) })
}

/// The writable counterpart of [`slice`].
///
/// # Safety
/// When non-NULL and `count > 0`, `p` must be valid for reads and writes of `count` `T`s for `'a`,
/// with no other access meanwhile.
pub(crate) unsafe fn slice_mut<'a, T>(p: *mut T, count: CK_ULONG) -> Result<&'a mut [T]> {
    let count = checked_count::<T>(count)?;
    if count == 0 {
        return Ok(&mut []);
    }
    let p = non_null(p)?;
    // SAFETY: as in `slice`, and exclusively ours for 'a by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), count) })
}

/// Input bytes (`pData`/`ulDataLen`, a PIN, a seed): see [`slice`].
///
/// # Safety
/// As [`slice`].
pub(crate) unsafe fn bytes<'a>(p: *const CK_BYTE, len: CK_ULONG) -> Result<&'a [u8]> {
    // SAFETY: forwarded contract.
    unsafe { slice(p, len) }
}

/// Optional input bytes: NULL → `None` whatever the length (`C_Login`'s protected path).
///
/// # Safety
/// As [`slice`].
pub(crate) unsafe fn bytes_opt<'a>(p: *const CK_BYTE, len: CK_ULONG) -> Result<Option<&'a [u8]>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { bytes(p, len) }.map(Some)
}

/// A copy of the caller's 32-byte, blank-padded token label (`C_InitToken`).
///
/// # Safety
/// When non-NULL, `p` must be valid for reads of 32 bytes.
pub(crate) unsafe fn label(p: *const CK_BYTE) -> Result<[u8; 32]> {
    // SAFETY: forwarded contract; `[u8; 32]` has alignment 1.
    unsafe { read(p.cast::<[u8; 32]>()) }
}

/// Input bytes that may share memory with the output buffer (C_Encrypt explicitly allows
/// `pData == pEncryptedData`). Overlapping input is copied first, so we never hold a `&[u8]` and a
/// `&mut [u8]` to the same bytes.
pub(crate) enum Input<'a> {
    Borrowed(&'a [u8]),
    Copied(Zeroizing<Vec<u8>>),
}

impl Deref for Input<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Input::Borrowed(bytes) => bytes,
            Input::Copied(bytes) => bytes,
        }
    }
}

/// The caller's output buffer under the two-call rule: `(pData, pulDataLen)` with `pulDataLen`
/// required, `pData` NULL for a length query, `*pulDataLen` the capacity otherwise.
pub(crate) struct CallerOut<'a> {
    pub(crate) buf: OutBuf<'a>,
    len: Out<CK_ULONG>,
}

impl CallerOut<'_> {
    /// Writes the length back as §5.2 asks — after success (a query included) and after
    /// `CKR_BUFFER_TOO_SMALL`; other failures leave `*pulDataLen` alone — and passes `result` on.
    pub(crate) fn finish(self, result: Result<()>) -> Result<()> {
        let write_back = match &result {
            Ok(()) => true,
            Err(error) => error.rv() == Rv::BUFFER_TOO_SMALL,
        };
        if write_back {
            self.len.set(to_ulong(self.buf.len()));
        }
        result
    }
}

/// Builds a [`CallerOut`] from `(pData, pulDataLen)`.
///
/// # Safety
/// `len` as [`out`]; when `p` is non-NULL it must be valid for writes of `*len` bytes for `'a`,
/// with no other access meanwhile.
pub(crate) unsafe fn out_buf<'a>(p: *mut CK_BYTE, len: *mut CK_ULONG) -> Result<CallerOut<'a>> {
    // SAFETY: forwarded contract.
    let len = unsafe { out(len) }?;
    let buf = if p.is_null() {
        OutBuf::query()
    } else {
        // SAFETY: forwarded contract; the capacity is the caller's `*pulDataLen`.
        OutBuf::buffer(unsafe { slice_mut(p, len.get()) }?)
    };
    Ok(CallerOut { buf, len })
}

/// Input bytes plus an output buffer for the `C_Encrypt`-shaped functions; overlapping input is
/// copied before the output buffer is borrowed.
///
/// # Safety
/// As [`bytes`] for `(data, data_len)` and [`out_buf`] for `(out, out_len)`.
pub(crate) unsafe fn in_out<'a>(
    data: *const CK_BYTE,
    data_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> Result<(Input<'a>, CallerOut<'a>)> {
    // SAFETY: forwarded contract.
    let input = unsafe { bytes(data, data_len) }?;
    // SAFETY: forwarded contract (the location is read only for its value).
    let capacity = unsafe { self::out(out_len) }?.get();
    let overlaps = !out.is_null() && {
        let (in_start, in_end) = (
            input.as_ptr() as usize,
            input.as_ptr() as usize + input.len(),
        );
        let out_start = out as usize;
        let out_end = out_start.saturating_add(checked_count::<u8>(capacity)?);
        in_start < out_end && out_start < in_end
    };
    let input = if overlaps {
        Input::Copied(Zeroizing::new(input.to_vec()))
    } else {
        Input::Borrowed(input)
    };
    // SAFETY: forwarded contract; after this point the overlapping input is only read from our
    // copy.
    let output = unsafe { out_buf(out, out_len) }?;
    Ok((input, output))
}

/// Copies `items` into the caller's list under the two-call rule for lists (`C_GetSlotList`,
/// `C_GetMechanismList`, `C_GetInterfaceList`): NULL list → count only; `*count` too small →
/// `CKR_BUFFER_TOO_SMALL` with the count; otherwise copy and set the count.
///
/// # Safety
/// `count` as [`out`]; when `list` is non-NULL it must be valid for writes of `*count` `T`s.
pub(crate) unsafe fn fill_list<T: Copy>(
    items: &[T],
    list: *mut T,
    count: *mut CK_ULONG,
) -> Result<()> {
    // SAFETY: forwarded contract.
    let count = unsafe { out(count) }?;
    if list.is_null() {
        count.set(to_ulong(items.len()));
        return Ok(());
    }
    if usize::try_from(count.get()).is_ok_and(|capacity| capacity < items.len()) {
        count.set(to_ulong(items.len()));
        Err(Rv::BUFFER_TOO_SMALL)?
    }
    // SAFETY: forwarded contract; we write only `items.len()` ≤ `*count` elements.
    let dst = unsafe { slice_mut(list, to_ulong(items.len())) }?;
    dst.copy_from_slice(items);
    count.set(to_ulong(items.len()));
    Ok(())
}

/// Decodes a template (`CK_ATTRIBUTE_PTR`, count) into owned attributes. A NULL `pValue` with a
/// non-zero `ulValueLen` → `CKR_ARGUMENTS_BAD`.
///
/// # Safety
/// As [`slice`] for the array; each entry's `pValue` as [`bytes`] for its `ulValueLen`.
pub(crate) unsafe fn template(p: *const CK_ATTRIBUTE, count: CK_ULONG) -> Result<Template> {
    // SAFETY: forwarded contract.
    let attributes = unsafe { slice(p, count) }?;
    attributes
        .iter()
        .map(|a| {
            if is_attribute_array(a.type_) {
                // SAFETY: forwarded contract for each entry.
                return unsafe { attribute_array(a) };
            }
            // SAFETY: forwarded contract for each entry.
            let value = unsafe { bytes(a.pValue.cast::<u8>(), a.ulValueLen) }?;
            Ok(Attribute::new(a.type_, value.to_vec()))
        })
        .collect()
}

/// The largest attribute array, in bytes of its encoding, sqlhsm keeps (64 KiB): far above any
/// real template, and the size of the scratch buffer `C_GetAttributeValue` reads one into.
const MAX_ARRAY_BYTES: usize = 1 << 16;

/// An attribute whose value is an array of attributes ([`is_attribute_array`], PKCS#11 3.0
/// §4.1.3: `pValue` points to `CK_ATTRIBUTE`s, `ulValueLen` is their size in bytes), encoded by
/// [`crate::types::encode_attribute_array`]. A length that is not a whole number of entries, an
/// array inside the array, or an encoding over [`MAX_ARRAY_BYTES`] is
/// `CKR_ATTRIBUTE_VALUE_INVALID`.
///
/// # Safety
/// `a.pValue` valid for reads of `a.ulValueLen` bytes of `CK_ATTRIBUTE`s, each valid as in
/// [`template`].
unsafe fn attribute_array(a: &CK_ATTRIBUTE) -> Result<Attribute> {
    let entry = size_of::<CK_ATTRIBUTE>() as CK_ULONG;
    if !a.ulValueLen.is_multiple_of(entry) {
        Err(Rv::ATTRIBUTE_VALUE_INVALID)?
    }
    // SAFETY: forwarded contract.
    let inner = unsafe {
        slice(
            a.pValue.cast::<CK_ATTRIBUTE>().cast_const(),
            a.ulValueLen / entry,
        )
    }?;
    let attrs = inner
        .iter()
        .map(|i| {
            if is_attribute_array(i.type_) {
                Err(Rv::ATTRIBUTE_VALUE_INVALID)?
            }
            // SAFETY: forwarded contract.
            let value = unsafe { bytes(i.pValue.cast::<u8>(), i.ulValueLen) }?;
            Ok(Attribute::new(i.type_, value.to_vec()))
        })
        .collect::<Result<Vec<_>>>()?;
    let encoded = crate::types::encode_attribute_array(&attrs);
    if encoded.len() > MAX_ARRAY_BYTES {
        Err(Rv::ATTRIBUTE_VALUE_INVALID)?
    }
    Ok(Attribute::new(a.type_, encoded))
}

/// Runs `fill` over the `C_GetAttributeValue` requests built from the caller's template (a NULL
/// `pValue` is a length query), then writes each `ulValueLen` back: `CK_UNAVAILABLE_INFORMATION`
/// for an entry marked unavailable, else the entry's [`OutBuf`] length. Lengths are written on
/// success and on the three template-wide answers of §5.7 (`CKR_ATTRIBUTE_SENSITIVE`,
/// `CKR_ATTRIBUTE_TYPE_INVALID`, `CKR_BUFFER_TOO_SMALL`), after which `fill`'s result is returned.
///
/// # Safety
/// When `count > 0`, `p` must be valid for reads and writes of `count` attributes, each non-NULL
/// `pValue` valid for writes of its `ulValueLen` bytes, none overlapping the array or each other.
pub(crate) unsafe fn attribute_requests<F>(
    p: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    fill: F,
) -> Result<()>
where
    F: FnOnce(&mut [AttributeRequest<'_>]) -> Result<()>,
{
    // The entries are copied out and the lengths written back through `p`, so no reference to the
    // array is alive while the value buffers are borrowed.
    // SAFETY: forwarded contract.
    let entries = unsafe { slice(p, count) }?.to_vec();
    // An attribute array is read into a scratch buffer and written into the caller's array of
    // CK_ATTRIBUTEs afterwards ([`write_attribute_array`]).
    let mut scratch: Vec<Vec<u8>> = entries
        .iter()
        .map(|a| match is_attribute_array(a.type_) {
            true => vec![0u8; MAX_ARRAY_BYTES],
            false => Vec::new(),
        })
        .collect();
    let mut scratch_bufs = scratch.iter_mut();
    let mut requests = entries
        .iter()
        .map(|a| {
            let scratch = scratch_bufs.next().ok_or(Rv::GENERAL_ERROR)?;
            let out = if is_attribute_array(a.type_) {
                // The caller's array is written later; its length is checked now as a plain
                // value's is, so an absurd length is refused before anything is read through it.
                if !a.pValue.is_null() && a.ulValueLen != CK_UNAVAILABLE_INFORMATION {
                    checked_count::<u8>(a.ulValueLen)?;
                }
                OutBuf::buffer(scratch.as_mut_slice())
            } else if a.pValue.is_null() {
                OutBuf::query()
            } else if a.ulValueLen == CK_UNAVAILABLE_INFORMATION {
                // A template reused after an earlier call marked this entry unavailable: its
                // capacity is unknown, so nothing fits and nothing is written.
                OutBuf::buffer(&mut [])
            } else {
                // SAFETY: forwarded contract.
                OutBuf::buffer(unsafe { slice_mut(a.pValue.cast::<u8>(), a.ulValueLen) }?)
            };
            Ok(AttributeRequest {
                kind: a.type_,
                out,
                unavailable: false,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut result = fill(&mut requests);
    let mut lengths: Vec<CK_ULONG> = requests
        .iter()
        .map(|r| {
            if r.unavailable {
                CK_UNAVAILABLE_INFORMATION
            } else {
                to_ulong(r.out.len())
            }
        })
        .collect();
    drop(requests);
    for (i, a) in entries.iter().enumerate() {
        if !is_attribute_array(a.type_) || lengths[i] == CK_UNAVAILABLE_INFORMATION {
            continue;
        }
        let encoded = &scratch[i][..usize::try_from(lengths[i]).unwrap_or(0)];
        // SAFETY: forwarded contract: the entry's pValue, when non-NULL, holds ulValueLen bytes
        // of CK_ATTRIBUTEs whose buffers the caller lets us write.
        let (len, fits) = unsafe { write_attribute_array(a, encoded) }?;
        lengths[i] = len;
        if !fits && result.is_ok() {
            result = Err(Rv::BUFFER_TOO_SMALL.into());
        }
    }
    let per_entry = match &result {
        Ok(()) => true,
        Err(e) => [
            Rv::ATTRIBUTE_SENSITIVE,
            Rv::ATTRIBUTE_TYPE_INVALID,
            Rv::BUFFER_TOO_SMALL,
        ]
        .contains(&e.rv()),
    };
    if per_entry {
        for (i, len) in lengths.into_iter().enumerate() {
            // SAFETY: `slice` accepted `p` as non-NULL and aligned for `count` > `i` entries, and
            // the caller lets us write them.
            unsafe { (*p.add(i)).ulValueLen = len };
        }
    }
    result
}

/// Writes an attribute array (`encoded`, as [`crate::types::encode_attribute_array`] made it)
/// into the caller's entry by the rules of §5.7 applied one level down: a NULL `pValue` asks
/// for the size of the array (`count × sizeof(CK_ATTRIBUTE)`); an array with room for fewer
/// entries gets that size and no entries; otherwise each entry gets its type and, as for a
/// plain attribute, its length (NULL `pValue`), its value (room enough) or
/// `CK_UNAVAILABLE_INFORMATION` (too small). Returns the outer length and whether everything
/// fit (else `CKR_BUFFER_TOO_SMALL`).
///
/// # Safety
/// `a.pValue`, when non-NULL, valid for reads and writes of `a.ulValueLen` bytes of
/// `CK_ATTRIBUTE`s, each non-NULL inner `pValue` valid for writes of its `ulValueLen` bytes.
unsafe fn write_attribute_array(a: &CK_ATTRIBUTE, encoded: &[u8]) -> Result<(CK_ULONG, bool)> {
    let attrs = crate::types::decode_attribute_array(encoded)?;
    let needed = to_ulong(attrs.len().saturating_mul(size_of::<CK_ATTRIBUTE>()));
    if a.pValue.is_null() {
        return Ok((needed, true));
    }
    // `CK_UNAVAILABLE_INFORMATION` from an earlier call: capacity unknown, nothing fits.
    if a.ulValueLen < needed || a.ulValueLen == CK_UNAVAILABLE_INFORMATION {
        return Ok((needed, false));
    }
    let array = a.pValue.cast::<CK_ATTRIBUTE>();
    let mut fits = true;
    for (i, attr) in attrs.iter().enumerate() {
        // SAFETY: `array` holds at least `attrs.len()` entries (checked above); each is copied
        // out, its value buffer borrowed alone, and the entry written back.
        let mut entry = unsafe { array.add(i).read_unaligned() };
        entry.type_ = attr.kind;
        if entry.pValue.is_null() {
            entry.ulValueLen = to_ulong(attr.value.len());
        } else if usize::try_from(entry.ulValueLen).is_ok_and(|cap| cap >= attr.value.len()) {
            // SAFETY: forwarded contract.
            let out = unsafe { slice_mut(entry.pValue.cast::<u8>(), to_ulong(attr.value.len())) }?;
            out.copy_from_slice(&attr.value);
            entry.ulValueLen = to_ulong(attr.value.len());
        } else {
            entry.ulValueLen = CK_UNAVAILABLE_INFORMATION;
            fits = false;
        }
        // SAFETY: as above.
        unsafe { array.add(i).write_unaligned(entry) };
    }
    Ok((needed, fits))
}

/// Decodes a required `CK_MECHANISM_PTR`, its parameter included.
///
/// # Safety
/// When non-NULL, `p` must be valid for reads of a `CK_MECHANISM` whose `pParameter` is valid
/// for reads of `ulParameterLen` bytes and, for the structures decoded here, whose inner
/// pointers are valid for their stated lengths.
pub(crate) unsafe fn mechanism(p: *const CK_MECHANISM) -> Result<Mechanism> {
    // SAFETY: forwarded contract.
    let m = unsafe { read(p) }?;
    // SAFETY: forwarded contract.
    let param = unsafe { mechanism_param(m.mechanism, m.pParameter, m.ulParameterLen) }?;
    Ok(Mechanism {
        kind: m.mechanism,
        param,
    })
}

/// Decodes the `CK_MECHANISM_PTR` of a `C_*Init`, where NULL is not an error: it asks for the
/// active operation to be ended (PKCS#11 3.0 §5.8 ff.) and comes back as `None`.
///
/// # Safety
/// As [`mechanism`].
pub(crate) unsafe fn mechanism_opt(p: *const CK_MECHANISM) -> Result<Option<Mechanism>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { mechanism(p) }.map(Some)
}

fn param_invalid(_: Error) -> Error {
    Error::Pkcs11(Rv::MECHANISM_PARAM_INVALID)
}

/// A parameter structure by value; its size must be exactly `size_of::<T>()`.
///
/// # Safety
/// `p` non-NULL and valid for reads of `len` bytes.
unsafe fn param_struct<T: Copy>(p: *const c_void, len: CK_ULONG) -> Result<T> {
    if usize::try_from(len).ok() != Some(size_of::<T>()) {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    }
    // SAFETY: `len` bytes are readable (caller's contract) and `len == size_of::<T>()`; the
    // caller's parameter buffer may be any byte buffer, so read without assuming alignment.
    Ok(unsafe { p.cast::<T>().read_unaligned() })
}

/// Bytes a parameter structure points to; any pointer/length problem is the parameter's fault.
///
/// # Safety
/// As [`bytes`].
unsafe fn param_bytes(p: *const CK_BYTE, len: CK_ULONG) -> Result<Vec<u8>> {
    // SAFETY: forwarded contract.
    Ok(unsafe { bytes(p, len) }.map_err(param_invalid)?.to_vec())
}

/// Reads the parameter by the shape the mechanism registry declares for `kind` — one decoder per
/// shape, none per mechanism.
///
/// # Safety
/// As [`mechanism`], for the parameter alone.
unsafe fn mechanism_param(
    kind: CK_MECHANISM_TYPE,
    p: *const c_void,
    len: CK_ULONG,
) -> Result<MechanismParam> {
    if p.is_null() {
        if len != 0 {
            Err(Rv::MECHANISM_PARAM_INVALID)?
        }
        return Ok(MechanismParam::None);
    }
    // SAFETY (every arm): `p` is non-NULL and valid for reads of `len` bytes; the inner pointers
    // of a decoded structure are valid for their stated lengths (the caller's contract).
    match crate::mechanism::param_shape(kind) {
        ParamShape::None | ParamShape::Iv(_) | ParamShape::Ulong | ParamShape::Bytes => {
            // SAFETY: see above.
            Ok(MechanismParam::Bytes(unsafe {
                param_bytes(p.cast(), len)
            }?))
        }
        // SAFETY: see above.
        ParamShape::RsaPss => unsafe { rsa_pss(p, len) },
        // SAFETY: see above.
        ParamShape::RsaOaep => unsafe { rsa_oaep(p, len) },
        // SAFETY: see above.
        ParamShape::Gcm => unsafe { gcm(p, len) },
        // SAFETY: see above.
        ParamShape::Eddsa => unsafe { eddsa(p, len) },
        // SAFETY: see above.
        ParamShape::Ecdh1Derive => unsafe { ecdh1_derive(p, len) },
        // SAFETY: see above.
        ParamShape::Hkdf => unsafe { hkdf(p, len) },
        // SAFETY: see above.
        ParamShape::DerivationString => unsafe { derivation_string(p, len) },
        // SAFETY: see above.
        ParamShape::KeyHandle => Ok(MechanismParam::Key(unsafe { param_struct(p, len) }?)),
        // SAFETY: see above.
        ParamShape::AesCbcEncryptData => unsafe { aes_cbc_encrypt_data(p, len) },
        // SAFETY: see above.
        ParamShape::Sp800_108 => unsafe { sp800_108(p, len) },
        // SAFETY: see above.
        ParamShape::Sp800_108Feedback => unsafe { sp800_108_feedback(p, len) },
        // SAFETY: see above.
        ParamShape::Ccm => unsafe { ccm(p, len) },
        // SAFETY: see above.
        ParamShape::Chacha20 => unsafe { chacha20(p, len) },
        // SAFETY: see above.
        ParamShape::ChachaPoly => unsafe { chacha_poly(p, len) },
        // SAFETY: see above.
        ParamShape::SignContext => unsafe { sign_context(p, len) },
        // SAFETY: see above.
        ParamShape::HashSignContext => unsafe { hash_sign_context(p, len) },
    }
}

/// `CK_SIGN_ADDITIONAL_CONTEXT`.
///
/// # Safety
/// As [`param_struct`], and `pContext` valid for `ulContextLen` bytes.
unsafe fn sign_context(p: *const c_void, len: CK_ULONG) -> Result<MechanismParam> {
    // SAFETY: forwarded contract.
    let s: cryptoki_sys::CK_SIGN_ADDITIONAL_CONTEXT = unsafe { param_struct(p, len) }?;
    Ok(MechanismParam::SignContext {
        hedge: s.hedgeVariant,
        // SAFETY: forwarded contract.
        context: unsafe { param_bytes(s.pContext, s.ulContextLen) }?,
        hash: None,
    })
}

/// `CK_HASH_SIGN_ADDITIONAL_CONTEXT`.
///
/// # Safety
/// As [`param_struct`], and `pContext` valid for `ulContextLen` bytes.
unsafe fn hash_sign_context(p: *const c_void, len: CK_ULONG) -> Result<MechanismParam> {
    // SAFETY: forwarded contract.
    let s: cryptoki_sys::CK_HASH_SIGN_ADDITIONAL_CONTEXT = unsafe { param_struct(p, len) }?;
    Ok(MechanismParam::SignContext {
        hedge: s.hedgeVariant,
        // SAFETY: forwarded contract.
        context: unsafe { param_bytes(s.pContext, s.ulContextLen) }?,
        hash: Some(s.hash),
    })
}

/// `CK_RSA_PKCS_PSS_PARAMS`.
///
/// # Safety
/// As [`param_struct`].
unsafe fn rsa_pss(p: *const c_void, len: CK_ULONG) -> Result<MechanismParam> {
    // SAFETY: forwarded contract.
    let s: CK_RSA_PKCS_PSS_PARAMS = unsafe { param_struct(p, len) }?;
    Ok(MechanismParam::Pss {
        hash: s.hashAlg,
        mgf: s.mgf,
        salt_len: s.sLen,
    })
}

/// `CK_RSA_PKCS_OAEP_PARAMS`; the label is read only when `source` says it is given.
///
/// # Safety
/// As [`param_struct`], and `pSourceData` valid for `ulSourceDataLen` bytes.
unsafe fn rsa_oaep(p: *const c_void, len: CK_ULONG) -> Result<MechanismParam> {
    // SAFETY: forwarded contract.
    let s: CK_RSA_PKCS_OAEP_PARAMS = unsafe { param_struct(p, len) }?;
    let source_data = match s.source {
        // SAFETY: forwarded contract.
        CKZ_DATA_SPECIFIED => unsafe { param_bytes(s.pSourceData.cast(), s.ulSourceDataLen) }?,
        // Some callers leave `source` zero for "no label"; the pointer means nothing then.
        0 => Vec::new(),
        _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
    };
    Ok(MechanismParam::Oaep {
        hash: s.hashAlg,
        mgf: s.mgf,
        source_data,
    })
}

/// `CK_GCM_PARAMS`.
///
/// # Safety
/// As [`param_struct`], and `pIv` / `pAAD` valid for their lengths.
unsafe fn gcm(p: *const c_void, len: CK_ULONG) -> Result<MechanismParam> {
    // SAFETY: forwarded contract.
    let s: CK_GCM_PARAMS = unsafe { param_struct(p, len) }?;
    Ok(MechanismParam::Gcm {
        // SAFETY: forwarded contract.
        iv: unsafe { param_bytes(s.pIv, s.ulIvLen) }?,
        // SAFETY: forwarded contract.
        aad: unsafe { param_bytes(s.pAAD, s.ulAADLen) }?,
        tag_bits: s.ulTagBits,
    })
}

/// `CK_EDDSA_PARAMS`.
///
/// # Safety
/// As [`param_struct`], and `pContextData` valid for its length.
unsafe fn eddsa(p: *const c_void, len: CK_ULONG) -> Result<MechanismParam> {
    // SAFETY: forwarded contract.
    let s: CK_EDDSA_PARAMS = unsafe { param_struct(p, len) }?;
    Ok(MechanismParam::Eddsa {
        prehash: s.phFlag != 0,
        // SAFETY: forwarded contract.
        context: unsafe { param_bytes(s.pContextData, s.ulContextDataLen) }?,
    })
}

/// `CK_ECDH1_DERIVE_PARAMS`.
///
/// # Safety
/// As [`param_struct`], and `pSharedData` / `pPublicData` valid for their lengths.
unsafe fn ecdh1_derive(p: *const c_void, len: CK_ULONG) -> Result<MechanismParam> {
    // SAFETY: forwarded contract.
    let s: CK_ECDH1_DERIVE_PARAMS = unsafe { param_struct(p, len) }?;
    Ok(MechanismParam::Ecdh {
        kdf: s.kdf,
        // SAFETY: forwarded contract.
        shared_data: unsafe { param_bytes(s.pSharedData, s.ulSharedDataLen) }?,
        // SAFETY: forwarded contract.
        public_data: unsafe { param_bytes(s.pPublicData, s.ulPublicDataLen) }?,
    })
}

/// `CK_HKDF_PARAMS`; the salt is read as `ulSaltType` says (exactly one of the three flags).
///
/// # Safety
/// As [`param_struct`], and `pSalt` / `pInfo` valid for their lengths.
unsafe fn hkdf(p: *const c_void, len: CK_ULONG) -> Result<MechanismParam> {
    // SAFETY: forwarded contract.
    let s: CK_HKDF_PARAMS = unsafe { param_struct(p, len) }?;
    let salt = match s.ulSaltType {
        CKF_HKDF_SALT_NULL => HkdfSalt::Null,
        // SAFETY: forwarded contract.
        CKF_HKDF_SALT_DATA => HkdfSalt::Data(unsafe { param_bytes(s.pSalt, s.ulSaltLen) }?),
        CKF_HKDF_SALT_KEY => HkdfSalt::Key(s.hSaltKey),
        _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
    };
    Ok(MechanismParam::Hkdf {
        extract: s.bExtract != 0,
        expand: s.bExpand != 0,
        prf: s.prfHashMechanism,
        salt,
        // SAFETY: forwarded contract.
        info: unsafe { param_bytes(s.pInfo, s.ulInfoLen) }?,
    })
}

/// `CK_KEY_DERIVATION_STRING_DATA`.
///
/// # Safety
/// As [`param_struct`], and `pData` valid for `ulLen` bytes.
unsafe fn derivation_string(p: *const c_void, len: CK_ULONG) -> Result<MechanismParam> {
    // SAFETY: forwarded contract.
    let s: CK_KEY_DERIVATION_STRING_DATA = unsafe { param_struct(p, len) }?;
    // SAFETY: forwarded contract.
    let data = unsafe { param_bytes(s.pData, s.ulLen) }?;
    Ok(MechanismParam::Data(Zeroizing::new(data)))
}

/// `CK_AES_CBC_ENCRYPT_DATA_PARAMS`.
///
/// # Safety
/// As [`param_struct`], and `pData` valid for `length` bytes.
unsafe fn aes_cbc_encrypt_data(p: *const c_void, len: CK_ULONG) -> Result<MechanismParam> {
    // SAFETY: forwarded contract.
    let s: CK_AES_CBC_ENCRYPT_DATA_PARAMS = unsafe { param_struct(p, len) }?;
    // SAFETY: forwarded contract.
    let data = unsafe { param_bytes(s.pData, s.length) }?;
    Ok(MechanismParam::CbcData {
        iv: s.iv,
        data: Zeroizing::new(data),
    })
}

/// A `CK_SP800_108_COUNTER_FORMAT` a data parameter points to.
///
/// # Safety
/// `p` valid for reads of `len` bytes when non-NULL.
unsafe fn counter_format(p: *const c_void, len: CK_ULONG) -> Result<CounterFormat> {
    if p.is_null() {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    }
    // SAFETY: forwarded contract.
    let f: CK_SP800_108_COUNTER_FORMAT = unsafe { param_struct(p, len) }?;
    Ok(CounterFormat {
        little_endian: f.bLittleEndian != 0,
        width_bits: f.ulWidthInBits,
    })
}

/// The `CK_PRF_DATA_PARAM` list and the `CK_DERIVED_KEY` templates of an SP 800-108
/// parameter. Only the templates are read here; the handles are written back by
/// [`additional_key_outputs`] once the keys exist.
///
/// # Safety
/// `data` valid for `data_count` entries, each `pValue` for its `ulValueLen` bytes; `keys`
/// valid for `key_count` entries, each template as [`template`].
unsafe fn sp800_108_lists(
    data: *const CK_PRF_DATA_PARAM,
    data_count: CK_ULONG,
    keys: *const CK_DERIVED_KEY,
    key_count: CK_ULONG,
) -> Result<(Vec<PrfData>, Vec<Template>)> {
    // SAFETY: forwarded contract.
    let entries = unsafe { slice(data, data_count) }.map_err(param_invalid)?;
    let data = entries
        .iter()
        .map(|d| {
            let value = d.pValue.cast_const();
            Ok(match d.type_ {
                CK_SP800_108_ITERATION_VARIABLE if value.is_null() && d.ulValueLen == 0 => {
                    PrfData::Iteration(None)
                }
                CK_SP800_108_ITERATION_VARIABLE => {
                    // SAFETY: forwarded contract (here and in the arms below).
                    PrfData::Iteration(Some(unsafe { counter_format(value, d.ulValueLen) }?))
                }
                CK_SP800_108_OPTIONAL_COUNTER => {
                    // SAFETY: see above.
                    PrfData::Counter(unsafe { counter_format(value, d.ulValueLen) }?)
                }
                CK_SP800_108_DKM_LENGTH if !value.is_null() => {
                    // SAFETY: see above.
                    let f: CK_SP800_108_DKM_LENGTH_FORMAT =
                        unsafe { param_struct(value, d.ulValueLen) }?;
                    let sum_of_keys = match f.dkmLengthMethod {
                        CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS => true,
                        CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS => false,
                        _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
                    };
                    PrfData::DkmLength {
                        sum_of_keys,
                        format: CounterFormat {
                            little_endian: f.bLittleEndian != 0,
                            width_bits: f.ulWidthInBits,
                        },
                    }
                }
                CK_SP800_108_BYTE_ARRAY => {
                    // SAFETY: see above.
                    PrfData::Bytes(unsafe { param_bytes(value.cast(), d.ulValueLen) }?)
                }
                CK_SP800_108_KEY_HANDLE if !value.is_null() => {
                    // SAFETY: see above.
                    PrfData::Key(unsafe { param_struct::<CK_OBJECT_HANDLE>(value, d.ulValueLen) }?)
                }
                _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // SAFETY: forwarded contract.
    let keys = unsafe { slice(keys, key_count) }.map_err(param_invalid)?;
    let templates = keys
        .iter()
        .map(|k| {
            if k.phKey.is_null() {
                Err(Rv::MECHANISM_PARAM_INVALID)?
            }
            // SAFETY: forwarded contract.
            unsafe { template(k.pTemplate, k.ulAttributeCount) }.map_err(param_invalid)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((data, templates))
}

/// `CK_SP800_108_KDF_PARAMS` (counter and double-pipeline modes).
///
/// # Safety
/// As [`param_struct`], and its lists as [`sp800_108_lists`].
unsafe fn sp800_108(p: *const c_void, len: CK_ULONG) -> Result<MechanismParam> {
    // SAFETY: forwarded contract.
    let s: CK_SP800_108_KDF_PARAMS = unsafe { param_struct(p, len) }?;
    // SAFETY: forwarded contract.
    let (data, additional) = unsafe {
        sp800_108_lists(
            s.pDataParams,
            s.ulNumberOfDataParams,
            s.pAdditionalDerivedKeys,
            s.ulAdditionalDerivedKeys,
        )
    }?;
    Ok(MechanismParam::Kbkdf {
        prf: s.prfType,
        data,
        iv: None,
        additional,
    })
}

/// `CK_SP800_108_FEEDBACK_KDF_PARAMS`.
///
/// # Safety
/// As [`sp800_108`], and `pIV` valid for `ulIVLen` bytes.
unsafe fn sp800_108_feedback(p: *const c_void, len: CK_ULONG) -> Result<MechanismParam> {
    // SAFETY: forwarded contract.
    let s: CK_SP800_108_FEEDBACK_KDF_PARAMS = unsafe { param_struct(p, len) }?;
    // SAFETY: forwarded contract.
    let (data, additional) = unsafe {
        sp800_108_lists(
            s.pDataParams,
            s.ulNumberOfDataParams,
            s.pAdditionalDerivedKeys,
            s.ulAdditionalDerivedKeys,
        )
    }?;
    Ok(MechanismParam::Kbkdf {
        prf: s.prfType,
        data,
        // SAFETY: forwarded contract.
        iv: Some(unsafe { param_bytes(s.pIV, s.ulIVLen) }?),
        additional,
    })
}

/// The `phKey` locations of an SP 800-108 parameter's `pAdditionalDerivedKeys`, where
/// `C_DeriveKey` writes the handles of the additional keys it made (PKCS#11 3.0 §2.42.7: the
/// parameter is in/out). Empty for every other mechanism. Read after [`mechanism`] decoded the
/// same parameter, so its layout has been checked.
///
/// # Safety
/// As [`mechanism`]; each `phKey` valid for writes of one handle for as long as the returned
/// locations live.
pub(crate) unsafe fn additional_key_outputs(
    p: *const CK_MECHANISM,
) -> Result<Vec<Out<CK_OBJECT_HANDLE>>> {
    // SAFETY: forwarded contract.
    let m = unsafe { read(p) }?;
    if m.pParameter.is_null() {
        return Ok(Vec::new());
    }
    let (keys, count) = match crate::mechanism::param_shape(m.mechanism) {
        ParamShape::Sp800_108 => {
            // SAFETY: forwarded contract.
            let s: CK_SP800_108_KDF_PARAMS =
                unsafe { param_struct(m.pParameter, m.ulParameterLen) }?;
            (s.pAdditionalDerivedKeys, s.ulAdditionalDerivedKeys)
        }
        ParamShape::Sp800_108Feedback => {
            // SAFETY: forwarded contract.
            let s: CK_SP800_108_FEEDBACK_KDF_PARAMS =
                unsafe { param_struct(m.pParameter, m.ulParameterLen) }?;
            (s.pAdditionalDerivedKeys, s.ulAdditionalDerivedKeys)
        }
        _ => return Ok(Vec::new()),
    };
    // SAFETY: forwarded contract; copied out so no reference to the array stays alive.
    let keys = unsafe { slice(keys, count) }
        .map_err(param_invalid)?
        .to_vec();
    keys.iter()
        // SAFETY: forwarded contract.
        .map(|k| unsafe { out(k.phKey) }.map_err(param_invalid))
        .collect()
}

/// `CK_CCM_PARAMS`.
///
/// # Safety
/// As [`param_struct`], and `pNonce` / `pAAD` valid for their lengths.
unsafe fn ccm(p: *const c_void, len: CK_ULONG) -> Result<MechanismParam> {
    // SAFETY: forwarded contract.
    let s: CK_CCM_PARAMS = unsafe { param_struct(p, len) }?;
    Ok(MechanismParam::Ccm {
        data_len: s.ulDataLen,
        // SAFETY: forwarded contract.
        nonce: unsafe { param_bytes(s.pNonce, s.ulNonceLen) }?,
        // SAFETY: forwarded contract.
        aad: unsafe { param_bytes(s.pAAD, s.ulAADLen) }?,
        mac_len: s.ulMACLen,
    })
}

/// The bytes of a field given as a bit count; a count that is not whole bytes is the
/// parameter's fault.
fn whole_bytes(bits: CK_ULONG) -> Result<CK_ULONG> {
    if !bits.is_multiple_of(8) {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    }
    Ok(bits / 8)
}

/// `CK_CHACHA20_PARAMS`: the counter and nonce lengths are in bits.
///
/// # Safety
/// As [`param_struct`], and `pBlockCounter` / `pNonce` valid for their lengths.
unsafe fn chacha20(p: *const c_void, len: CK_ULONG) -> Result<MechanismParam> {
    // SAFETY: forwarded contract.
    let s: CK_CHACHA20_PARAMS = unsafe { param_struct(p, len) }?;
    Ok(MechanismParam::Chacha20 {
        // SAFETY: forwarded contract.
        counter: unsafe { param_bytes(s.pBlockCounter, whole_bytes(s.blockCounterBits)?) }?,
        counter_bits: s.blockCounterBits,
        // SAFETY: forwarded contract.
        nonce: unsafe { param_bytes(s.pNonce, whole_bytes(s.ulNonceBits)?) }?,
        nonce_bits: s.ulNonceBits,
    })
}

/// `CK_SALSA20_CHACHA20_POLY1305_PARAMS`.
///
/// # Safety
/// As [`param_struct`], and `pNonce` / `pAAD` valid for their lengths.
unsafe fn chacha_poly(p: *const c_void, len: CK_ULONG) -> Result<MechanismParam> {
    // SAFETY: forwarded contract.
    let s: CK_SALSA20_CHACHA20_POLY1305_PARAMS = unsafe { param_struct(p, len) }?;
    Ok(MechanismParam::Aead {
        // SAFETY: forwarded contract.
        nonce: unsafe { param_bytes(s.pNonce, s.ulNonceLen) }?,
        // SAFETY: forwarded contract.
        aad: unsafe { param_bytes(s.pAAD, s.ulAADLen) }?,
    })
}

/// Where a per-message parameter's IV and tag live in the caller's memory, for the write-back.
struct MessageParamPlaces {
    iv: (*mut CK_BYTE, CK_ULONG),
    tag: (*mut CK_BYTE, CK_ULONG),
}

/// The per-message parameter of message-based encryption with `kind` (`CK_GCM_MESSAGE_PARAMS`
/// for a [`ParamShape::Gcm`] mechanism, `CK_CCM_MESSAGE_PARAMS` for [`ParamShape::Ccm`],
/// `CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS` for [`ParamShape::ChachaPoly`]); `None` when
/// `pParameter` is NULL (and its length 0).
///
/// # Safety
/// `p`, when non-NULL, is valid for reads of `len` bytes, and the structure's `pIv` / `pNonce`
/// and `pTag` / `pMAC` are valid for their lengths.
pub(crate) unsafe fn message_param(
    kind: CK_MECHANISM_TYPE,
    p: *const c_void,
    len: CK_ULONG,
) -> Result<Option<MessageParam>> {
    if p.is_null() {
        if len != 0 {
            Err(Rv::MECHANISM_PARAM_INVALID)?
        }
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    let (places, fixed_bits, generator, data_len) = unsafe { message_param_places(kind, p, len) }?;
    Ok(Some(MessageParam {
        // SAFETY: forwarded contract.
        iv: unsafe { param_bytes(places.iv.0, places.iv.1) }?,
        fixed_bits,
        generator,
        // SAFETY: forwarded contract.
        tag: unsafe { param_bytes(places.tag.0, places.tag.1) }?,
        data_len,
    }))
}

/// The IV and tag places, fixed bits, generator and CCM data length of a per-message parameter.
///
/// # Safety
/// As [`message_param`].
unsafe fn message_param_places(
    kind: CK_MECHANISM_TYPE,
    p: *const c_void,
    len: CK_ULONG,
) -> Result<(MessageParamPlaces, CK_ULONG, CK_ULONG, CK_ULONG)> {
    match crate::mechanism::param_shape(kind) {
        ParamShape::Gcm => {
            // SAFETY: forwarded contract.
            let s: CK_GCM_MESSAGE_PARAMS = unsafe { param_struct(p, len) }?;
            let places = MessageParamPlaces {
                iv: (s.pIv, s.ulIvLen),
                tag: (s.pTag, whole_bytes(s.ulTagBits)?),
            };
            Ok((places, s.ulIvFixedBits, s.ivGenerator, 0))
        }
        ParamShape::Ccm => {
            // SAFETY: forwarded contract.
            let s: CK_CCM_MESSAGE_PARAMS = unsafe { param_struct(p, len) }?;
            let places = MessageParamPlaces {
                iv: (s.pNonce, s.ulNonceLen),
                tag: (s.pMAC, s.ulMACLen),
            };
            Ok((places, s.ulNonceFixedBits, s.nonceGenerator, s.ulDataLen))
        }
        ParamShape::ChachaPoly => {
            // SAFETY: forwarded contract.
            let s: CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS = unsafe { param_struct(p, len) }?;
            let places = MessageParamPlaces {
                iv: (s.pNonce, s.ulNonceLen),
                tag: (
                    s.pTag.cast(),
                    crate::crypto::modes::POLY1305_TAG as CK_ULONG,
                ),
            };
            Ok((places, 0, cryptoki_sys::CKG_NO_GENERATE, 0))
        }
        _ => Err(Rv::MECHANISM_PARAM_INVALID.into()),
    }
}

/// Writes a generated IV and, when given, a tag into the caller's per-message parameter (the
/// one [`message_param`] read; `iv` and `tag` have the lengths read there).
///
/// # Safety
/// As [`message_param`], with `pIv` / `pNonce` and `pTag` / `pMAC` also valid for writes.
pub(crate) unsafe fn write_message_param(
    kind: CK_MECHANISM_TYPE,
    p: *const c_void,
    len: CK_ULONG,
    iv: Option<&[u8]>,
    tag: Option<&[u8]>,
) -> Result<()> {
    if p.is_null() {
        return Ok(());
    }
    // SAFETY: forwarded contract.
    let (places, _, _, _) = unsafe { message_param_places(kind, p, len) }?;
    for (value, (dst, dst_len)) in [(iv, places.iv), (tag, places.tag)] {
        if let Some(value) = value {
            // SAFETY: forwarded contract: the caller's buffer holds `dst_len` writable bytes.
            let dst = unsafe { slice_mut(dst, dst_len) }.map_err(param_invalid)?;
            if dst.len() != value.len() {
                Err(Rv::GENERAL_ERROR)?
            }
            dst.copy_from_slice(value);
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use cryptoki_sys::{
        CKA_DERIVE_TEMPLATE, CKA_UNWRAP_TEMPLATE, CKA_VALUE_LEN, CKA_WRAP_TEMPLATE,
        CKM_AES_CBC_ENCRYPT_DATA, CKM_AES_CMAC, CKM_AES_ECB_ENCRYPT_DATA,
        CKM_CONCATENATE_BASE_AND_DATA, CKM_CONCATENATE_BASE_AND_KEY, CKM_CONCATENATE_DATA_AND_BASE,
        CKM_HKDF_DATA, CKM_HKDF_DERIVE, CKM_SHA256_HMAC, CKM_SP800_108_COUNTER_KDF,
        CKM_SP800_108_FEEDBACK_KDF, CKM_XOR_BASE_AND_DATA,
    };
    use cryptoki_sys::{
        CKA_LABEL, CKA_TOKEN, CKA_VALUE, CKD_NULL, CKG_MGF1_SHA256, CKM_AES_CBC, CKM_AES_GCM,
        CKM_ECDH1_COFACTOR_DERIVE, CKM_ECDH1_DERIVE, CKM_EDDSA, CKM_RSA_PKCS_OAEP,
        CKM_RSA_PKCS_PSS, CKM_SHA256, CKM_SHA256_RSA_PKCS_PSS, CKM_SHA3_256_RSA_PKCS_PSS,
        CKM_VENDOR_DEFINED, CK_ATTRIBUTE_TYPE,
    };
    use std::ptr::{null, null_mut};

    fn rv<T>(r: Result<T>) -> Rv {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.rv(),
        }
    }

    #[test]
    fn bytes_null_and_lengths() {
        // SAFETY: NULL pointers are never dereferenced.
        unsafe {
            assert_eq!(bytes(null(), 0).unwrap(), &[] as &[u8]);
            assert_eq!(rv(bytes(null(), 1)), Rv::ARGUMENTS_BAD);
            assert_eq!(bytes_opt(null(), 5).unwrap(), None);
        }
        let data = [1u8, 2, 3];
        // SAFETY: `data` is 3 readable bytes; the absurd length is refused before any read.
        unsafe {
            assert_eq!(bytes(data.as_ptr(), 3).unwrap(), &data);
            assert_eq!(bytes_opt(data.as_ptr(), 2).unwrap(), Some(&data[..2]));
            assert_eq!(
                rv(bytes(data.as_ptr(), (MAX_LEN + 1) as CK_ULONG)),
                Rv::ARGUMENTS_BAD
            );
            assert_eq!(rv(bytes(data.as_ptr(), CK_ULONG::MAX)), Rv::ARGUMENTS_BAD);
        }
    }

    #[test]
    fn required_pointers() {
        // SAFETY: NULL is refused before use.
        unsafe {
            assert_eq!(rv(read::<CK_ULONG>(null())), Rv::ARGUMENTS_BAD);
            assert!(read_opt::<CK_ULONG>(null()).unwrap().is_none());
            assert_eq!(rv(out::<CK_ULONG>(null_mut())), Rv::ARGUMENTS_BAD);
        }
        let mut words = [0 as CK_ULONG; 2];
        let misaligned = words
            .as_mut_ptr()
            .cast::<u8>()
            .wrapping_add(1)
            .cast::<CK_ULONG>();
        // SAFETY: the misaligned pointer is refused before use.
        unsafe { assert_eq!(rv(out(misaligned)), Rv::ARGUMENTS_BAD) };
        let mut x: CK_ULONG = 7;
        // SAFETY: `x` is a live local.
        let o = unsafe { out(&mut x) }.unwrap();
        assert_eq!(o.get(), 7);
        o.set(9);
        assert_eq!(x, 9);
    }

    #[test]
    fn label_is_copied() {
        let label_bytes = *b"my token                        ";
        // SAFETY: 32 readable bytes.
        assert_eq!(unsafe { label(label_bytes.as_ptr()) }.unwrap(), label_bytes);
        // SAFETY: NULL is refused.
        assert_eq!(rv(unsafe { label(null()) }), Rv::ARGUMENTS_BAD);
    }

    #[test]
    fn out_buf_query_too_small_and_fill() {
        // Query: NULL data, length written back.
        let mut len: CK_ULONG = 0;
        // SAFETY: `len` is live; NULL data means a query.
        let mut o = unsafe { out_buf(null_mut(), &mut len) }.unwrap();
        assert!(o.buf.is_query());
        let r = o.buf.fill(b"hello").map(drop);
        o.finish(r).unwrap();
        assert_eq!(len, 5);

        // Too small: CKR_BUFFER_TOO_SMALL and the needed length.
        let mut storage = [0u8; 4];
        let mut len: CK_ULONG = 2;
        // SAFETY: `storage` has at least `len` bytes.
        let mut o = unsafe { out_buf(storage.as_mut_ptr(), &mut len) }.unwrap();
        let r = o.buf.fill(b"hello").map(drop);
        assert_eq!(rv(o.finish(r)), Rv::BUFFER_TOO_SMALL);
        assert_eq!(len, 5);
        assert_eq!(storage, [0; 4]);

        // Large enough: copied, actual length written back.
        let mut storage = [0u8; 8];
        let mut len: CK_ULONG = 8;
        // SAFETY: `storage` has `len` bytes.
        let mut o = unsafe { out_buf(storage.as_mut_ptr(), &mut len) }.unwrap();
        assert_eq!(o.buf.capacity(), 8);
        let r = o.buf.fill(b"hello").map(drop);
        o.finish(r).unwrap();
        assert_eq!(len, 5);
        assert_eq!(&storage[..5], b"hello");

        // Other errors leave the length alone.
        let mut len: CK_ULONG = 8;
        // SAFETY: as above.
        let o = unsafe { out_buf(storage.as_mut_ptr(), &mut len) }.unwrap();
        assert_eq!(rv(o.finish(Err(Rv::DATA_INVALID.into()))), Rv::DATA_INVALID);
        assert_eq!(len, 8);

        // NULL length pointer and absurd capacities are refused.
        // SAFETY: refused before use.
        unsafe {
            assert_eq!(
                rv(out_buf(storage.as_mut_ptr(), null_mut())),
                Rv::ARGUMENTS_BAD
            );
            let mut huge = CK_ULONG::MAX;
            assert_eq!(
                rv(out_buf(storage.as_mut_ptr(), &mut huge)),
                Rv::ARGUMENTS_BAD
            );
        }
    }

    #[test]
    fn in_out_copies_overlapping_input() {
        let mut storage = *b"abcdefgh";
        let mut len: CK_ULONG = 8;
        let p = storage.as_mut_ptr();
        // SAFETY: both ranges lie in `storage`; `in_out` copies the overlapping input first.
        let (input, mut o) = unsafe { in_out(p, 4, p, &mut len) }.unwrap();
        assert!(matches!(input, Input::Copied(_)));
        let reversed: Vec<u8> = input.iter().rev().copied().collect();
        let r = o.buf.fill(&reversed).map(drop);
        o.finish(r).unwrap();
        assert_eq!(&storage, b"dcbaefgh");
        assert_eq!(len, 4);

        let data = *b"xyz";
        let mut storage = [0u8; 3];
        let mut len: CK_ULONG = 3;
        // SAFETY: disjoint live buffers.
        let (input, _o) =
            unsafe { in_out(data.as_ptr(), 3, storage.as_mut_ptr(), &mut len) }.unwrap();
        assert!(matches!(input, Input::Borrowed(_)));
        assert_eq!(&*input, b"xyz");
    }

    #[test]
    fn lists_follow_the_two_call_rule() {
        let items: [CK_ULONG; 3] = [10, 20, 30];
        let mut count: CK_ULONG = 0;
        // SAFETY: NULL list means a count query.
        unsafe { fill_list(&items, null_mut(), &mut count) }.unwrap();
        assert_eq!(count, 3);

        let mut small = [0 as CK_ULONG; 2];
        let mut count: CK_ULONG = 2;
        // SAFETY: `small` holds `count` elements.
        let r = unsafe { fill_list(&items, small.as_mut_ptr(), &mut count) };
        assert_eq!(rv(r), Rv::BUFFER_TOO_SMALL);
        assert_eq!(count, 3);
        assert_eq!(small, [0, 0]);

        let mut big = [0 as CK_ULONG; 5];
        let mut count: CK_ULONG = 5;
        // SAFETY: `big` holds `count` elements.
        unsafe { fill_list(&items, big.as_mut_ptr(), &mut count) }.unwrap();
        assert_eq!(count, 3);
        assert_eq!(big, [10, 20, 30, 0, 0]);

        assert_eq!(
            // SAFETY: refused before use.
            rv(unsafe { fill_list(&items, big.as_mut_ptr(), null_mut()) }),
            Rv::ARGUMENTS_BAD
        );
    }

    fn attr(kind: CK_ATTRIBUTE_TYPE, value: &mut [u8]) -> CK_ATTRIBUTE {
        CK_ATTRIBUTE {
            type_: kind,
            pValue: value.as_mut_ptr().cast(),
            ulValueLen: value.len() as CK_ULONG,
        }
    }

    #[test]
    fn templates_decode() {
        let mut label_value = *b"key one";
        let mut token = [1u8];
        let template_in = [
            attr(CKA_LABEL, &mut label_value),
            attr(CKA_TOKEN, &mut token),
            CK_ATTRIBUTE {
                type_: CKA_VALUE,
                pValue: null_mut(),
                ulValueLen: 0,
            },
        ];
        // SAFETY: every entry points to live memory of its stated length.
        let t = unsafe { template(template_in.as_ptr(), 3) }.unwrap();
        assert_eq!(
            t,
            vec![
                Attribute::new(CKA_LABEL, b"key one".to_vec()),
                Attribute::from_bool(CKA_TOKEN, true),
                Attribute::new(CKA_VALUE, Vec::new()),
            ]
        );
        // SAFETY: NULL with count 0 is never read.
        assert!(unsafe { template(null(), 0) }.unwrap().is_empty());
        // SAFETY: refused before use.
        assert_eq!(rv(unsafe { template(null(), 1) }), Rv::ARGUMENTS_BAD);

        let bad = [CK_ATTRIBUTE {
            type_: CKA_VALUE,
            pValue: null_mut(),
            ulValueLen: 4,
        }];
        // SAFETY: the NULL pValue is refused before use.
        assert_eq!(rv(unsafe { template(bad.as_ptr(), 1) }), Rv::ARGUMENTS_BAD);
    }

    #[test]
    fn attribute_requests_write_lengths_back() {
        let mut big = [0u8; 16];
        let mut small = [0u8; 2];
        let mut template_io = [
            CK_ATTRIBUTE {
                type_: CKA_LABEL,
                pValue: big.as_mut_ptr().cast(),
                ulValueLen: 16,
            },
            CK_ATTRIBUTE {
                type_: CKA_VALUE,
                pValue: null_mut(),
                ulValueLen: 99,
            },
            CK_ATTRIBUTE {
                type_: CKA_TOKEN,
                pValue: small.as_mut_ptr().cast(),
                ulValueLen: 2,
            },
            CK_ATTRIBUTE {
                type_: 0x1234,
                pValue: null_mut(),
                ulValueLen: 5,
            },
        ];
        let fill = |requests: &mut [AttributeRequest<'_>]| -> Result<()> {
            assert_eq!(requests.len(), 4);
            assert_eq!(requests[0].kind, CKA_LABEL);
            assert!(requests[1].out.is_query());
            requests[0].out.fill(b"label").map(drop)?;
            requests[1].out.fill(&[9; 32]).map(drop)?;
            let too_small = requests[2].out.fill(b"four").is_err();
            requests[3].unavailable = true;
            if too_small {
                Err(Rv::BUFFER_TOO_SMALL)?
            }
            Ok(())
        };
        // SAFETY: the template and its value buffers are live, disjoint locals.
        let r = unsafe { attribute_requests(template_io.as_mut_ptr(), 4, fill) };
        assert_eq!(rv(r), Rv::BUFFER_TOO_SMALL);
        assert_eq!(&big[..5], b"label");
        let lens: Vec<CK_ULONG> = template_io.iter().map(|a| a.ulValueLen).collect();
        assert_eq!(lens, [5, 32, 4, CK_UNAVAILABLE_INFORMATION]);
        assert_eq!(small, [0, 0]);

        // Any other failure leaves the template untouched.
        let mut template_io = [CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: null_mut(),
            ulValueLen: 7,
        }];
        // SAFETY: as above.
        let r = unsafe {
            attribute_requests(template_io.as_mut_ptr(), 1, |requests| {
                requests[0].out.fill(b"abc").map(drop)?;
                Err(Rv::SESSION_HANDLE_INVALID)?
            })
        };
        assert_eq!(rv(r), Rv::SESSION_HANDLE_INVALID);
        assert_eq!(template_io[0].ulValueLen, 7);

        // SAFETY: NULL with a non-zero count is refused before use.
        let r = unsafe { attribute_requests(null_mut(), 1, |_| Ok(())) };
        assert_eq!(rv(r), Rv::ARGUMENTS_BAD);
    }

    fn mech<T>(kind: CK_MECHANISM_TYPE, param: &mut T) -> CK_MECHANISM {
        CK_MECHANISM {
            mechanism: kind,
            pParameter: (param as *mut T).cast(),
            ulParameterLen: size_of::<T>() as CK_ULONG,
        }
    }

    fn decode(m: &CK_MECHANISM) -> Result<Mechanism> {
        // SAFETY: every test mechanism points to live parameter memory of its stated length.
        unsafe { mechanism(m) }
    }

    #[test]
    fn mechanism_without_parameter() {
        let m = CK_MECHANISM {
            mechanism: CKM_SHA256,
            pParameter: null_mut(),
            ulParameterLen: 0,
        };
        assert_eq!(decode(&m).unwrap(), Mechanism::new(CKM_SHA256));
        let m = CK_MECHANISM {
            mechanism: CKM_SHA256,
            pParameter: null_mut(),
            ulParameterLen: 8,
        };
        assert_eq!(rv(decode(&m)), Rv::MECHANISM_PARAM_INVALID);
        // SAFETY: refused before use.
        assert_eq!(rv(unsafe { mechanism(null()) }), Rv::ARGUMENTS_BAD);
    }

    #[test]
    fn mechanism_raw_bytes() {
        let mut iv = [7u8; 16];
        let m = CK_MECHANISM {
            mechanism: CKM_AES_CBC,
            pParameter: iv.as_mut_ptr().cast(),
            ulParameterLen: 16,
        };
        assert_eq!(
            decode(&m).unwrap().param,
            MechanismParam::Bytes(vec![7; 16])
        );
    }

    #[test]
    fn mechanism_pss() {
        let mut p = CK_RSA_PKCS_PSS_PARAMS {
            hashAlg: CKM_SHA256,
            mgf: CKG_MGF1_SHA256,
            sLen: 32,
        };
        let m = mech(CKM_SHA256_RSA_PKCS_PSS, &mut p);
        assert_eq!(
            decode(&m).unwrap(),
            Mechanism {
                kind: CKM_SHA256_RSA_PKCS_PSS,
                param: MechanismParam::Pss {
                    hash: CKM_SHA256,
                    mgf: CKG_MGF1_SHA256,
                    salt_len: 32
                }
            }
        );
        let mut m = mech(CKM_RSA_PKCS_PSS, &mut p);
        assert!(matches!(
            decode(&m).unwrap().param,
            MechanismParam::Pss { .. }
        ));
        m.ulParameterLen -= 1;
        assert_eq!(rv(decode(&m)), Rv::MECHANISM_PARAM_INVALID);
        // Not offered yet, but its structure is read (and refused when malformed) all the same.
        let mut m = mech(CKM_SHA3_256_RSA_PKCS_PSS, &mut p);
        assert!(matches!(
            decode(&m).unwrap().param,
            MechanismParam::Pss { .. }
        ));
        m.ulParameterLen += 1;
        assert_eq!(rv(decode(&m)), Rv::MECHANISM_PARAM_INVALID);
        // A mechanism nobody declares is read as bytes, whatever they hold.
        let m = mech(CKM_VENDOR_DEFINED | 0x77, &mut p);
        assert_eq!(
            decode(&m).unwrap().param,
            MechanismParam::Bytes(
                [CKM_SHA256, CKG_MGF1_SHA256, 32]
                    .iter()
                    .flat_map(|v| v.to_ne_bytes())
                    .collect()
            )
        );
    }

    #[test]
    fn mechanism_oaep() {
        let mut label_bytes = *b"label";
        let mut p = CK_RSA_PKCS_OAEP_PARAMS {
            hashAlg: CKM_SHA256,
            mgf: CKG_MGF1_SHA256,
            source: CKZ_DATA_SPECIFIED,
            pSourceData: label_bytes.as_mut_ptr().cast(),
            ulSourceDataLen: 5,
        };
        let m = mech(CKM_RSA_PKCS_OAEP, &mut p);
        assert_eq!(
            decode(&m).unwrap().param,
            MechanismParam::Oaep {
                hash: CKM_SHA256,
                mgf: CKG_MGF1_SHA256,
                source_data: b"label".to_vec()
            }
        );
        // Without CKZ_DATA_SPECIFIED the pointer is not followed, even if garbage.
        p.source = 0;
        p.pSourceData = 0x10 as *mut c_void;
        let m = mech(CKM_RSA_PKCS_OAEP, &mut p);
        assert_eq!(
            decode(&m).unwrap().param,
            MechanismParam::Oaep {
                hash: CKM_SHA256,
                mgf: CKG_MGF1_SHA256,
                source_data: Vec::new()
            }
        );
        p.source = 7;
        let m = mech(CKM_RSA_PKCS_OAEP, &mut p);
        assert_eq!(rv(decode(&m)), Rv::MECHANISM_PARAM_INVALID);
        p.source = CKZ_DATA_SPECIFIED;
        p.pSourceData = null_mut();
        let m = mech(CKM_RSA_PKCS_OAEP, &mut p);
        assert_eq!(rv(decode(&m)), Rv::MECHANISM_PARAM_INVALID);
    }

    #[test]
    fn mechanism_gcm() {
        let mut iv = [1u8; 12];
        let mut aad = *b"header";
        let mut p = CK_GCM_PARAMS {
            pIv: iv.as_mut_ptr(),
            ulIvLen: 12,
            ulIvBits: 96,
            pAAD: aad.as_mut_ptr(),
            ulAADLen: 6,
            ulTagBits: 128,
        };
        let m = mech(CKM_AES_GCM, &mut p);
        assert_eq!(
            decode(&m).unwrap().param,
            MechanismParam::Gcm {
                iv: vec![1; 12],
                aad: b"header".to_vec(),
                tag_bits: 128
            }
        );
        p.pAAD = null_mut();
        p.ulAADLen = 0;
        let m = mech(CKM_AES_GCM, &mut p);
        assert_eq!(
            decode(&m).unwrap().param,
            MechanismParam::Gcm {
                iv: vec![1; 12],
                aad: Vec::new(),
                tag_bits: 128
            }
        );
        p.ulIvLen = CK_ULONG::MAX;
        let m = mech(CKM_AES_GCM, &mut p);
        assert_eq!(rv(decode(&m)), Rv::MECHANISM_PARAM_INVALID);
    }

    #[test]
    fn mechanism_ccm() {
        let mut nonce = [2u8; 13];
        let mut aad = *b"aad";
        let mut p = CK_CCM_PARAMS {
            ulDataLen: 40,
            pNonce: nonce.as_mut_ptr(),
            ulNonceLen: 13,
            pAAD: aad.as_mut_ptr(),
            ulAADLen: 3,
            ulMACLen: 16,
        };
        let m = mech(cryptoki_sys::CKM_AES_CCM, &mut p);
        assert_eq!(
            decode(&m).unwrap().param,
            MechanismParam::Ccm {
                data_len: 40,
                nonce: vec![2; 13],
                aad: b"aad".to_vec(),
                mac_len: 16
            }
        );
        p.pNonce = null_mut();
        let m = mech(cryptoki_sys::CKM_AES_CCM, &mut p);
        assert_eq!(rv(decode(&m)), Rv::MECHANISM_PARAM_INVALID);
    }

    #[test]
    fn mechanism_chacha20() {
        let mut counter = [1u8, 0, 0, 0];
        let mut nonce = [3u8; 12];
        let mut p = CK_CHACHA20_PARAMS {
            pBlockCounter: counter.as_mut_ptr(),
            blockCounterBits: 32,
            pNonce: nonce.as_mut_ptr(),
            ulNonceBits: 96,
        };
        let m = mech(cryptoki_sys::CKM_CHACHA20, &mut p);
        assert_eq!(
            decode(&m).unwrap().param,
            MechanismParam::Chacha20 {
                counter: vec![1, 0, 0, 0],
                counter_bits: 32,
                nonce: vec![3; 12],
                nonce_bits: 96
            }
        );
        // Bit counts that are not whole bytes, and NULL pointers with a length.
        p.ulNonceBits = 95;
        let m = mech(cryptoki_sys::CKM_CHACHA20, &mut p);
        assert_eq!(rv(decode(&m)), Rv::MECHANISM_PARAM_INVALID);
        p.ulNonceBits = 96;
        p.pBlockCounter = null_mut();
        let m = mech(cryptoki_sys::CKM_CHACHA20, &mut p);
        assert_eq!(rv(decode(&m)), Rv::MECHANISM_PARAM_INVALID);
    }

    #[test]
    fn mechanism_chacha20_poly1305() {
        let mut nonce = [4u8; 12];
        let mut p = CK_SALSA20_CHACHA20_POLY1305_PARAMS {
            pNonce: nonce.as_mut_ptr(),
            ulNonceLen: 12,
            pAAD: null_mut(),
            ulAADLen: 0,
        };
        let m = mech(cryptoki_sys::CKM_CHACHA20_POLY1305, &mut p);
        assert_eq!(
            decode(&m).unwrap().param,
            MechanismParam::Aead {
                nonce: vec![4; 12],
                aad: Vec::new()
            }
        );
        p.ulAADLen = 5;
        let m = mech(cryptoki_sys::CKM_CHACHA20_POLY1305, &mut p);
        assert_eq!(rv(decode(&m)), Rv::MECHANISM_PARAM_INVALID);
    }

    #[test]
    fn message_params_decode_and_write_back() {
        let size = |n: usize| n as CK_ULONG;
        let read = |kind, p: *const c_void, len| {
            // SAFETY: in this test every pointer given is NULL or points at a live structure
            // whose buffers are live for their stated lengths.
            unsafe { message_param(kind, p, len) }
        };
        // CK_GCM_MESSAGE_PARAMS: tag length in bits; IV and tag written back in place.
        let (mut iv, mut tag) = ([1u8; 12], [0u8; 16]);
        let mut p = CK_GCM_MESSAGE_PARAMS {
            pIv: iv.as_mut_ptr(),
            ulIvLen: 12,
            ulIvFixedBits: 32,
            ivGenerator: cryptoki_sys::CKG_GENERATE_COUNTER,
            pTag: tag.as_mut_ptr(),
            ulTagBits: 128,
        };
        let pp = (&mut p as *mut CK_GCM_MESSAGE_PARAMS).cast::<c_void>();
        let len = size(size_of::<CK_GCM_MESSAGE_PARAMS>());
        let decoded = read(CKM_AES_GCM, pp, len).unwrap().unwrap();
        assert_eq!(
            decoded,
            MessageParam {
                iv: vec![1; 12],
                fixed_bits: 32,
                generator: cryptoki_sys::CKG_GENERATE_COUNTER,
                tag: vec![0; 16],
                data_len: 0,
            }
        );
        // SAFETY: as for `read`, the buffers writable.
        unsafe { write_message_param(CKM_AES_GCM, pp, len, Some(&[2; 12]), Some(&[3; 16])) }
            .unwrap();
        assert_eq!((iv, tag), ([2; 12], [3; 16]));
        // SAFETY: as for `read`, the buffers writable.
        let wrong = unsafe { write_message_param(CKM_AES_GCM, pp, len, None, Some(&[3; 8])) };
        assert_eq!(rv(wrong), Rv::GENERAL_ERROR);
        p.ulTagBits = 100;
        let pp = (&mut p as *mut CK_GCM_MESSAGE_PARAMS).cast::<c_void>();
        assert_eq!(rv(read(CKM_AES_GCM, pp, len)), Rv::MECHANISM_PARAM_INVALID);
        assert_eq!(
            rv(read(CKM_AES_GCM, pp, len - 1)),
            Rv::MECHANISM_PARAM_INVALID
        );
        // NULL is no parameter; NULL with a length is a bad one.
        assert_eq!(read(CKM_AES_GCM, null(), 0).unwrap(), None);
        assert_eq!(
            rv(read(CKM_AES_GCM, null(), 4)),
            Rv::MECHANISM_PARAM_INVALID
        );

        // CK_CCM_MESSAGE_PARAMS.
        let (mut nonce, mut mac) = ([5u8; 13], [6u8; 8]);
        let mut c = cryptoki_sys::CK_CCM_MESSAGE_PARAMS {
            ulDataLen: 40,
            pNonce: nonce.as_mut_ptr(),
            ulNonceLen: 13,
            ulNonceFixedBits: 0,
            nonceGenerator: cryptoki_sys::CKG_NO_GENERATE,
            pMAC: mac.as_mut_ptr(),
            ulMACLen: 8,
        };
        let cp = (&mut c as *mut cryptoki_sys::CK_CCM_MESSAGE_PARAMS).cast::<c_void>();
        let clen = size(size_of::<cryptoki_sys::CK_CCM_MESSAGE_PARAMS>());
        let decoded = read(cryptoki_sys::CKM_AES_CCM, cp, clen);
        let decoded = decoded.unwrap().unwrap();
        assert_eq!((decoded.iv, decoded.tag), (vec![5; 13], vec![6; 8]));
        assert_eq!(decoded.data_len, 40);

        // CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS: a 16-byte tag, no generator.
        let (mut nonce, mut tag) = ([7u8; 12], [0u8; 16]);
        let mut x = cryptoki_sys::CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS {
            pNonce: nonce.as_mut_ptr(),
            ulNonceLen: 12,
            pTag: tag.as_mut_ptr(),
        };
        let xp = (&mut x as *mut cryptoki_sys::CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS).cast();
        let xlen = size(size_of::<
            cryptoki_sys::CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS,
        >());
        let kind = cryptoki_sys::CKM_CHACHA20_POLY1305;
        let decoded = read(kind, xp, xlen).unwrap().unwrap();
        assert_eq!((decoded.iv, decoded.tag.len()), (vec![7; 12], 16));
        assert_eq!(decoded.generator, cryptoki_sys::CKG_NO_GENERATE);
        // SAFETY: as for `read`, the buffers writable.
        unsafe { write_message_param(kind, xp, xlen, None, Some(&[9; 16])) }.unwrap();
        assert_eq!(tag, [9; 16]);
        // A mechanism without a per-message parameter.
        assert_eq!(rv(read(CKM_AES_CBC, xp, xlen)), Rv::MECHANISM_PARAM_INVALID);
    }

    #[test]
    fn mechanism_sign_contexts() {
        use cryptoki_sys::{
            CKH_DETERMINISTIC_REQUIRED, CKH_HEDGE_PREFERRED, CKM_HASH_ML_DSA, CKM_ML_DSA,
            CK_HASH_SIGN_ADDITIONAL_CONTEXT, CK_SIGN_ADDITIONAL_CONTEXT,
        };
        let mut context = *b"app";
        let mut p = CK_SIGN_ADDITIONAL_CONTEXT {
            hedgeVariant: CKH_DETERMINISTIC_REQUIRED,
            pContext: context.as_mut_ptr(),
            ulContextLen: 3,
        };
        let m = mech(CKM_ML_DSA, &mut p);
        assert_eq!(
            decode(&m).unwrap().param,
            MechanismParam::SignContext {
                hedge: CKH_DETERMINISTIC_REQUIRED,
                context: b"app".to_vec(),
                hash: None,
            }
        );
        // A NULL context with a length is the parameter's fault.
        p.pContext = null_mut();
        let m = mech(CKM_ML_DSA, &mut p);
        assert_eq!(decode(&m).unwrap_err().rv(), Rv::MECHANISM_PARAM_INVALID);
        let mut h = CK_HASH_SIGN_ADDITIONAL_CONTEXT {
            hedgeVariant: CKH_HEDGE_PREFERRED,
            pContext: null_mut(),
            ulContextLen: 0,
            hash: CKM_SHA256,
        };
        let m = mech(CKM_HASH_ML_DSA, &mut h);
        assert_eq!(
            decode(&m).unwrap().param,
            MechanismParam::SignContext {
                hedge: CKH_HEDGE_PREFERRED,
                context: Vec::new(),
                hash: Some(CKM_SHA256),
            }
        );
        // The plain structure where the hash one is expected: a wrong size.
        let m = mech(CKM_HASH_ML_DSA, &mut p);
        assert_eq!(decode(&m).unwrap_err().rv(), Rv::MECHANISM_PARAM_INVALID);
    }

    #[test]
    fn mechanism_eddsa() {
        let mut context = *b"ctx";
        let mut p = CK_EDDSA_PARAMS {
            phFlag: 1,
            ulContextDataLen: 3,
            pContextData: context.as_mut_ptr(),
        };
        let m = mech(CKM_EDDSA, &mut p);
        assert_eq!(
            decode(&m).unwrap().param,
            MechanismParam::Eddsa {
                prehash: true,
                context: b"ctx".to_vec()
            }
        );
        // A structure with no context is still a parameter (Ed25519ctx or Ed448 with an empty
        // context), not the absent one that means pure Ed25519.
        let mut p = CK_EDDSA_PARAMS {
            phFlag: 0,
            ulContextDataLen: 0,
            pContextData: null_mut(),
        };
        let m = mech(CKM_EDDSA, &mut p);
        assert_eq!(
            decode(&m).unwrap().param,
            MechanismParam::Eddsa {
                prehash: false,
                context: Vec::new()
            }
        );
        let m = CK_MECHANISM {
            mechanism: CKM_EDDSA,
            pParameter: null_mut(),
            ulParameterLen: 0,
        };
        assert_eq!(decode(&m).unwrap().param, MechanismParam::None);
    }

    #[test]
    fn mechanism_ecdh() {
        let mut public = [4u8; 65];
        let mut p = CK_ECDH1_DERIVE_PARAMS {
            kdf: CKD_NULL,
            ulSharedDataLen: 0,
            pSharedData: null_mut(),
            ulPublicDataLen: 65,
            pPublicData: public.as_mut_ptr(),
        };
        for kind in [CKM_ECDH1_DERIVE, CKM_ECDH1_COFACTOR_DERIVE] {
            let m = mech(kind, &mut p);
            assert_eq!(
                decode(&m).unwrap().param,
                MechanismParam::Ecdh {
                    kdf: CKD_NULL,
                    shared_data: Vec::new(),
                    public_data: vec![4; 65]
                }
            );
        }
        let mut m = mech(CKM_ECDH1_DERIVE, &mut p);
        m.ulParameterLen += 8;
        assert_eq!(rv(decode(&m)), Rv::MECHANISM_PARAM_INVALID);
    }

    #[test]
    fn attribute_arrays_decode_and_write_back() {
        let mut yes = 1u8;
        let mut label = *b"lbl";
        let mut inner = [
            attr(CKA_TOKEN, std::slice::from_mut(&mut yes)),
            attr(CKA_LABEL, &mut label),
        ];
        let outer = [CK_ATTRIBUTE {
            type_: CKA_DERIVE_TEMPLATE,
            pValue: inner.as_mut_ptr().cast(),
            ulValueLen: (2 * size_of::<CK_ATTRIBUTE>()) as CK_ULONG,
        }];
        // SAFETY: the arrays are live for the call.
        let t = unsafe { template(outer.as_ptr(), 1) }.unwrap();
        let expected = vec![
            Attribute::new(CKA_TOKEN, vec![1]),
            Attribute::new(CKA_LABEL, b"lbl".to_vec()),
        ];
        assert_eq!(
            t,
            vec![Attribute::new(
                CKA_DERIVE_TEMPLATE,
                crate::types::encode_attribute_array(&expected)
            )]
        );
        // A length that is not whole entries, and an array in the array, are refused.
        let mut short = outer;
        short[0].ulValueLen -= 1;
        // SAFETY: as above.
        let decoded = unsafe { template(short.as_ptr(), 1) };
        assert_eq!(rv(decoded), Rv::ATTRIBUTE_VALUE_INVALID);
        let mut nested = [CK_ATTRIBUTE {
            type_: CKA_WRAP_TEMPLATE,
            pValue: null_mut(),
            ulValueLen: 0,
        }];
        let outer_nested = [CK_ATTRIBUTE {
            type_: CKA_UNWRAP_TEMPLATE,
            pValue: nested.as_mut_ptr().cast(),
            ulValueLen: size_of::<CK_ATTRIBUTE>() as CK_ULONG,
        }];
        // SAFETY: as above.
        let decoded = unsafe { template(outer_nested.as_ptr(), 1) };
        assert_eq!(rv(decoded), Rv::ATTRIBUTE_VALUE_INVALID);

        // CKA_ALLOWED_MECHANISMS has the CKF_ARRAY_ATTRIBUTE bit but holds mechanism types.
        let mut mechanisms = CKM_SHA256.to_ne_bytes();
        let allowed = [attr(cryptoki_sys::CKA_ALLOWED_MECHANISMS, &mut mechanisms)];
        // SAFETY: as above.
        let decoded = unsafe { template(allowed.as_ptr(), 1) }.unwrap();
        assert_eq!(decoded[0].value.as_slice(), CKM_SHA256.to_ne_bytes());

        // Written back: a NULL pValue gets the array's size, entries their types and values.
        let encoded = crate::types::encode_attribute_array(&expected);
        let query = CK_ATTRIBUTE {
            type_: CKA_DERIVE_TEMPLATE,
            pValue: null_mut(),
            ulValueLen: 0,
        };
        // SAFETY: no buffer is written for a NULL pValue.
        let (len, fits) = unsafe { write_attribute_array(&query, &encoded) }.unwrap();
        assert_eq!((len as usize, fits), (2 * size_of::<CK_ATTRIBUTE>(), true));
        let (mut b, mut l) = ([0u8; 1], [0u8; 8]);
        let mut entries = [attr(0, &mut b), attr(0, &mut l)];
        let out = CK_ATTRIBUTE {
            type_: CKA_DERIVE_TEMPLATE,
            pValue: entries.as_mut_ptr().cast(),
            ulValueLen: (2 * size_of::<CK_ATTRIBUTE>()) as CK_ULONG,
        };
        // SAFETY: `entries` and its buffers are live and writable.
        let (_, fits) = unsafe { write_attribute_array(&out, &encoded) }.unwrap();
        assert!(fits);
        assert_eq!((entries[0].type_, entries[0].ulValueLen), (CKA_TOKEN, 1));
        assert_eq!((entries[1].type_, entries[1].ulValueLen), (CKA_LABEL, 3));
        assert_eq!((b, &l[..3]), ([1], &b"lbl"[..]));
    }

    #[test]
    fn mechanism_hkdf() {
        let mut salt = *b"salt";
        let mut info = *b"info";
        let mut p = CK_HKDF_PARAMS {
            bExtract: 1,
            bExpand: 0,
            prfHashMechanism: CKM_SHA256,
            ulSaltType: CKF_HKDF_SALT_DATA,
            pSalt: salt.as_mut_ptr(),
            ulSaltLen: 4,
            hSaltKey: 0,
            pInfo: info.as_mut_ptr(),
            ulInfoLen: 4,
        };
        let hkdf = |salt| MechanismParam::Hkdf {
            extract: true,
            expand: false,
            prf: CKM_SHA256,
            salt,
            info: b"info".to_vec(),
        };
        let m = mech(CKM_HKDF_DERIVE, &mut p);
        assert_eq!(
            decode(&m).unwrap().param,
            hkdf(HkdfSalt::Data(b"salt".to_vec()))
        );
        // The salt pointer means nothing unless the type says data.
        p.ulSaltType = CKF_HKDF_SALT_KEY;
        p.hSaltKey = 9;
        p.pSalt = null_mut();
        let m = mech(CKM_HKDF_DATA, &mut p);
        assert_eq!(decode(&m).unwrap().param, hkdf(HkdfSalt::Key(9)));
        p.ulSaltType = CKF_HKDF_SALT_NULL;
        let m = mech(CKM_HKDF_DERIVE, &mut p);
        assert_eq!(decode(&m).unwrap().param, hkdf(HkdfSalt::Null));
        for bad in [0, CKF_HKDF_SALT_NULL | CKF_HKDF_SALT_DATA] {
            p.ulSaltType = bad;
            let m = mech(CKM_HKDF_DERIVE, &mut p);
            assert_eq!(rv(decode(&m)), Rv::MECHANISM_PARAM_INVALID);
        }
        p.ulSaltType = CKF_HKDF_SALT_DATA;
        let m = mech(CKM_HKDF_DERIVE, &mut p);
        assert_eq!(
            rv(decode(&m)),
            Rv::MECHANISM_PARAM_INVALID,
            "NULL salt with a length"
        );
    }

    #[test]
    fn mechanism_simple_derivations() {
        let mut data = *b"data";
        let mut p = CK_KEY_DERIVATION_STRING_DATA {
            pData: data.as_mut_ptr(),
            ulLen: 4,
        };
        for kind in [
            CKM_CONCATENATE_BASE_AND_DATA,
            CKM_CONCATENATE_DATA_AND_BASE,
            CKM_XOR_BASE_AND_DATA,
            CKM_AES_ECB_ENCRYPT_DATA,
        ] {
            let m = mech(kind, &mut p);
            assert_eq!(
                decode(&m).unwrap().param,
                MechanismParam::Data(Zeroizing::new(b"data".to_vec()))
            );
        }
        p.pData = null_mut();
        let m = mech(CKM_XOR_BASE_AND_DATA, &mut p);
        assert_eq!(rv(decode(&m)), Rv::MECHANISM_PARAM_INVALID);
        let mut handle: CK_OBJECT_HANDLE = 42;
        let m = mech(CKM_CONCATENATE_BASE_AND_KEY, &mut handle);
        assert_eq!(decode(&m).unwrap().param, MechanismParam::Key(42));
        let mut short = 7u32;
        let m = mech(CKM_CONCATENATE_BASE_AND_KEY, &mut short);
        assert_eq!(rv(decode(&m)), Rv::MECHANISM_PARAM_INVALID);
        let mut block = [3u8; 16];
        let mut p = CK_AES_CBC_ENCRYPT_DATA_PARAMS {
            iv: [1; 16],
            pData: block.as_mut_ptr(),
            length: 16,
        };
        let m = mech(CKM_AES_CBC_ENCRYPT_DATA, &mut p);
        assert_eq!(
            decode(&m).unwrap().param,
            MechanismParam::CbcData {
                iv: [1; 16],
                data: Zeroizing::new(vec![3; 16])
            }
        );
    }

    #[test]
    fn mechanism_sp800_108_and_additional_keys() {
        let mut counter = CK_SP800_108_COUNTER_FORMAT {
            bLittleEndian: 0,
            ulWidthInBits: 32,
        };
        let mut dkm = CK_SP800_108_DKM_LENGTH_FORMAT {
            dkmLengthMethod: CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS,
            bLittleEndian: 1,
            ulWidthInBits: 16,
        };
        let mut label = *b"label";
        let mut key: CK_OBJECT_HANDLE = 5;
        let data_param = |type_, value: *mut c_void, len: usize| CK_PRF_DATA_PARAM {
            type_,
            pValue: value,
            ulValueLen: len as CK_ULONG,
        };
        let mut data = [
            data_param(
                CK_SP800_108_ITERATION_VARIABLE,
                (&mut counter as *mut CK_SP800_108_COUNTER_FORMAT).cast(),
                size_of::<CK_SP800_108_COUNTER_FORMAT>(),
            ),
            data_param(
                CK_SP800_108_DKM_LENGTH,
                (&mut dkm as *mut CK_SP800_108_DKM_LENGTH_FORMAT).cast(),
                size_of::<CK_SP800_108_DKM_LENGTH_FORMAT>(),
            ),
            data_param(CK_SP800_108_BYTE_ARRAY, label.as_mut_ptr().cast(), 5),
            data_param(
                CK_SP800_108_KEY_HANDLE,
                (&mut key as *mut CK_OBJECT_HANDLE).cast(),
                size_of::<CK_OBJECT_HANDLE>(),
            ),
        ];
        let mut len = 16 as CK_ULONG;
        let mut template = [CK_ATTRIBUTE {
            type_: CKA_VALUE_LEN,
            pValue: (&mut len as *mut CK_ULONG).cast(),
            ulValueLen: size_of::<CK_ULONG>() as CK_ULONG,
        }];
        let mut handles: [CK_OBJECT_HANDLE; 2] = [0; 2];
        let mut keys = [
            CK_DERIVED_KEY {
                pTemplate: template.as_mut_ptr(),
                ulAttributeCount: 1,
                phKey: &mut handles[0],
            },
            CK_DERIVED_KEY {
                pTemplate: null_mut(),
                ulAttributeCount: 0,
                phKey: &mut handles[1],
            },
        ];
        let mut p = CK_SP800_108_KDF_PARAMS {
            prfType: CKM_SHA256_HMAC,
            ulNumberOfDataParams: 4,
            pDataParams: data.as_mut_ptr(),
            ulAdditionalDerivedKeys: 2,
            pAdditionalDerivedKeys: keys.as_mut_ptr(),
        };
        let m = mech(CKM_SP800_108_COUNTER_KDF, &mut p);
        let format = |little_endian, width_bits| CounterFormat {
            little_endian,
            width_bits,
        };
        assert_eq!(
            decode(&m).unwrap().param,
            MechanismParam::Kbkdf {
                prf: CKM_SHA256_HMAC,
                data: vec![
                    PrfData::Iteration(Some(format(false, 32))),
                    PrfData::DkmLength {
                        sum_of_keys: true,
                        format: format(true, 16)
                    },
                    PrfData::Bytes(b"label".to_vec()),
                    PrfData::Key(5),
                ],
                iv: None,
                additional: vec![vec![Attribute::from_ulong(CKA_VALUE_LEN, 16)], Vec::new()],
            }
        );
        // The handles go back where each CK_DERIVED_KEY says.
        // SAFETY: `m` points to live memory, `handles` outlives the locations.
        let outs = unsafe { additional_key_outputs(&m) }.unwrap();
        assert_eq!(outs.len(), 2);
        outs[0].set(11);
        outs[1].set(12);
        drop(outs);
        assert_eq!(handles, [11, 12]);
        // Feedback mode: an iteration variable without format, and the IV.
        let mut iv = [9u8; 4];
        data[0] = data_param(CK_SP800_108_ITERATION_VARIABLE, null_mut(), 0);
        let mut f = CK_SP800_108_FEEDBACK_KDF_PARAMS {
            prfType: CKM_AES_CMAC,
            ulNumberOfDataParams: 1,
            pDataParams: data.as_mut_ptr(),
            ulIVLen: 4,
            pIV: iv.as_mut_ptr(),
            ulAdditionalDerivedKeys: 0,
            pAdditionalDerivedKeys: null_mut(),
        };
        let m = mech(CKM_SP800_108_FEEDBACK_KDF, &mut f);
        assert_eq!(
            decode(&m).unwrap().param,
            MechanismParam::Kbkdf {
                prf: CKM_AES_CMAC,
                data: vec![PrfData::Iteration(None)],
                iv: Some(vec![9; 4]),
                additional: Vec::new(),
            }
        );
        // SAFETY: as above.
        assert!(unsafe { additional_key_outputs(&m) }.unwrap().is_empty());
        // Malformed: an unknown data type, a counter format of the wrong size, a NULL phKey.
        // (Each case builds its parameter afresh, after the arrays it points into changed.)
        let feedback = |data: &mut [CK_PRF_DATA_PARAM]| CK_SP800_108_FEEDBACK_KDF_PARAMS {
            prfType: CKM_AES_CMAC,
            ulNumberOfDataParams: 1,
            pDataParams: data.as_mut_ptr(),
            ulIVLen: 0,
            pIV: null_mut(),
            ulAdditionalDerivedKeys: 0,
            pAdditionalDerivedKeys: null_mut(),
        };
        let mut unknown = [data_param(99, null_mut(), 0)];
        let mut f = feedback(&mut unknown);
        assert_eq!(
            rv(decode(&mech(CKM_SP800_108_FEEDBACK_KDF, &mut f))),
            Rv::MECHANISM_PARAM_INVALID
        );
        let mut short = [data_param(
            CK_SP800_108_OPTIONAL_COUNTER,
            (&mut counter as *mut CK_SP800_108_COUNTER_FORMAT).cast(),
            4,
        )];
        let mut f = feedback(&mut short);
        assert_eq!(
            rv(decode(&mech(CKM_SP800_108_FEEDBACK_KDF, &mut f))),
            Rv::MECHANISM_PARAM_INVALID
        );
        let mut iteration = [data_param(CK_SP800_108_ITERATION_VARIABLE, null_mut(), 0)];
        let mut no_handle = [CK_DERIVED_KEY {
            pTemplate: null_mut(),
            ulAttributeCount: 0,
            phKey: null_mut(),
        }];
        let mut p = CK_SP800_108_KDF_PARAMS {
            prfType: CKM_SHA256_HMAC,
            ulNumberOfDataParams: 1,
            pDataParams: iteration.as_mut_ptr(),
            ulAdditionalDerivedKeys: 1,
            pAdditionalDerivedKeys: no_handle.as_mut_ptr(),
        };
        assert_eq!(
            rv(decode(&mech(CKM_SP800_108_COUNTER_KDF, &mut p))),
            Rv::MECHANISM_PARAM_INVALID
        );
    }

    #[test]
    fn mechanism_param_read_unaligned() {
        // A parameter structure at an odd address is still decoded (copied, not referenced).
        let p = CK_RSA_PKCS_PSS_PARAMS {
            hashAlg: CKM_SHA256,
            mgf: CKG_MGF1_SHA256,
            sLen: 20,
        };
        let mut raw = vec![0u8; size_of::<CK_RSA_PKCS_PSS_PARAMS>() + 1];
        // SAFETY: `raw` has room for the structure at offset 1; written unaligned.
        unsafe {
            raw.as_mut_ptr()
                .add(1)
                .cast::<CK_RSA_PKCS_PSS_PARAMS>()
                .write_unaligned(p)
        };
        let m = CK_MECHANISM {
            mechanism: CKM_RSA_PKCS_PSS,
            // SAFETY: offset 1 is inside `raw`.
            pParameter: unsafe { raw.as_mut_ptr().add(1) }.cast(),
            ulParameterLen: size_of::<CK_RSA_PKCS_PSS_PARAMS>() as CK_ULONG,
        };
        assert_eq!(
            decode(&m).unwrap().param,
            MechanismParam::Pss {
                hash: CKM_SHA256,
                mgf: CKG_MGF1_SHA256,
                salt_len: 20
            }
        );
    }
}
