//! A PostgreSQL primary with a streaming replica, from the installed server binaries.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::free_port;
use crate::process::{command_as, is_root, on_exit, run};

const INSTALL_HINT: &str = "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; \
     install them with `apt-get install -y postgresql` (the test command does this)";

pub struct PgCluster {
    bin: PathBuf,
    base: PathBuf,
    pub primary_port: u16,
    pub replica_port: u16,
}

fn pg_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect(INSTALL_HINT)
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().expect(INSTALL_HINT).1
}

impl PgCluster {
    /// The cluster shared by every test of this process.
    pub fn shared() -> &'static PgCluster {
        static SHARED: OnceLock<PgCluster> = OnceLock::new();
        SHARED.get_or_init(PgCluster::start)
    }

    /// A cluster of one's own (for tests that stop or pause the replica).
    pub fn start() -> PgCluster {
        let bin = pg_bin();
        let base =
            std::env::temp_dir().join(format!("banter-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&base).expect("creating the cluster directory");
        if is_root() {
            run(
                {
                    let mut c = std::process::Command::new("chown");
                    c.arg("postgres:postgres").arg(&base);
                    c
                },
                "chown the cluster directory to postgres",
            );
        }
        let cluster = PgCluster {
            primary_port: free_port(),
            replica_port: free_port(),
            bin,
            base,
        };
        on_exit(&format!(
            "{stop_p}; {stop_r}; rm -rf {base}",
            stop_p = cluster.stop_command("primary"),
            stop_r = cluster.stop_command("replica"),
            base = cluster.base.display()
        ));
        cluster.init_primary();
        cluster.start_node("primary", cluster.primary_port);
        cluster.base_backup();
        cluster.start_node("replica", cluster.replica_port);
        cluster
    }

    fn tool(&self, name: &str) -> std::process::Command {
        command_as("postgres", &self.bin.join(name))
    }

    fn dir(&self, node: &str) -> PathBuf {
        self.base.join(node)
    }

    fn stop_command(&self, node: &str) -> String {
        let pg_ctl = self.bin.join("pg_ctl");
        let prefix = if is_root() {
            "runuser -u postgres -- "
        } else {
            ""
        };
        format!(
            "{prefix}{} -D {} stop -m immediate >/dev/null 2>&1",
            pg_ctl.display(),
            self.dir(node).display()
        )
    }

    fn init_primary(&self) {
        let mut initdb = self.tool("initdb");
        initdb.arg("-D").arg(self.dir("primary")).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        ]);
        run(initdb, "initdb");
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{base}'\n\
             wal_level = replica\nmax_wal_senders = 10\nhot_standby = on\nmax_connections = 400\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
             shared_buffers = 64MB\nwal_keep_size = 256MB\nlog_min_messages = warning\n",
            base = self.base.display()
        );
        append(&self.dir("primary").join("postgresql.conf"), &conf);
    }

    fn base_backup(&self) {
        let mut backup = self.tool("pg_basebackup");
        backup
            .arg("-D")
            .arg(self.dir("replica"))
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ])
            .arg("-p")
            .arg(self.primary_port.to_string());
        run(backup, "pg_basebackup for the replica");
    }

    fn start_node(&self, node: &str, port: u16) {
        let mut start = self.tool("pg_ctl");
        start
            .arg("-D")
            .arg(self.dir(node))
            .arg("-l")
            .arg(self.dir(node).join("server.log"))
            .arg("-o")
            .arg(format!("-p {port}"))
            .args(["-w", "-t", "60", "start"]);
        run(start, &format!("starting the PostgreSQL {node}"));
    }

    /// Stops the replica (fast shutdown).
    pub fn stop_replica(&self) {
        let mut stop = self.tool("pg_ctl");
        stop.arg("-D")
            .arg(self.dir("replica"))
            .args(["-m", "fast", "-w", "stop"]);
        run(stop, "stopping the replica");
    }

    pub fn start_replica(&self) {
        self.start_node("replica", self.replica_port);
    }

    pub fn primary_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.primary_port)
    }

    pub fn replica_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.replica_port)
    }

    /// A fresh, empty database, present on the replica too when this returns.
    pub async fn create_database(&self) -> String {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&self.primary_url("postgres"))
            .await
            .expect("connecting to the test primary");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("creating a test database");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if PgConnection::connect(&self.replica_url(&name))
                .await
                .is_ok()
            {
                return name;
            }
            assert!(
                Instant::now() < deadline,
                "the replica never saw database {name}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs one SQL statement on the replica's copy of `db` (e.g. to pause WAL replay).
    pub async fn on_replica(&self, db: &str, sql: &'static str) {
        let mut conn = PgConnection::connect(&self.replica_url(db))
            .await
            .expect("connecting to the replica");
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .expect("replica statement");
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("opening postgresql.conf");
    file.write_all(text.as_bytes())
        .expect("writing postgresql.conf");
}
