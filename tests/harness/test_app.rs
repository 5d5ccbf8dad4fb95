//! `TestApp`: the real `banter` application on a free port, on SQLite or PostgreSQL, with a
//! reqwest client and typed helpers for the common flows.

use std::collections::HashMap;

use banter_server::{Application, Settings, StopHandle};
use banter_store::Store;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::PgCluster;

/// The JWT secret test apps sign with, so tests can forge and tamper with tokens.
pub const JWT_SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";

#[derive(Clone, Copy, Debug)]
pub enum TestBackend {
    Sqlite,
    /// PostgreSQL primary only.
    Postgres,
    /// PostgreSQL primary with the streaming replica configured for reads.
    PostgresWithReplica,
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub store: Store,
    /// The PostgreSQL database name, when on PostgreSQL.
    pub database: Option<String>,
    /// The database URL the app was given (a second `Store` on it acts as a second node).
    pub database_url: String,
    stop: StopHandle,
    _dir: Option<tempfile::TempDir>,
}

/// A signed-in user.
#[derive(Clone, Debug)]
pub struct Session {
    pub user_id: String,
    pub username: String,
    pub access_token: String,
    pub refresh_token: String,
    pub device_id: String,
}

impl TestApp {
    pub async fn spawn(backend: TestBackend) -> TestApp {
        Self::spawn_with(backend, &[]).await
    }

