//! The page's static files, embedded with `include_str!`, each with a version (the first 12 hex
//! digits of its SHA-256) used in its URL, so a browser may cache it forever and still never run
//! a stale one. `app.js` imports `./phoenix.js`; that import is rewritten to the versioned URL,
//! so replacing the client changes the app's version too.
//!
//! Kept out: HTTP (`pages`).

use std::collections::HashMap;

use bytes::Bytes;
use sha2::{Digest, Sha256};

pub struct Asset {
    pub content_type: &'static str,
    pub body: Bytes,
    pub version: String,
}

pub struct Assets {
    files: HashMap<&'static str, Asset>,
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

fn version(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..6])
}

fn asset(content_type: &'static str, text: String) -> Asset {
    Asset {
        content_type,
        version: version(&text),
        body: Bytes::from(text),
    }
}

impl Assets {
    pub fn embedded() -> Assets {
        let phoenix = asset(JS, include_str!("../assets/phoenix.js").to_owned());
        let app = include_str!("../assets/app.js").replace(
            "from \"./phoenix.js\"",
            &format!("from \"./phoenix.js?v={}\"", phoenix.version),
        );
        let files = HashMap::from([
            ("phoenix.js", phoenix),
            ("app.js", asset(JS, app)),
            (
                "style.css",
                asset(CSS, include_str!("../assets/style.css").to_owned()),
            ),
        ]);
        Assets { files }
    }

    pub fn get(&self, name: &str) -> Option<&Asset> {
        self.files.get(name)
    }

    /// The versioned URL of an embedded file.
    pub fn url(&self, name: &str) -> String {
        let version = self.files.get(name).map_or("", |a| a.version.as_str());
        format!("/assets/{name}?v={version}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_imports_the_versioned_client() {
        let assets = Assets::embedded();
        let app = std::str::from_utf8(&assets.get("app.js").unwrap().body).unwrap();
        let client = assets.url("phoenix.js");
        assert!(app.contains(&format!(
            "from \".{}\"",
            client.trim_start_matches("/assets")
        )));
        assert!(!app.contains("from \"./phoenix.js\""));
        assert_eq!(assets.get("style.css").unwrap().version.len(), 12);
        assert!(assets.get("../Cargo.toml").is_none());
    }
}
