//! Real servers the tests start themselves on 127.0.0.1 and stop when dropped: a throwaway
//! PostgreSQL cluster (Debian's `postgresql` package, which `make test`'s setup installs) and
//! s3s-fs, an S3-compatible server on a folder (built once into the cache by the setup). A
//! missing server is a failure naming the command that installs it, never a skip.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A free TCP port on 127.0.0.1 (the OS picks; the listener is closed before the server binds).
fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A fresh scratch folder for a server's data.
fn scratch(kind: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("twinray-{kind}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Waits until `ready` says yes, or fails after `limit` naming the server and its log.
fn wait_until(
    what: &str,
    log: &Path,
    limit: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let tail = std::fs::read_to_string(log).unwrap_or_default();
    bail!(
        "{what} did not start within {limit:?}; its log ({}):\n{tail}",
        log.display()
    )
}

/// Stops a child: SIGINT (PostgreSQL's fast shutdown; s3s-fs exits on it), then SIGKILL.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The uid and gid of a user (PostgreSQL refuses to run as root).
fn user_ids(name: &str) -> Result<(u32, u32)> {
    let id = |flag: &str| -> Result<u32> {
        let out = Command::new("id")
            .args([flag, name])
            .output()
            .with_context(|| format!("running id {flag} {name}"))?;
        if !out.status.success() {
            bail!("no '{name}' user (the postgresql package creates it: run `make setup`)");
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
    };
    Ok((id("-u")?, id("-g")?))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A throwaway PostgreSQL cluster.
pub struct Postgres {
    child: Child,
    data: PathBuf,
    port: u16,
}

impl Postgres {
    /// Creates a cluster in a scratch folder and starts it on a free port of 127.0.0.1, with
    /// `trust` authentication for the `twinray` superuser and fsync off (a test cluster).
    ///
    /// # Errors
    /// If PostgreSQL is not installed or does not start.
    pub fn start() -> Result<Self> {
        let bin = postgres_bin()?;
        let data = scratch("postgres")?;
        let cluster = data.join("cluster");
        let as_owner = |cmd: &mut Command| -> Result<()> {
            if is_root() {
                let (uid, gid) = user_ids("postgres")?;
                std::os::unix::fs::chown(&data, Some(uid), Some(gid))
                    .with_context(|| format!("handing {} to postgres", data.display()))?;
                cmd.uid(uid).gid(gid);
            }
            Ok(())
        };
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args([
                "-A",
                "trust",
                "-U",
                "twinray",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "-D",
            ])
            .arg(&cluster)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        as_owner(&mut initdb)?;
        let out = initdb.output().context("running initdb")?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let port = free_port()?;
        let log = data.join("postgres.log");
        let log_file = std::fs::File::create(&log)?;
        if is_root() {
            let (uid, gid) = user_ids("postgres")?;
            std::os::unix::fs::chown(&log, Some(uid), Some(gid))?;
        }
        let mut server = Command::new(bin.join("postgres"));
        server
            .arg("-D")
            .arg(&cluster)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", data.display()))
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .stdout(Stdio::null())
            .stderr(log_file);
        as_owner(&mut server)?;
        let child = server.spawn().context("starting postgres")?;
        let pg = Self { child, data, port };
        let url = pg.url("postgres");
        wait_until("PostgreSQL", &log, Duration::from_secs(60), || {
            postgres::Client::connect(&url, postgres::NoTls).is_ok()
        })?;
        Ok(pg)
    }

    /// The URL of database `db`.
    #[must_use]
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://twinray@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates an empty database and returns its URL.
    ///
    /// # Errors
    /// If it cannot be created.
    pub fn create_database(&self, name: &str) -> Result<String> {
        let mut admin = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)?;
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\""))?;
        admin.batch_execute(&format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.url(name))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        stop(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// The newest installed PostgreSQL's bin folder.
fn postgres_bin() -> Result<PathBuf> {
    let base = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(base)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| {
                    let v = e.file_name().to_string_lossy().parse().ok()?;
                    let bin = e.path().join("bin");
                    bin.join("initdb").is_file().then_some((v, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
        .pop()
        .map(|(_, b)| b)
        .context("PostgreSQL's server is not installed (no /usr/lib/postgresql/*/bin/initdb): run `make setup`")
}

/// An s3s-fs server: S3 over a scratch folder, with fixed test keys.
pub struct S3Server {
    child: Child,
    root: PathBuf,
    port: u16,
}

/// The test server's access key.
pub const S3_ACCESS_KEY: &str = "twinray-test";
/// The test server's secret key.
pub const S3_SECRET_KEY: &str = "twinray-test-secret";

impl S3Server {
    /// Starts s3s-fs on a free port of 127.0.0.1 with the given buckets (folders) made.
    ///
    /// # Errors
    /// If s3s-fs is not installed or does not start.
    pub fn start(buckets: &[&str]) -> Result<Self> {
        let bin = std::env::var_os("TWINRAY_S3S_FS")
            .map(PathBuf::from)
            .or_else(|| {
                let cache = std::env::var_os("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
                Some(cache.join("twinray-s3s/bin/s3s-fs"))
            })
            .filter(|p| p.is_file())
            .context("s3s-fs is not built (scripts/setup.sh builds it into ~/.cache/twinray-s3s): run `make setup`")?;
        let root = scratch("s3")?;
        let data = root.join("data");
        for b in buckets {
            std::fs::create_dir_all(data.join(b))?;
        }
        let port = free_port()?;
        let log = root.join("s3s-fs.log");
        let child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let server = Self { child, root, port };
        wait_until("s3s-fs", &log, Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })?;
        Ok(server)
    }

    /// The endpoint URL.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Points this process's S3 clients at the server (object_store reads these).
    pub fn export_environment(&self) {
        std::env::set_var("AWS_ENDPOINT_URL", self.endpoint());
        std::env::set_var("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY);
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AWS_ALLOW_HTTP", "true");
    }

    /// The folder holding the buckets' objects (to damage one in a test).
    #[must_use]
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        stop(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
