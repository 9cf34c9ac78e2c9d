//! The names a rotated-out key gives up to its successor: a label the successor also carries
//! becomes `<label>@<predecessor key_id>`, a `CKA_ID` it also carries becomes those bytes
//! followed by the ASCII of `@<predecessor key_id>` (see `rotation` for why).

use cryptoki_sys::*;
use serde_json::Value;

use super::attributes::{self, AttrMap};
use super::keystore;
use crate::error::Result;

/// `@<key_id>`: what a rotated-out key's shared names get appended.
pub fn derived_suffix(key_id: &str) -> String {
    format!("@{key_id}")
}

/// The names a rotation changed on one object or row: `(old, new)` label and `CKA_ID`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Renamed {
    pub label: Option<(Vec<u8>, Vec<u8>)>,
    pub id: Option<(Vec<u8>, Vec<u8>)>,
}

impl Renamed {
    pub fn is_empty(&self) -> bool {
        self.label.is_none() && self.id.is_none()
    }

    /// Both objects' changes, this one's first where both renamed the same name.
    fn or(self, other: Renamed) -> Renamed {
        Renamed {
            label: self.label.or(other.label),
            id: self.id.or(other.id),
        }
    }

    /// Adds the old names to `before` and the new ones to `after` (label as text, `CKA_ID` as
    /// hex), for a history event.
    pub fn record(&self, before: &mut Value, after: &mut Value) {
        let text = |bytes: &[u8]| Value::String(String::from_utf8_lossy(bytes).into_owned());
        let hex = |bytes: &[u8]| Value::String(hex::encode(bytes));
        if let Some((old, new)) = &self.label {
            before["label"] = text(old);
            after["label"] = text(new);
        }
        if let Some((old, new)) = &self.id {
            before["id"] = hex(old);
            after["id"] = hex(new);
        }
    }
}

/// The renaming rule of a rotation: a label or `CKA_ID` of the predecessor (or of one of its
/// certificates) that the successor also carries gets `@<predecessor key_id>` appended — to the
/// label's text, to the `CKA_ID`'s bytes. A name the successor does not carry is kept.
#[derive(Clone, Debug)]
pub struct Renaming {
    suffix: Vec<u8>,
    labels: Vec<Vec<u8>>,
    ids: Vec<Vec<u8>>,
}

impl Renaming {
    /// The rule for the key `predecessor` replaced by a key whose row metadata is `successor`.
    pub fn new(predecessor: &str, successor: &Value) -> Result<Renaming> {
        let mut labels = Vec::new();
        let mut ids = Vec::new();
        for half in keystore::HALVES {
            if let Some(stored) = successor.get(keystore::half_name(half)) {
                let attrs = AttrMap::from_json(stored)?;
                labels.extend(attrs.get(CKA_LABEL).map(<[u8]>::to_vec));
                ids.extend(attrs.get(CKA_ID).map(<[u8]>::to_vec));
            }
        }
        Ok(Renaming {
            suffix: derived_suffix(predecessor).into_bytes(),
            labels,
            ids,
        })
    }

    fn derived(&self, name: &[u8]) -> Vec<u8> {
        [name, self.suffix.as_slice()].concat()
    }

    /// Renames one object's stored attributes in place.
    fn rename_attrs(&self, stored: &mut Value) -> Result<Renamed> {
        let attrs = AttrMap::from_json(stored)?;
        let mut renamed = Renamed::default();
        for (kind, shared) in [(CKA_LABEL, &self.labels), (CKA_ID, &self.ids)] {
            let Some(old) = attrs
                .get(kind)
                .filter(|name| shared.iter().any(|s| s == name))
            else {
                continue;
            };
            let new = self.derived(old);
            if let (Some((name, value)), Some(map)) =
                (attributes::stored_value(kind, &new), stored.as_object_mut())
            {
                map.insert(name.into(), value);
            }
            let change = Some((old.to_vec(), new));
            match kind {
                CKA_LABEL => renamed.label = change,
                _ => renamed.id = change,
            }
        }
        Ok(renamed)
    }

