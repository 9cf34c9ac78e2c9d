//! The one place DER tag-length-value framing is written (ITU-T X.690 §8.1): definite lengths,
//! short form below 128, long form above. Only the framing: what the values mean (OIDs, points,
//! keys) is for the caller, and whole structures (PKCS#8, SubjectPublicKeyInfo) go through
//! OpenSSL.

/// DER tag of INTEGER.
pub(crate) const INTEGER: u8 = 0x02;
/// DER tag of OBJECT IDENTIFIER (a curve in `CKA_EC_PARAMS`).
pub(crate) const OBJECT_IDENTIFIER: u8 = 0x06;
/// DER tag of OCTET STRING (how `CKA_EC_POINT` is wrapped).
pub(crate) const OCTET_STRING: u8 = 0x04;
/// DER tag of PrintableString (the other form `CKA_EC_PARAMS` may take: a curve by name).
pub(crate) const PRINTABLE_STRING: u8 = 0x13;

/// Longest length field read, in bytes after the first: 4 (contents up to 4 GiB).
const MAX_LENGTH_BYTES: usize = 4;

/// One DER value: `tag`, the length of `content` (short or long form), then `content`.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 2 + std::mem::size_of::<usize>());
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The first DER value of `der`: (tag, content, what follows). `None` when the length field is
/// indefinite, longer than four bytes, or promises more than `der` holds.
pub(crate) fn split_tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&len0, rest) = rest.split_first()?;
    let (len, rest) = if len0 < 0x80 {
        (usize::from(len0), rest)
    } else {
        let n = usize::from(len0 & 0x7f);
        if n == 0 || n > MAX_LENGTH_BYTES || rest.len() < n {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(n);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| acc << 8 | usize::from(b));
        (len, rest)
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The content of a DER value with tag `tag` that spans exactly `der`.
pub(crate) fn content(der: &[u8], tag: u8) -> Option<&[u8]> {
    match split_tlv(der)? {
        (t, content, []) if t == tag => Some(content),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lengths_short_and_long_form() {
        assert_eq!(tlv(OCTET_STRING, &[1, 2]), [0x04, 2, 1, 2]);
        let long = vec![0u8; 133];
        let der = tlv(OCTET_STRING, &long);
        assert_eq!(&der[..3], &[0x04, 0x81, 133]);
        assert_eq!(content(&der, OCTET_STRING).unwrap(), &long[..]);
        let longer = vec![0u8; 300];
        let der300 = tlv(OCTET_STRING, &longer);
        assert_eq!(&der300[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(content(&der300, OCTET_STRING).unwrap().len(), 300);
    }

    #[test]
    fn malformed_and_trailing() {
        let der = tlv(OCTET_STRING, &[7; 133]);
        assert!(content(&der[..der.len() - 1], OCTET_STRING).is_none());
        assert!(content(&der, INTEGER).is_none());
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(content(&trailing, OCTET_STRING).is_none());
        assert_eq!(split_tlv(&trailing).unwrap().2, &[0]);
        // Indefinite length, and a length field longer than four bytes.
        assert!(split_tlv(&[0x04, 0x80, 0, 0]).is_none());
        assert!(split_tlv(&[0x04, 0x85, 0, 0, 0, 0, 1, 0]).is_none());
        assert!(split_tlv(&[0x04]).is_none());
        assert!(split_tlv(&[]).is_none());
    }
}
