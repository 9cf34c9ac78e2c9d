//! The C boundary (PKCS#11 3.0 §5): every `C_*` export, the function lists and interfaces handed to
//! the application, and the helpers that turn the caller's raw memory into the plain values of
//! [`crate::types`]. This is the only module allowed `unsafe`; nothing raw gets past it.
//!
//! # Safety (all exports)
//!
//! Every `C_*` function is `unsafe extern "C"`: the caller promises what the PKCS#11 3.0
//! specification asks of it — each non-NULL pointer points to memory of the stated size that stays
//! valid (and, for outputs, writable and not otherwise accessed) for the duration of the call.
//! NULL pointers, absurd lengths and misaligned structure pointers are answered with
//! `CKR_ARGUMENTS_BAD` rather than trusted.
#![allow(unsafe_code)]
#![allow(non_snake_case)]
#![allow(clippy::missing_safety_doc)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod exports;
mod fork;
pub mod function_list;
pub(crate) mod guard;
pub mod openssl_ext;
pub mod process;
pub(crate) mod ptr;

pub use exports::*;
pub use function_list::{C_GetFunctionList, C_GetInterface, C_GetInterfaceList};