    /// A key's or plain object's row metadata with the rule applied to each object it holds,
    /// and what changed (the names of the object whose names are indexed first).
    pub fn rename_row(&self, metadata: &Value) -> Result<(Value, Renamed)> {
        let mut renamed_row = metadata.clone();
        let mut renamed = Renamed::default();
        for half in keystore::HALVES {
            if let Some(stored) = renamed_row.get_mut(keystore::half_name(half)) {
                renamed = renamed.or(self.rename_attrs(stored)?);
            }
        }
        keystore::lift_names(&mut renamed_row)?;
        Ok((renamed_row, renamed))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Row metadata of a pair named `label` / `id` (hex), as `keystore::row_metadata` writes it.
    fn pair(label: Value, id: &str) -> Value {
        json!({
            "label": label.as_str().unwrap_or("?"),
            "id": id,
            "public": { "label": label, "id": id, "verify": true },
            "private": { "label": label, "id": id, "sign": true },
            "rotated_from": "p256-0",
        })
    }

    #[test]
    fn the_names_the_successor_takes_get_the_key_id() {
        let renaming = Renaming::new("p256-1", &pair(json!("signer"), "01")).unwrap();
        let (renamed, what) = renaming.rename_row(&pair(json!("signer"), "01")).unwrap();
        let derived_id = hex::encode(b"\x01@p256-1");
        for half in ["public", "private"] {
            assert_eq!(renamed[half]["label"], "signer@p256-1");
            assert_eq!(renamed[half]["id"], derived_id.as_str());
        }
        assert_eq!(
            renamed["label"], "signer@p256-1",
            "lifted, where it is indexed"
        );
        assert_eq!(renamed["id"], derived_id.as_str());
        assert_eq!(renamed["public"]["verify"], true, "nothing else changes");
        assert_eq!(renamed["rotated_from"], "p256-0");
        assert_eq!(
            what,
            Renamed {
                label: Some((b"signer".to_vec(), b"signer@p256-1".to_vec())),
                id: Some((vec![1], b"\x01@p256-1".to_vec())),
            }
        );
        let (mut before, mut after) = (json!({}), json!({}));
        what.record(&mut before, &mut after);
        assert_eq!(before, json!({ "label": "signer", "id": "01" }));
        assert_eq!(after, json!({ "label": "signer@p256-1", "id": derived_id }));
    }

    #[test]
    fn a_name_the_successor_does_not_take_is_kept() {
        let renaming = Renaming::new("k", &pair(json!("new-label"), "01")).unwrap();
        let (renamed, what) = renaming.rename_row(&pair(json!("signer"), "01")).unwrap();
        assert_eq!(renamed["label"], "signer");
        assert_eq!(renamed["private"]["label"], "signer");
        assert_eq!(renamed["id"], hex::encode(b"\x01@k"));
        assert!(what.label.is_none() && what.id.is_some());

        let renaming = Renaming::new("k", &pair(json!("other"), "02")).unwrap();
        let original = pair(json!("signer"), "01");
        let (renamed, what) = renaming.rename_row(&original).unwrap();
        assert!(what.is_empty());
        assert_eq!(renamed, original);
    }

    #[test]
    fn a_label_that_is_not_text_keeps_its_bytes() {
        let binary = json!({ "hex": "ff00" });
        let renaming = Renaming::new("k", &pair(binary.clone(), "")).unwrap();
        let (renamed, what) = renaming.rename_row(&pair(binary, "")).unwrap();
        let label = [&[0xff, 0x00][..], b"@k"].concat();
        assert_eq!(
            renamed["private"]["label"],
            json!({ "hex": hex::encode(&label) })
        );
        assert_eq!(what.label, Some((vec![0xff, 0x00], label)));
        // An empty CKA_ID the successor shares becomes `@<key_id>`.
        assert_eq!(renamed["private"]["id"], hex::encode(b"@k"));
    }
}
