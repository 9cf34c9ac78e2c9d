//! What a session may do with objects, read once per call: its token, whether it is
//! read/write, and who is logged in (PKCS#11 3.0 §5.6: private objects only for the user).

use cryptoki_sys::*;
use uuid::Uuid;

use super::module::{Login, Module};
use super::object::Object;
use super::session::LoginKind;
use super::template::{find_in_template, template_bool};
use crate::error::Result;
use crate::types::Attribute;

/// What a session may do, read once per call.
pub struct Access {
    pub token: Uuid,
    pub read_write: bool,
    pub login: Login,
}

impl Access {
    pub fn is_user(&self) -> bool {
        self.login.kind() == LoginKind::User
    }

    /// Private objects are invisible until the user logs in.
    pub fn can_see(&self, object: &Object) -> bool {
        object.token == self.token && (!object.is_private() || self.is_user())
    }

    /// The template of a new object with sqlhsm's `CKA_PRIVATE` default applied (PKCS#11 3.0
    /// §4.4 leaves the default to the token): a session object made by a session not logged in
    /// as the user is not private, since such a session could neither make nor see a private
    /// one; so an import without `CKA_PRIVATE` works there, as Kryoptic and pkcs11-provider
    /// expect. Every other object keeps its class's default (private for private and secret
    /// keys and data objects): a token object in particular, so leaving `CKA_PRIVATE` out never
    /// lets a session without login store a token object. Other defaults (`CKA_SENSITIVE`
    /// true, …) do not depend on the login.
    pub fn with_private_default<'a>(
        &self,
        template: &'a [Attribute],
    ) -> Result<std::borrow::Cow<'a, [Attribute]>> {
        let applies = !self.is_user()
            && template_bool(template, CKA_TOKEN)? != Some(true)
            && find_in_template(template, CKA_PRIVATE)?.is_none();
        if !applies {
            return Ok(std::borrow::Cow::Borrowed(template));
        }
        let mut completed = template.to_vec();
        completed.push(Attribute::from_bool(CKA_PRIVATE, false));
        Ok(std::borrow::Cow::Owned(completed))
    }
}

impl Module {
    pub fn access(&self, session: CK_SESSION_HANDLE) -> Result<Access> {
        let (_, token, read_write) = self.session_basics(session)?;
        let login = self.login_of(token)?;
        Ok(Access {
            token,
            read_write,
            login,
        })
    }
}