    /// Spawns with extra `BANTER_*` settings (e.g. tight rate limits).
    pub async fn spawn_with(backend: TestBackend, extra: &[(&str, &str)]) -> TestApp {
        let mut env = default_env();
        let mut dir = None;
        let mut database = None;
        match backend {
            TestBackend::Sqlite => {
                let tmp = tempfile::tempdir().expect("temp dir");
                env.insert(
                    "BANTER_DATABASE_URL".into(),
                    format!("sqlite://{}", tmp.path().join("banter.db").display()),
                );
                dir = Some(tmp);
            }
            TestBackend::Postgres | TestBackend::PostgresWithReplica => {
                let cluster = PgCluster::shared();
                let db = cluster.create_database().await;
                env.insert("BANTER_DATABASE_URL".into(), cluster.primary_url(&db));
                if matches!(backend, TestBackend::PostgresWithReplica) {
                    env.insert(
                        "BANTER_DATABASE_REPLICA_URLS".into(),
                        cluster.replica_url(&db),
                    );
                }
                database = Some(db);
            }
        }
        for (k, v) in extra {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        Self::spawn_env(env, dir, database).await
    }

    /// Another node on this app's (PostgreSQL) database, with extra settings.
    pub async fn spawn_beside(&self, extra: &[(&str, &str)]) -> TestApp {
        assert!(self.database.is_some(), "a second node needs PostgreSQL");
        let mut env = default_env();
        env.insert("BANTER_DATABASE_URL".into(), self.database_url.clone());
        for (k, v) in extra {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        Self::spawn_env(env, None, None).await
    }

    pub async fn spawn_env(
        env: HashMap<String, String>,
        dir: Option<tempfile::TempDir>,
        database: Option<String>,
    ) -> TestApp {
        let database_url = env.get("BANTER_DATABASE_URL").cloned().unwrap_or_default();
        let settings = Settings::load_from(None, env).expect("test settings");
        let app = Application::build(settings)
            .await
            .expect("building the app");
        let address = format!("http://127.0.0.1:{}", app.port());
        let store = app.store().clone();
        let stop = app.stop_handle();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            address,
            client: {
                banter_api::install_tls_provider();
                reqwest::Client::builder()
            }
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
            store,
            database,
            database_url,
            stop,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.client.get(self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.expect("GET failed")
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path)).json(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.expect("request failed")
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.send_json(reqwest::Method::POST, path, token, body)
            .await
    }

    /// Registers `username` (email `<username>@example.com`, password `password-<username>`).
    pub async fn register(&self, username: &str) -> Session {
        let res = self
            .post_json(
                "/api/auth/register",
                None,
                &json!({
                    "email": format!("{username}@example.com"),
                    "username": username,
                    "password": format!("password-{username}"),
                    "device_id": format!("dev-{username}"),
                    "device_info": {"platform": "test"},
                }),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED, "register {username}");
        session_from(res.json().await.unwrap())
    }

    pub async fn login(&self, login: &str, password: &str, device_id: &str) -> Response {
        self.post_json(
            "/api/auth/login",
            None,
            &json!({"login": login, "password": password, "device_id": device_id}),
        )
        .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("DELETE failed")
    }

    /// Registers video `id` owned by `owner` with `visibility`; asserts 201.
    pub async fn create_video(&self, owner: &Session, id: &str, visibility: &str) {
        let res = self
            .post_json(
                "/api/videos",
                Some(&owner.access_token),
                &json!({"id": id, "visibility": visibility}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED, "create video {id}");
    }

    /// Adds (`true`) or removes `user` as a member of `video` as `owner`; asserts 204.
    pub async fn set_member(&self, owner: &Session, video: &str, user: &Session, member: bool) {
        let path = format!("/api/videos/{video}/members/{}", user.user_id);
        let res = if member {
            self.send_json(
                reqwest::Method::PUT,
                &path,
                Some(&owner.access_token),
                &json!({}),
            )
            .await
        } else {
            self.delete(&path, &owner.access_token).await
        };
        assert_eq!(
            res.status(),
            StatusCode::NO_CONTENT,
            "membership of {video}"
        );
    }

    /// `POST /api/auth/refresh` with this refresh token.
    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_json(
            "/api/auth/refresh",
            None,
            &json!({"refresh_token": refresh_token}),
        )
        .await
    }

    /// `POST /api/auth/logout` with this refresh token.
    pub async fn logout(&self, refresh_token: &str) -> Response {
        self.post_json(
            "/api/auth/logout",
            None,
            &json!({"refresh_token": refresh_token}),
        )
        .await
    }

    pub async fn post_comment(&self, token: &str, video: &str, body: &str) -> Response {
        self.post_json(
            &format!("/api/videos/{video}/comments"),
            Some(token),
            &json!({"body": body}),
        )
        .await
    }

    /// Gives `username` a role directly in the store (there is no API to become the first admin).
    pub async fn set_role(&self, username: &str, role: banter_core::Role) {
        let (user, _) = self
            .store
            .primary()
            .find_credentials(username)
            .await
            .unwrap()
            .expect("user exists");
        self.store
            .primary()
            .update_standing(user.id, Some(role), None)
            .await
            .unwrap();
    }

    pub async fn stop(&self) {
        self.stop.stop().await;
    }

    /// To stop from another task while this one keeps probing the app.
    pub fn stop_handle(&self) -> banter_server::StopHandle {
        self.stop.clone()
    }
}

/// The settings every test app starts from.
fn default_env() -> HashMap<String, String> {
    [
        ("BANTER_HTTP_ADDR", "127.0.0.1:0"),
        ("BANTER_JWT_SECRET", JWT_SECRET),
        ("BANTER_RATE_LOGIN_PER_MINUTE", "100000"),
        ("BANTER_RATE_REGISTER_PER_MINUTE", "100000"),
        ("BANTER_RATE_COMMENT_PER_MINUTE", "100000"),
        ("BANTER_RATE_COMMENT_BURST", "100000"),
        // Tests count every comment; the budget's own tests turn it on.
        ("BANTER_WS_MAX_COMMENTS_PER_SECOND_PER_VIEWER", "0"),
        ("BANTER_DATABASE_MAX_CONNECTIONS", "5"),
        ("BANTER_SHUTDOWN_TIMEOUT_SECS", "1"),
        ("BANTER_DRAIN_WINDOW_SECS", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub fn session_from(body: Value) -> Session {
    Session {
        user_id: body["user"]["id"].as_str().unwrap().to_owned(),
        username: body["user"]["username"].as_str().unwrap().to_owned(),
        access_token: body["access_token"].as_str().unwrap().to_owned(),
        refresh_token: body["refresh_token"].as_str().unwrap().to_owned(),
        device_id: body["device_id"].as_str().unwrap().to_owned(),
    }
}

/// Asserts the error envelope and returns the body.
pub async fn assert_error(res: Response, status: StatusCode, code: &str) -> Value {
    let actual = res.status();
    let retry_after = res.headers().get("retry-after").cloned();
    let body: Value = res.json().await.expect("error body is JSON");
    assert_eq!(actual, status, "body: {body}");
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(
        body["error"]["request_id"]
            .as_str()
            .is_some_and(|m| m.len() > 8)
    );
    if status == StatusCode::TOO_MANY_REQUESTS {
        assert!(retry_after.is_some(), "429 without Retry-After");
    }
    body
}

/// Creates a user straight in the store (no HTTP): email `<name>@example.com`, role user.
pub async fn create_user(store: &Store, name: &str) -> banter_core::UserId {
    store
        .primary()
        .create_user(banter_store::NewUser {
            email: banter_core::Email::parse(&format!("{name}@example.com")).unwrap(),
            username: banter_core::Username::parse(name).unwrap(),
            password_hash: "x".into(),
            role: banter_core::Role::User,
        })
        .await
        .unwrap()
        .id
}
