//! Key files an operator hands the admin command (`key import`): PEM or DER; PKCS#8 private keys
//! and SubjectPublicKeyInfo public keys, and the traditional PEM forms (`RSA PRIVATE KEY` =
//! PKCS#1, `EC PRIVATE KEY` = SEC1, `RSA PUBLIC KEY`), which OpenSSL turns into PKCS#8 / SPKI
//! first. Here rather than in the admin command because only `crypto` names OpenSSL; the errors
//! are sentences for the operator.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use openssl::ec::EcKey;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use zeroize::Zeroizing;

use super::keys::{PrivateKey, PublicKey};

/// What a key file held.
pub enum KeyFile {
    Private(PrivateKey),
    Public(PublicKey),
}

/// Why a key file cannot be used, said for the operator (the admin command's usage error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyFileError(pub String);

impl KeyFileError {
    fn new(message: impl Into<String>) -> KeyFileError {
        KeyFileError(message.into())
    }
}

type Result<T> = std::result::Result<T, KeyFileError>;

/// One PEM block: its label and decoded bytes.
fn pem_block(text: &str) -> Result<Option<(String, Zeroizing<Vec<u8>>)>> {
    let Some(start) = text.find("-----BEGIN ") else {
        return Ok(None);
    };
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest
        .find("-----")
        .ok_or_else(|| KeyFileError::new("malformed PEM: no end of the BEGIN line"))?;
    let label = rest[..label_end].to_string();
    let body_start = label_end + "-----".len();
    let end_marker = format!("-----END {label}-----");
    let body_end = rest[body_start..]
        .find(&end_marker)
        .ok_or_else(|| KeyFileError::new(format!("malformed PEM: no {end_marker} line")))?;
    let body = &rest[body_start..body_start + body_end];
    if body.contains(':') {
        return Err(KeyFileError::new(
            "encrypted (Proc-Type) PEM keys are not supported: decrypt the key first",
        ));
    }
    let base64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = B64
        .decode(base64.as_bytes())
        .map_err(|e| KeyFileError::new(format!("malformed PEM {label}: {e}")))?;
    Ok(Some((label, Zeroizing::new(der))))
}

fn invalid(what: &str) -> KeyFileError {
    KeyFileError::new(format!("cannot parse the key file: {what}"))
}

/// PKCS#1 / SEC1 private key DER → PKCS#8 DER.
fn traditional_to_pkcs8(label: &str, der: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let pkey = match label {
        "RSA PRIVATE KEY" => Rsa::private_key_from_der(der).and_then(PKey::from_rsa),
        _ => EcKey::private_key_from_der(der).and_then(PKey::from_ec_key),
    }
    .map_err(|_| invalid(label))?;
    Ok(Zeroizing::new(
        pkey.private_key_to_pkcs8().map_err(|_| invalid(label))?,
    ))
}

/// PKCS#1 `RSA PUBLIC KEY` DER → SPKI DER.
fn rsa_public_to_spki(der: &[u8]) -> Result<Vec<u8>> {
    Rsa::public_key_from_der_pkcs1(der)
        .and_then(|rsa| rsa.public_key_to_der())
        .map_err(|_| invalid("RSA PUBLIC KEY"))
}

/// Parses a key file's bytes: PEM (the first block) or DER (PKCS#8, then SPKI).
pub fn parse_key_file(bytes: &[u8]) -> Result<KeyFile> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        // `openssl ecparam -genkey` writes an EC PARAMETERS block before the key.
        let text = match text.find("-----END EC PARAMETERS-----") {
            Some(at) => &text[at + "-----END EC PARAMETERS-----".len()..],
            None => text,
        };
        if let Some((label, der)) = pem_block(text)? {
            return match label.as_str() {
                "PRIVATE KEY" => Ok(KeyFile::Private(
                    PrivateKey::from_pkcs8_der(&der).map_err(|_| invalid("PRIVATE KEY"))?,
                )),
                "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
                    let pkcs8 = traditional_to_pkcs8(&label, &der)?;
                    Ok(KeyFile::Private(
                        PrivateKey::from_pkcs8_der(&pkcs8).map_err(|_| invalid(&label))?,
                    ))
                }
                "PUBLIC KEY" => Ok(KeyFile::Public(
                    PublicKey::from_spki_der(&der).map_err(|_| invalid("PUBLIC KEY"))?,
                )),
                "RSA PUBLIC KEY" => Ok(KeyFile::Public(
                    PublicKey::from_spki_der(&rsa_public_to_spki(&der)?)
                        .map_err(|_| invalid("RSA PUBLIC KEY"))?,
                )),
                "ENCRYPTED PRIVATE KEY" => Err(KeyFileError::new(
                    "encrypted PKCS#8 keys are not supported: decrypt the key first (openssl pkcs8)",
                )),
                other => Err(KeyFileError::new(format!(
                    "unsupported PEM block {other:?}: use PRIVATE KEY, PUBLIC KEY, RSA/EC PRIVATE KEY or RSA PUBLIC KEY"
                ))),
            };
        }
    }
    if let Ok(private) = PrivateKey::from_pkcs8_der(bytes) {
        return Ok(KeyFile::Private(private));
    }
    if let Ok(public) = PublicKey::from_spki_der(bytes) {
        // OpenSSL reads any SPKI; keep to the key families the module uses (which curves it
        // has is the key-algorithm table's to say, asked by the caller).
        public
            .facts()
            .map_err(|_| invalid("unsupported key type"))?;
        return Ok(KeyFile::Public(public));
    }
    Err(invalid(
        "not PEM, PKCS#8 DER or SubjectPublicKeyInfo DER (use --aes for raw AES key bytes)",
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pkcs8_pem_and_der_and_public() {
        let key = PrivateKey::generate_ec(crate::crypto::test_keys::P256).unwrap();
        let der = key.to_pkcs8_der().unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            B64.encode(&*der)
        );
        assert!(matches!(
            parse_key_file(pem.as_bytes()).unwrap(),
            KeyFile::Private(_)
        ));
        assert!(matches!(parse_key_file(&der).unwrap(), KeyFile::Private(_)));
        let public = key.public_key().unwrap();
        let spki_pem = public.to_spki_pem().unwrap();
        assert!(matches!(
            parse_key_file(spki_pem.as_bytes()).unwrap(),
            KeyFile::Public(_)
        ));
        assert!(matches!(
            parse_key_file(&public.to_spki_der().unwrap()).unwrap(),
            KeyFile::Public(_)
        ));
        assert!(parse_key_file(b"garbage").is_err());
    }

    #[test]
    fn traditional_forms() {
        let rsa = Rsa::generate(2048).unwrap();
        let pem = rsa.private_key_to_pem().unwrap();
        assert!(matches!(parse_key_file(&pem).unwrap(), KeyFile::Private(_)));
        let public = rsa.public_key_to_pem_pkcs1().unwrap();
        assert!(matches!(
            parse_key_file(&public).unwrap(),
            KeyFile::Public(_)
        ));
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let ec = EcKey::generate(&group).unwrap();
        let pem = ec.private_key_to_pem().unwrap();
        assert!(matches!(parse_key_file(&pem).unwrap(), KeyFile::Private(_)));
    }
}
