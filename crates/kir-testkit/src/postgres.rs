//! A PostgreSQL server for one test process. `KIR_TEST_POSTGRES_URL` points at an existing
//! server instead (its user must be allowed to create databases).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT_DB: AtomicU32 = AtomicU32::new(0);

pub struct PostgresServer {
    /// URL of the maintenance database, used to create test databases.
    admin_url: String,
    /// Set when this process started the server (and must stop it).
    owned: Option<Owned>,
}

struct Owned {
    bin: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
    as_postgres: bool,
}

fn run(cmd: &mut Command, what: &str) {
    if let Err(why) = try_run(cmd, what) {
        panic!("{why}");
    }
}

fn try_run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!("{what} failed: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn find_bin() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    dirs.sort();
    dirs.pop().or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths).find(|p| p.join("pg_ctl").exists() && p.join("initdb").exists())
        })
    })
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

impl PostgresServer {
    /// A server for `test`, or `None` (the test returns at once) when PostgreSQL is not
    /// installed or cannot start here and `KIR_REQUIRE_POSTGRES` is not set: a fresh machine runs `cargo test
    /// --workspace` without it, and each such test says on the terminal that it was skipped.
    /// `.ci/run` sets `KIR_REQUIRE_POSTGRES=1`, where a missing server fails the test.
    pub fn start_or_skip(test: &str) -> Option<PostgresServer> {
        let required = std::env::var_os("KIR_REQUIRE_POSTGRES").is_some_and(|v| !v.is_empty() && v != "0");
        if required || std::env::var_os("KIR_TEST_POSTGRES_URL").is_some() {
            return Some(PostgresServer::start());
        }
        match PostgresServer::try_start() {
            Ok(server) => Some(server),
            Err(why) => {
                crate::say_skipped(test, &format!("{why}; .ci/run requires PostgreSQL"));
                None
            }
        }
    }

    /// Starts a server (or uses `KIR_TEST_POSTGRES_URL`). Panics with what to install when
    /// PostgreSQL is missing or cannot start.
    pub fn start() -> PostgresServer {
        PostgresServer::try_start().unwrap_or_else(|why| panic!("{why}"))
    }

    /// Starts a server (or uses `KIR_TEST_POSTGRES_URL`); says why when it cannot.
    pub fn try_start() -> Result<PostgresServer, String> {
        if let Ok(url) = std::env::var("KIR_TEST_POSTGRES_URL") {
            return Ok(PostgresServer { admin_url: url, owned: None });
        }
        let bin = find_bin().ok_or(
            "PostgreSQL is not installed: install it (apt-get install -y postgresql) \
             or set KIR_TEST_POSTGRES_URL=postgres://USER@HOST:PORT/postgres",
        )?;
        let as_postgres = is_root();
        let dir = tempfile::Builder::new().prefix("kir-pg-").tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let data = dir.path().join("data");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("free port: {e}"))?
            .port();
        let user = if as_postgres {
            "postgres".to_string()
        } else {
            std::env::var("USER").unwrap_or_else(|_| "postgres".into())
        };
        if as_postgres {
            // initdb refuses to run as root; the data directory belongs to the postgres user.
            try_run(Command::new("chown").arg("-R").arg("postgres").arg(dir.path()), "chown")?;
            try_run(Command::new("chmod").arg("755").arg(dir.path()), "chmod")?;
        }
        let command = |tool: &str| -> Command {
            if as_postgres {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
                c
            } else {
                Command::new(bin.join(tool))
            }
        };
        try_run(
            command("initdb")
                .arg("-D")
                .arg(&data)
                .args(["--auth=trust", "-U", &user, "--no-sync"])
                .stdout(Stdio::null()),
            "initdb",
        )?;
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=120 -c shared_buffers=16MB -c dynamic_shared_memory_type=mmap",
            dir.path().display()
        );
        try_run(
            command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-o", &options, "-w", "-l"])
                .arg(dir.path().join("log"))
                .arg("start")
                .stdout(Stdio::null()),
            "pg_ctl start",
        )?;
        Ok(PostgresServer {
            admin_url: format!("postgres://{user}@127.0.0.1:{port}/postgres"),
            owned: Some(Owned { bin, data, _dir: dir, as_postgres }),
        })
    }

    /// A new, empty database on this server: its URL.
    pub fn new_database(&self) -> String {
        let name = format!("kir_test_{}_{}", std::process::id(), NEXT_DB.fetch_add(1, Ordering::SeqCst));
        let psql = self.psql();
        run(
            Command::new(&psql).args([&self.admin_url, "-q", "-c", &format!("CREATE DATABASE {name}")]),
            "CREATE DATABASE",
        );
        let base = self.admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&self.admin_url);
        format!("{base}/{name}")
    }

    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    fn psql(&self) -> PathBuf {
        match &self.owned {
            Some(o) => o.bin.join("psql"),
            None => find_bin().map(|b| b.join("psql")).unwrap_or_else(|| PathBuf::from("psql")),
        }
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if let Some(o) = &self.owned {
            let mut c = if o.as_postgres {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(o.bin.join("pg_ctl"));
                c
            } else {
                Command::new(o.bin.join("pg_ctl"))
            };
            let _ = c.arg("-D").arg(&o.data).args(["-m", "immediate", "-w", "stop"]).stdout(Stdio::null()).status();
            let _ = Path::new(&o.data).exists();
        }
    }
}
