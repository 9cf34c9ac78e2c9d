//! Key files for `key import`: the parsing is `crate::crypto::key_files` (only `crypto` names
//! OpenSSL); here its answer becomes the admin command's [`Parsed`], and its complaint a usage
//! error.

use super::keys::Parsed;
use super::{AdminResult, Failure};
use crate::crypto::key_files::{self, KeyFile};

/// Parses a key file's bytes: PEM (the first block) or DER (PKCS#8, then SPKI).
pub fn parse_key_file(bytes: &[u8]) -> AdminResult<Parsed> {
    match key_files::parse_key_file(bytes) {
        Ok(KeyFile::Private(private)) => Ok(Parsed::Private(private)),
        Ok(KeyFile::Public(public)) => Ok(Parsed::Public(public)),
        Err(why) => Err(Failure::usage(why.0)),
    }
}
