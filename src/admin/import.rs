//! Key files for `key import`: the parsing is `crate::crypto::key_files` (only `crypto` names
//! OpenSSL); here its answer becomes the admin command's [`Parsed`], and its complaint a usage
//! error.

use super::keys::Parsed;
use super::{AdminResult, Failure};
use crate::crypto::key_files::{self, KeyFile};
use crate::key_algorithm;

/// Parses a key file's bytes: PEM (the first block) or DER (PKCS#8, then SPKI).
pub fn parse_key_file(bytes: &[u8]) -> AdminResult<Parsed> {
    // `crypto` reads any key OpenSSL does; keep to the algorithms the table has.
    let unsupported = || Failure::usage("cannot parse the key file: unsupported key type");
    match key_files::parse_key_file(bytes) {
        Ok(KeyFile::Private(private)) => {
            key_algorithm::of_private(&private).map_err(|_| unsupported())?;
            Ok(Parsed::Private(private))
        }
        Ok(KeyFile::Public(public)) => {
            key_algorithm::of_public(&public).map_err(|_| unsupported())?;
            Ok(Parsed::Public(public))
        }
        Err(why) => Err(Failure::usage(why.0)),
    }
}
