//! A decoded client message and the serializer version negotiated by `vsn`.

use serde_json::Value;

/// The serializer a socket speaks, chosen once at connect by the `vsn` query parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vsn {
    /// `{"topic","event","payload","ref"}` objects; no binary frames.
    V1,
    /// `[join_ref, ref, topic, event, payload]` arrays, plus binary frames.
    V2,
}

impl Vsn {
    /// Phoenix's rule: a missing `vsn` means 1.0.0; `~> 2.0.0` is V2 and `~> 1.0.0` V1; anything
    /// else is refused (`None`).
    pub fn negotiate(vsn: Option<&str>) -> Option<Vsn> {
        let Some(vsn) = vsn else { return Some(Vsn::V1) };
        let mut parts = vsn.split('.');
        let major = parts.next()?;
        let rest: Vec<&str> = parts.collect();
        let numeric =
            |s: &str| !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit());
        if rest.len() != 2 || !numeric(major) || !rest.iter().all(|p| numeric(p)) {
            return None;
        }
        match major {
            "2" => Some(Vsn::V2),
            "1" => Some(Vsn::V1),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    Json(Value),
    /// From a V2 binary frame (kind 0).
    Binary(Vec<u8>),
}

impl Payload {
    pub fn json(&self) -> Option<&Value> {
        match self {
            Payload::Json(v) => Some(v),
            Payload::Binary(_) => None,
        }
    }
}

/// A client message. Refs are kept as the exact strings the client sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub join_ref: Option<String>,
    pub msg_ref: Option<String>,
    pub topic: String,
    pub event: String,
    pub payload: Payload,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vsn_negotiation_follows_phoenix() {
        assert_eq!(Vsn::negotiate(Some("2.0.0")), Some(Vsn::V2));
        assert_eq!(Vsn::negotiate(Some("1.0.0")), Some(Vsn::V1));
        assert_eq!(Vsn::negotiate(None), Some(Vsn::V1));
        for bad in ["123.1.1", "3.0.0", "2.0", "two", "", "2.0.0.0", "2..0"] {
            assert_eq!(Vsn::negotiate(Some(bad)), None, "{bad}");
        }
    }
}
