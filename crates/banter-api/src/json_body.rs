//! `JsonBody<T>`: a request body that must be a JSON object, decoded into `T`.
//!
//! actix's `web::Json<T>` hands the body straight to serde, whose derived structs also accept a
//! JSON array of the fields in order (`["alice", "pw"]` as a login), and whose errors name Rust
//! types ("expected struct LoginRequest with 4 elements"). This extractor reads the body with
//! the same limits and content-type rule (the registered `JsonConfig`), refuses anything but an
//! object with 422 `invalid_request`, and words decode errors without internal type names.
//!
//! Kept out: the rules of each field (the handlers parse them into `banter-core` values).

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{ApiError, codes};

pub struct JsonBody<T>(pub T);

impl<T> JsonBody<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonBody<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let value = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move {
            let value = value.await?.into_inner();
            if !value.is_object() {
                return Err(ApiError::Validation {
                    code: codes::INVALID_REQUEST,
                    message: format!(
                        "the request body must be a JSON object, not {}",
                        kind(&value)
                    ),
                }
                .into());
            }
            serde_json::from_value(value).map(JsonBody).map_err(|e| {
                ApiError::Validation {
                    code: codes::INVALID_FIELD,
                    message: plain(&e.to_string()),
                }
                .into()
            })
        })
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// serde's message with Rust's type names replaced by JSON's.
fn plain(message: &str) -> String {
    const INTEGERS: [&str; 12] = [
        "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
    ];
    let mut out = Vec::new();
    let mut words = message.split(' ').peekable();
    while let Some(word) = words.next() {
        let bare = word.trim_end_matches([',', '.', ';']);
        let tail = &word[bare.len()..];
        if bare == "struct" {
            // "struct LoginRequest" (and "with N elements" after it) is "an object".
            words.next();
            if words.peek() == Some(&"with") {
                words.next();
                words.next();
                words.next();
            }
            out.push(format!("an object{tail}"));
        } else if INTEGERS.contains(&bare) {
            out.push(format!("an integer{tail}"));
        } else if bare == "f32" || bare == "f64" {
            out.push(format!("a number{tail}"));
        } else {
            out.push(word.to_owned());
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::plain;

    #[test]
    fn rust_type_names_are_worded_as_json() {
        assert_eq!(
            plain("invalid type: sequence, expected struct LoginRequest with 4 elements"),
            "invalid type: sequence, expected an object"
        );
        assert_eq!(
            plain("invalid type: string \"5\", expected u32"),
            "invalid type: string \"5\", expected an integer"
        );
        assert_eq!(
            plain("invalid type: integer `5`, expected a string at line 1"),
            "invalid type: integer `5`, expected a string at line 1"
        );
        assert_eq!(plain("missing field `login`"), "missing field `login`");
    }
}
