//! A PostgreSQL cluster and a PgBouncer of a test's own, on free ports in a temporary
//! directory, so that a test may restart the database under load without disturbing any other
//! test. Used by the pooling tests and by `benches/pooled.rs`.
//!
//! The cluster is made with the machine's `initdb` (the newest under `/usr/lib/postgresql`, or
//! on `PATH`); PgBouncer is the binary `GUILDHALL_TEST_PGBOUNCER` names (1.21 or later, for
//! `max_prepared_statements`; `.ci/pgbouncer` builds one). Both refuse to run as root, so as
//! root they run as the `postgres` user.
#![allow(dead_code)]

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (free when asked; taken by whoever binds it next).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("address")
        .port()
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A command run as the database's owner: `postgres` when this process is root.
fn as_owner(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A program of the newest PostgreSQL installed (or the one on `PATH`).
pub fn postgres_bin(name: &str) -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin").join(name);
            bin.exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .unwrap_or_else(|| PathBuf::from(name))
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A directory owned by the user the database programs run as, removed when dropped.
struct OwnedDir(PathBuf);

impl OwnedDir {
    fn new(prefix: &str) -> OwnedDir {
        let output = as_owner(Path::new("mktemp"))
            .args(["-d", &format!("/tmp/{prefix}-XXXXXX")])
            .output()
            .expect("mktemp");
        assert!(
            output.status.success(),
            "mktemp: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        OwnedDir(PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
    }
}

impl Drop for OwnedDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A PostgreSQL cluster of its own, stopped and removed when dropped.
pub struct Cluster {
    dir: OwnedDir,
    pub port: u16,
}

impl Cluster {
    pub fn start() -> Cluster {
        let dir = OwnedDir::new("guildhall-cluster");
        let data = dir.0.join("data");
        run(
            as_owner(&postgres_bin("initdb"))
                .args(["-D"])
                .arg(&data)
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
                .stdout(Stdio::null()),
            "initdb",
        );
        let port = free_port();
        let cluster = Cluster { dir, port };
        let options = format!(
            "-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            cluster.dir.0.display()
        );
        run(
            as_owner(&postgres_bin("pg_ctl"))
                .arg("-D")
                .arg(cluster.data())
                .arg("-l")
                .arg(cluster.dir.0.join("postgres.log"))
                .args(["-o", &options, "-w", "-t", "60", "start"])
                .stdout(Stdio::null()),
            "pg_ctl start",
        );
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.0.join("data")
    }

    /// The URL of database `name` on this cluster, straight to PostgreSQL.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates database `name`.
    pub fn create_database(&self, name: &str) {
        run(
            Command::new(postgres_bin("psql"))
                .args(["-X", "-q", "-d", &self.url("postgres"), "-c"])
                .arg(format!("CREATE DATABASE \"{name}\"")),
            "CREATE DATABASE",
        );
    }

    /// Stops PostgreSQL (fast shutdown: sessions are ended, in-flight transactions roll back)
    /// and starts it again with the same settings, waiting until it accepts connections.
    pub fn restart(&self) {
        run(
            as_owner(&postgres_bin("pg_ctl"))
                .arg("-D")
                .arg(self.data())
                .args(["-m", "fast", "-w", "-t", "60", "restart"])
                .stdout(Stdio::null()),
            "pg_ctl restart",
        );
    }

    /// What PostgreSQL wrote to its log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = as_owner(&postgres_bin("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A PgBouncer in transaction pooling mode in front of one database of a [`Cluster`], killed
/// when dropped.
pub struct Pooler {
    child: Child,
    dir: OwnedDir,
    pub port: u16,
}

impl Pooler {
    /// The PgBouncer binary to use, if the environment names one.
    pub fn binary() -> Option<PathBuf> {
        std::env::var_os("GUILDHALL_TEST_PGBOUNCER")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    }

    /// Starts `binary` pooling database `database` of `cluster` over `server_connections`
    /// connections to PostgreSQL, however many clients connect.
    pub fn start(binary: &Path, cluster: &Cluster, database: &str, server_connections: u32) -> Pooler {
        let dir = OwnedDir::new("guildhall-pooler");
        let port = free_port();
        let config = dir.0.join("pgbouncer.ini");
        std::fs::write(
            &config,
            format!(
                "[databases]\n\
                 {database} = host=127.0.0.1 port={pg} dbname={database} user=postgres\n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {port}\n\
                 unix_socket_dir =\n\
                 auth_type = any\n\
                 pool_mode = transaction\n\
                 max_prepared_statements = 1000\n\
                 default_pool_size = {server_connections}\n\
                 max_client_conn = 1000\n\
                 ignore_startup_parameters = extra_float_digits\n\
                 server_login_retry = 0.2\n\
                 query_wait_timeout = 30\n\
                 logfile = {log}\n",
                pg = cluster.port,
                log = dir.0.join("pgbouncer.log").display(),
            ),
        )
        .expect("write pgbouncer.ini");
        let child = as_owner(binary)
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pgbouncer");
        let pooler = Pooler { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "pgbouncer never listened: {}", pooler.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        pooler
    }

    /// The URL of the pooled database.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for Pooler {
    fn drop(&mut self) {
        // As root the child is runuser, which does not pass a kill on: PgBouncer itself is
        // found by its config file and told to quit at once (SIGQUIT: immediate shutdown).
        let config = self.dir.0.join("pgbouncer.ini").display().to_string();
        let _ = Command::new("pkill").args(["-QUIT", "-f", &config]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && !matches!(self.child.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
