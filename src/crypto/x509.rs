//! X.509 certificates as PKCS#11 certificate objects see them: the DER fields a
//! `CKO_CERTIFICATE` carries as attributes.

use openssl::hash::{hash, MessageDigest};
use openssl::x509::X509;

use super::{der, openssl_error};
use crate::error::{Result, Rv};

/// The attribute values of an X.509 certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateFields {
    /// `CKA_SUBJECT`: DER of the subject Name.
    pub subject: Vec<u8>,
    /// `CKA_ISSUER`: DER of the issuer Name.
    pub issuer: Vec<u8>,
    /// `CKA_SERIAL_NUMBER`: DER of the serial number INTEGER.
    pub serial_number: Vec<u8>,
    /// `CKA_PUBLIC_KEY_INFO`: DER of the SubjectPublicKeyInfo.
    pub public_key_info: Vec<u8>,
    /// `CKA_CHECK_VALUE`: the first three bytes of the SHA-1 of the certificate.
    pub check_value: Vec<u8>,
}

/// Reads a DER certificate; `CKR_ATTRIBUTE_VALUE_INVALID` when it is not one.
pub fn certificate_fields(der: &[u8]) -> Result<CertificateFields> {
    let certificate = X509::from_der(der).map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?;
    let serial = certificate.serial_number().to_bn().map_err(openssl_error)?;
    Ok(CertificateFields {
        subject: certificate.subject_name().to_der().map_err(openssl_error)?,
        issuer: certificate.issuer_name().to_der().map_err(openssl_error)?,
        serial_number: der_integer(&serial.to_vec(), serial.is_negative()),
        public_key_info: certificate
            .public_key()
            .and_then(|key| key.public_key_to_der())
            .map_err(openssl_error)?,
        check_value: hash(MessageDigest::sha1(), der).map_err(openssl_error)?[..3].to_vec(),
    })
}

/// A certificate as an operator reads it (`sqlhsm cert show`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateText {
    /// `CN=…, O=…`, in the certificate's order.
    pub subject: String,
    pub issuer: String,
    /// The serial number in hex, colon-separated bytes.
    pub serial: String,
    /// Validity, seconds since the epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// `rsaEncryption`, `id-ecPublicKey`, `ED25519`, … (the key's OpenSSL short name).
    pub key_type: String,
}

fn name_text(name: &openssl::x509::X509NameRef) -> String {
    name.entries()
        .map(|entry| {
            let field = entry.object().nid().short_name().unwrap_or("?");
            let value = entry
                .data()
                .to_string()
                .unwrap_or_else(|_| hex::encode(entry.data().as_slice()));
            format!("{field}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn unix_time(at: &openssl::asn1::Asn1TimeRef) -> Result<i64> {
    let epoch = openssl::asn1::Asn1Time::from_unix(0).map_err(openssl_error)?;
    let diff = epoch.diff(at).map_err(openssl_error)?;
    Ok(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
}

/// Reads a DER certificate's subject, issuer, serial and validity.
pub fn describe_certificate(der: &[u8]) -> Result<CertificateText> {
    let certificate = X509::from_der(der).map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?;
    let serial = certificate.serial_number().to_bn().map_err(openssl_error)?;
    let serial = serial
        .to_vec()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let key_type = certificate
        .public_key()
        .ok()
        .and_then(|key| {
            openssl::nid::Nid::from_raw(key.id().as_raw())
                .short_name()
                .ok()
        })
        .unwrap_or("unknown")
        .to_string();
    Ok(CertificateText {
        subject: name_text(certificate.subject_name()),
        issuer: name_text(certificate.issuer_name()),
        serial: if serial.is_empty() {
            "00".into()
        } else {
            serial
        },
        not_before: unix_time(certificate.not_before())?,
        not_after: unix_time(certificate.not_after())?,
        key_type,
    })
}

/// DER INTEGER from big-endian magnitude bytes (serial numbers are positive in practice; a
/// negative one is kept as its magnitude with the sign bit honoured as OpenSSL reports it).
fn der_integer(magnitude: &[u8], negative: bool) -> Vec<u8> {
    let mut content: Vec<u8> = magnitude.iter().copied().skip_while(|b| *b == 0).collect();
    if content.is_empty() {
        content.push(0);
    }
    if !negative && content[0] & 0x80 != 0 {
        content.insert(0, 0);
    }
    der::tlv(der::INTEGER, &content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::{X509Builder, X509NameBuilder};

    fn self_signed(serial: u32) -> Vec<u8> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "sqlhsm test").unwrap();
        let name = name.build();
        let mut builder = X509Builder::new().unwrap();
        builder.set_version(2).unwrap();
        builder.set_subject_name(&name).unwrap();
        builder.set_issuer_name(&name).unwrap();
        builder.set_pubkey(&key).unwrap();
        let serial = BigNum::from_u32(serial).unwrap().to_asn1_integer().unwrap();
        builder.set_serial_number(&serial).unwrap();
        builder
            .set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        builder
            .set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        builder.sign(&key, MessageDigest::sha256()).unwrap();
        builder.build().to_der().unwrap()
    }

    #[test]
    fn fields_come_from_the_certificate() {
        let der = self_signed(0x80);
        let fields = certificate_fields(&der).unwrap();
        assert_eq!(
            fields.serial_number,
            vec![0x02, 0x02, 0x00, 0x80],
            "positive INTEGER keeps a 0 pad"
        );
        assert_eq!(fields.subject, fields.issuer, "self-signed");
        assert_eq!(fields.check_value.len(), 3);
        assert!(!fields.public_key_info.is_empty());
        assert_eq!(
            certificate_fields(b"not a certificate").unwrap_err().rv(),
            Rv::ATTRIBUTE_VALUE_INVALID
        );
    }

    #[test]
    fn a_certificate_reads_as_text() {
        let der = self_signed(0x1234);
        let text = describe_certificate(&der).unwrap();
        assert_eq!(text.subject, "CN=sqlhsm test");
        assert_eq!(text.issuer, text.subject);
        assert_eq!(text.serial, "12:34");
        assert_eq!(text.key_type, "id-ecPublicKey");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((text.not_before - now).abs() < 120, "{text:?}");
        assert!(
            (text.not_after - text.not_before - 86_400).abs() < 120,
            "{text:?}"
        );
        assert!(describe_certificate(b"junk").is_err());
    }
}
