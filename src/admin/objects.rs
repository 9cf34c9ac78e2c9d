//! `sqlhsm cert list|show` and `sqlhsm data list|show`: the objects that are not keys
//! (`CKO_CERTIFICATE`, `CKO_DATA`, the `p11_object` table), read through the storage trait. A
//! certificate is public, so it is shown without a PIN: subject, issuer, serial number,
//! validity. A private data object's value is sealed under the token key and is never shown;
//! its attributes are.

use chrono::{DateTime, TimeZone, Utc};
use cryptoki_sys::*;
use serde_json::{json, Value};

use super::output::{self, or_dash, Table};
use super::{Admin, AdminResult, Failure};
use crate::core::attributes::AttrMap;
use crate::crypto::x509::{self, CertificateText};
use crate::storage::{KeyFilter, ObjectRow, TokenRow};

/// Which kind of object a command lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    Certificate,
    Data,
}

impl ObjectKind {
    fn class(self) -> CK_OBJECT_CLASS {
        match self {
            ObjectKind::Certificate => CKO_CERTIFICATE,
            ObjectKind::Data => CKO_DATA,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            ObjectKind::Certificate => "certificate",
            ObjectKind::Data => "data object",
        }
    }
}

/// One object as the admin shows it.
#[derive(Clone, Debug)]
pub struct ObjectInfo {
    /// The row id, which is also the object's `CKA_UNIQUE_ID`.
    pub object_id: String,
    pub token: String,
    pub label: String,
    /// `CKA_ID` in hex.
    pub ck_id: String,
    pub private: bool,
    /// `CKA_APPLICATION` of a data object.
    pub application: String,
    /// Length of `CKA_VALUE`; for a private object, of the sealed value.
    pub size: usize,
    /// `CKA_VALUE` of a public object.
    pub value: Option<Vec<u8>>,
    /// What a certificate says about itself; `Err` when its value does not parse.
    pub certificate: Option<Result<CertificateText, String>>,
    pub created_at: DateTime<Utc>,
}

fn text_attr(attrs: &AttrMap, kind: CK_ATTRIBUTE_TYPE) -> String {
    String::from_utf8_lossy(attrs.get(kind).unwrap_or_default()).into_owned()
}

fn rfc3339(seconds: i64) -> String {
    Utc.timestamp_opt(seconds, 0)
        .single()
        .map_or_else(|| format!("{seconds} s since 1970"), |at| at.to_rfc3339())
}

impl ObjectInfo {
    fn from_row(row: &ObjectRow, kind: ObjectKind, token: &str) -> AdminResult<ObjectInfo> {
        let attrs = row
            .metadata
            .get("object")
            .map(AttrMap::from_json)
            .transpose()?
            .unwrap_or_else(AttrMap::new);
        let private = attrs.flag(CKA_PRIVATE);
        let stored = row.value.clone().unwrap_or_default();
        let value = (!private).then(|| stored.clone());
        let certificate = match (kind, &value) {
            (ObjectKind::Certificate, Some(der)) => {
                Some(x509::describe_certificate(der).map_err(|e| e.to_string()))
            }
            _ => None,
        };
        Ok(ObjectInfo {
            object_id: row.id.to_string(),
            token: token.to_string(),
            label: text_attr(&attrs, CKA_LABEL),
            ck_id: hex::encode(attrs.get(CKA_ID).unwrap_or_default()),
            private,
            application: text_attr(&attrs, CKA_APPLICATION),
            size: value.as_ref().map_or(stored.len(), Vec::len),
            value,
            certificate,
            created_at: row.created_at,
        })
    }

    fn to_json(&self, kind: ObjectKind, with_value: bool) -> Value {
        let mut shown = json!({
            "object_id": self.object_id,
            "token": self.token,
            "label": self.label,
            "id": self.ck_id,
            "private": self.private,
            "size": self.size,
            "created_at": self.created_at.to_rfc3339(),
        });
        if kind == ObjectKind::Data {
            shown["application"] = json!(self.application);
        }
        match &self.certificate {
            Some(Ok(c)) => {
                shown["subject"] = json!(c.subject);
                shown["issuer"] = json!(c.issuer);
                shown["serial"] = json!(c.serial);
                shown["not_before"] = json!(rfc3339(c.not_before));
                shown["not_after"] = json!(rfc3339(c.not_after));
                shown["key_type"] = json!(c.key_type);
            }
            Some(Err(e)) => shown["error"] = json!(e),
            None => {}
        }
        if with_value {
            if let Some(value) = &self.value {
                shown["value_hex"] = json!(hex::encode(value));
            }
        }
        shown
    }
}

