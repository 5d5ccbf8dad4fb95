//! Devices: the client installations a user signs in from. A `DeviceId` is chosen by the client
//! (stable per installation); refresh tokens belong to one device, so revoking a device signs
//! that installation out.

use time::OffsetDateTime;

use crate::UserId;

pub const DEVICE_ID_MAX_LEN: usize = 128;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeviceId(String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeviceIdError {
    #[error("device id must have 1 to {max} characters")]
    Length { max: usize },
    #[error("device id may contain only ASCII letters, digits, '-', '_', '.' and ':'")]
    InvalidCharacter,
}

impl DeviceId {
    pub fn parse(raw: &str) -> Result<Self, DeviceIdError> {
        if raw.is_empty() || raw.len() > DEVICE_ID_MAX_LEN {
            return Err(DeviceIdError::Length {
                max: DEVICE_ID_MAX_LEN,
            });
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        {
            return Err(DeviceIdError::InvalidCharacter);
        }
        Ok(Self(raw.to_owned()))
    }
}

impl AsRef<str> for DeviceId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A device as recorded at login or registration. `info` is the client's own description
/// (a JSON object, e.g. `{"ua": "...", "platform": "web"}`), kept as text and never interpreted.
#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub info_json: String,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub is_active: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_are_bounded_and_safe() {
        assert!(DeviceId::parse("web-3f2a:tab.1").is_ok());
        assert!(DeviceId::parse("").is_err());
        assert!(DeviceId::parse(&"a".repeat(129)).is_err());
        assert_eq!(DeviceId::parse("a b"), Err(DeviceIdError::InvalidCharacter));
    }
}
