//! Elliptic-curve Diffie-Hellman (SEC 1 §3.3.1; PKCS#11 3.0 Current Mechanisms §2.3.15) and the
//! ANSI X9.63 key derivation function PKCS#11 names `CKD_SHA*_KDF` (SEC 1 §3.6.1).

use openssl::derive::Deriver;
use zeroize::Zeroizing;

use crate::crypto::digest::{HashAlg, Hasher};
use crate::crypto::keys::{Family, PrivateKey};
use crate::crypto::openssl_error;
use crate::error::{Result, Rv};

/// The shared secret Z (the x-coordinate, as long as the field) between `key` and the peer's
/// point on the same curve. The point may be uncompressed (`04‖X‖Y`), compressed, or either
/// wrapped in a DER OCTET STRING; on X25519 and X448 (RFC 7748) it is the peer's public value,
/// raw (as PKCS#11 passes it) or wrapped, and Z is the function's output. A point that does not decode, lies off the curve or is the
/// point at infinity is `CKR_MECHANISM_PARAM_INVALID`: it arrives in the mechanism parameter,
/// and PKCS#11 has no closer code.
pub fn ecdh(key: &PrivateKey, peer_point: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let facts = key.facts()?;
    if !matches!(facts.family, Family::Ec | Family::Montgomery) {
        Err(Rv::KEY_TYPE_INCONSISTENT)?
    }
    if peer_point.is_empty() {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    }
    let peer = key
        .peer_point(peer_point)
        .map_err(|_| Rv::MECHANISM_PARAM_INVALID)?;
    let mut deriver = Deriver::new(key.pkey()?).map_err(openssl_error)?;
    deriver
        .set_peer(peer.pkey()?)
        .map_err(|_| Rv::MECHANISM_PARAM_INVALID)?;
    let mut z = Zeroizing::new(vec![0u8; facts.bytes()]);
    // X25519 and X448 refuse an all-zero result (a peer value of small order, RFC 7748 §6.1).
    let len = deriver
        .derive(&mut z)
        .map_err(|_| Rv::MECHANISM_PARAM_INVALID)?;
    if len != facts.bytes() {
        Err(Rv::GENERAL_ERROR)?
    }
    Ok(z)
}

/// ANSI X9.63 KDF: `Hash(Z ‖ counter ‖ shared_info)` for counter = 1, 2, … (32-bit big-endian),
/// concatenated and cut to `len` bytes.
pub fn x963_kdf(
    alg: HashAlg,
    z: &[u8],
    shared_info: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let blocks = len.div_ceil(alg.output_len());
    if u32::try_from(blocks).is_err() {
        Err(Rv::KEY_SIZE_RANGE)?
    }
    let mut out = Zeroizing::new(Vec::with_capacity(blocks * alg.output_len()));
    for counter in 1..=blocks as u32 {
        let mut h = Hasher::new(alg)?;
        h.update(z)?;
        h.update(&counter.to_be_bytes())?;
        h.update(shared_info)?;
        let block = Zeroizing::new(h.finish()?);
        out.extend_from_slice(&block);
    }
    out.truncate(len);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::crypto::keys::PublicValues;

    #[test]
    fn both_sides_agree_and_bad_points_fail() {
        for curve in crate::crypto::test_keys::CURVES {
            let a = PrivateKey::generate_ec(curve).unwrap();
            let b = PrivateKey::generate_ec(curve).unwrap();
            let point = |k: &PrivateKey| match k.public_values().unwrap() {
                PublicValues::Point { point_der, .. } => point_der,
                _ => unreachable!(),
            };
            let (pa, pb) = (point(&a), point(&b));
            let z1 = ecdh(&a, &pb).unwrap();
            let z2 = ecdh(&b, &pa[2 + usize::from(pa[1] == 0x81)..]).unwrap();
            assert_eq!(z1, z2);
            assert_eq!(z1.len(), crate::crypto::test_keys::field_bytes(curve));
            let mut off = pb.clone();
            let last = off.len() - 1;
            off[last] ^= 1;
            for bad in [&off[..], &[][..], &[0u8][..], &pb[..pb.len() - 1]] {
                assert_eq!(ecdh(&a, bad).unwrap_err().rv(), Rv::MECHANISM_PARAM_INVALID);
            }
        }
    }

    #[test]
    fn x963_known_answer() {
        // NIST CAVS ANSI X9.63 KDF, SHA-256, shared secret 96c05619…, no shared info, 128 bits.
        let z = hex::decode("96c05619d56c328ab95fe84b18264b08725b85e33fd34f08").unwrap();
        let k = x963_kdf(HashAlg::Sha256, &z, &[], 16).unwrap();
        assert_eq!(hex::encode(&*k), "443024c3dae66b95e6f5670601558f71");
        let long = x963_kdf(HashAlg::Sha1, b"z", b"info", 50).unwrap();
        assert_eq!(long.len(), 50);
        assert_eq!(
            &long[..16],
            &x963_kdf(HashAlg::Sha1, b"z", b"info", 16).unwrap()[..]
        );
    }
}