impl Admin {
    /// The objects of `kind` on the tokens in scope, by token then label.
    pub fn objects(&self, kind: ObjectKind, token: Option<&str>) -> AdminResult<Vec<ObjectInfo>> {
        let tokens: Vec<TokenRow> = match token {
            Some(label) => vec![self.token(label)?],
            None => self.storage.list_tokens()?,
        };
        let mut out = Vec::new();
        for token in tokens {
            let filter = KeyFilter {
                provider_config_id: token.id,
                ..KeyFilter::default()
            };
            let class = i64::try_from(kind.class()).ok();
            for row in self.storage.find_objects(&filter, class)? {
                out.push(ObjectInfo::from_row(&row, kind, &token.provider_name)?);
            }
        }
        out.sort_by(|a, b| {
            (&a.token, &a.label, &a.object_id).cmp(&(&b.token, &b.label, &b.object_id))
        });
        Ok(out)
    }

    pub fn object_list(&self, kind: ObjectKind, token: Option<&str>) -> AdminResult<String> {
        let objects = self.objects(kind, token)?;
        if self.options.json {
            return Ok(output::json(&Value::Array(
                objects.iter().map(|o| o.to_json(kind, false)).collect(),
            )));
        }
        let mut table = match kind {
            ObjectKind::Certificate => {
                Table::new(&["OBJECT_ID", "LABEL", "TOKEN", "ID", "SUBJECT", "NOT AFTER"])
            }
            ObjectKind::Data => Table::new(&[
                "OBJECT_ID",
                "LABEL",
                "TOKEN",
                "APPLICATION",
                "PRIVATE",
                "SIZE",
            ]),
        };
        for o in &objects {
            let mut row = vec![
                o.object_id.clone(),
                or_dash(Some(o.label.clone())),
                o.token.clone(),
            ];
            match kind {
                ObjectKind::Certificate => {
                    row.push(or_dash(Some(o.ck_id.clone())));
                    match &o.certificate {
                        Some(Ok(c)) => {
                            row.push(c.subject.clone());
                            row.push(rfc3339(c.not_after));
                        }
                        _ => {
                            row.push("(unreadable)".into());
                            row.push("-".into());
                        }
                    }
                }
                ObjectKind::Data => {
                    row.push(or_dash(Some(o.application.clone())));
                    row.push(if o.private { "yes" } else { "no" }.into());
                    row.push(o.size.to_string());
                }
            }
            table.row(row);
        }
        Ok(table.render())
    }

    /// One object by its `OBJECT_ID` (as listed), or by a label only one such object has.
    pub fn object(&self, kind: ObjectKind, name: &str) -> AdminResult<ObjectInfo> {
        let objects = self.objects(kind, None)?;
        if let Some(found) = objects.iter().find(|o| o.object_id == name) {
            return Ok(found.clone());
        }
        let labelled: Vec<&ObjectInfo> = objects.iter().filter(|o| o.label == name).collect();
        match labelled.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Failure::refused(format!(
                "no {} with object id or label {name:?}",
                kind.noun()
            ))),
            many => Err(Failure::refused(format!(
                "{} {}s are labelled {name:?}: name one by its object id ({})",
                many.len(),
                kind.noun(),
                many.iter()
                    .map(|o| o.object_id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    pub fn object_show(&self, kind: ObjectKind, name: &str) -> AdminResult<String> {
        let o = self.object(kind, name)?;
        if self.options.json {
            return Ok(output::json(&o.to_json(kind, true)));
        }
        let mut fields = vec![
            ("object id", o.object_id.clone()),
            ("label", or_dash(Some(o.label.clone()))),
            ("CKA_ID", or_dash(Some(o.ck_id.clone()))),
            ("token", o.token.clone()),
        ];
        match kind {
            ObjectKind::Certificate => match &o.certificate {
                Some(Ok(c)) => {
                    fields.push(("subject", c.subject.clone()));
                    fields.push(("issuer", c.issuer.clone()));
                    fields.push(("serial", c.serial.clone()));
                    fields.push(("not before", rfc3339(c.not_before)));
                    fields.push(("not after", rfc3339(c.not_after)));
                    fields.push(("key type", c.key_type.clone()));
                }
                Some(Err(e)) => fields.push(("error", format!("the value does not parse: {e}"))),
                None => fields.push(("error", "a private certificate: value not shown".into())),
            },
            ObjectKind::Data => {
                fields.push(("application", or_dash(Some(o.application.clone()))));
                fields.push(("private", if o.private { "yes" } else { "no" }.into()));
                fields.push((
                    "value",
                    match &o.value {
                        Some(value) => or_dash(Some(hex::encode(value))),
                        None => "(sealed under the token key; not shown)".into(),
                    },
                ));
            }
        }
        fields.push(("size", format!("{} byte(s)", o.size)));
        fields.push(("created", o.created_at.to_rfc3339()));
        Ok(output::fields(&fields))
    }
}
