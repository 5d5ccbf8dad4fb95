//! A real identity provider for tests: `TestKey` (an RSA, EC P-256 or Ed25519 key pair made
//! by `openssl genpkey`, which signs tokens and publishes its JWK) and `JwksServer` (an
//! HTTP/1.1 server on a free loopback port serving the current key set with a
//! `Cache-Control: max-age`, counting fetches, and able to go down).

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
    public_pem: Vec<u8>,
}

fn openssl(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("running `openssl` to make test keys: install it with `apt-get install openssl`");
    if let Some(input) = input {
        child.stdin.take().unwrap().write_all(input).unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl {args:?} failed");
    out.stdout
}

impl TestKey {
    /// A new key pair for `alg` (RS256, ES256 or EdDSA).
    pub fn generate(kid: &str, alg: Algorithm) -> TestKey {
        let args: &[&str] = match alg {
            Algorithm::RS256 => &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
            Algorithm::ES256 => &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ],
            Algorithm::EdDSA => &["genpkey", "-algorithm", "ED25519"],
            other => panic!("no test keys for {other:?}"),
        };
        let private = openssl(args, None);
        let public_pem = openssl(&["pkey", "-pubout"], Some(&private));
        let encoding = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&private),
            Algorithm::ES256 => EncodingKey::from_ec_pem(&private),
            _ => EncodingKey::from_ed_pem(&private),
        }
        .expect("reading the generated key");
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).expect("the key's JWK");
        jwk.common.key_id = Some(kid.to_owned());
        TestKey {
            kid: kid.to_owned(),
            alg,
            encoding,
            jwk: serde_json::to_value(jwk).unwrap(),
            public_pem,
        }
    }

    pub fn jwk(&self) -> Value {
        self.jwk.clone()
    }

    /// The public key in PEM (what an algorithm-confusion attacker has).
    pub fn public_pem(&self) -> &[u8] {
        &self.public_pem
    }

    /// Signs `claims` with this key, naming it by `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, claims)
    }

    /// Signs `claims` with this key but names another `kid` in the header.
    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signing")
    }
}

#[derive(Default)]
struct Served {
    keys: Mutex<Vec<Value>>,
    max_age: AtomicU64,
    down: AtomicBool,
    fetches: AtomicUsize,
}

pub struct JwksServer {
    pub url: String,
    served: Arc<Served>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    pub async fn start(keys: &[&TestKey], max_age_secs: u64) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let served = Arc::new(Served::default());
        served.max_age.store(max_age_secs, Ordering::SeqCst);
        *served.keys.lock().unwrap() = keys.iter().map(|k| k.jwk()).collect();
        let state = served.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    state.fetches.fetch_add(1, Ordering::SeqCst);
                    if state.down.load(Ordering::SeqCst) {
                        let _ = socket
                            .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                            .await;
                        return;
                    }
                    let body = json!({"keys": *state.keys.lock().unwrap()}).to_string();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: public, max-age={}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        state.max_age.load(Ordering::SeqCst),
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        JwksServer { url, served, task }
    }

    /// Publishes these keys from now on (rotation).
    pub fn publish(&self, keys: &[&TestKey]) {
        *self.served.keys.lock().unwrap() = keys.iter().map(|k| k.jwk()).collect();
    }

    /// Answers 503 to every fetch while `down`.
    pub fn set_down(&self, down: bool) {
        self.served.down.store(down, Ordering::SeqCst);
    }

    /// Fetches so far (including those answered 503).
    pub fn fetches(&self) -> usize {
        self.served.fetches.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
