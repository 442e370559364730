//! Fixtures in Rust rather than in `scripts/with-test-env.sh`: registries (`docker-registry` processes on free
//! loopback ports, the two shared ones of [`TestEnv`](crate::harness::TestEnv) and those a test starts for
//! itself) and TLS material (rcgen, no openssl).
//!
//! Every process started here dies with the test process, however it ends (a panic, an interrupt, a KILL): it is
//! spawned by one thread that lives as long as the process, with `PR_SET_PDEATHSIG` set to `SIGKILL`, and the
//! kernel sends that signal when the spawning thread exits, which it does only when the process does. A test's
//! own [`OwnRegistry`] is also stopped by PID when dropped; the shared ones are stopped by PID, and their
//! directories removed, by an `atexit` handler when the test binary exits normally.

use std::io::{self, Read as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, Once, OnceLock, TryLockError, mpsc};
use std::time::{Duration, Instant};

// --- Processes that die with the test process ------------------------------------------------------------------

/// A command for the spawner thread, and where to send what its spawn returned.
type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `command` so that it dies with this process: from the spawner thread, with `PR_SET_PDEATHSIG` =
/// `SIGKILL`. The child is an ordinary child of this process (waited for, killed by PID, from any thread).
pub fn spawn_tied(command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (requests, incoming) = mpsc::channel::<SpawnRequest>();
        // The thread never ends: its requests' sender lives in a static, never dropped. PDEATHSIG fires when the
        // thread that forked the child exits, so spawning from short-lived test threads would kill the children
        // at the end of the test that started them.
        std::thread::Builder::new()
            .name("fixture-spawner".to_owned())
            .spawn(move || {
                for (mut command, reply) in incoming {
                    let _ = reply.send(spawn_with_pdeathsig(&mut command));
                }
            })
            .expect("start the fixture spawner thread");
        requests
    });
    let (reply, answer) = mpsc::channel();
    spawner.send((command, reply)).expect("the fixture spawner thread is running");
    answer.recv().expect("the fixture spawner thread answers")
}

fn spawn_with_pdeathsig(command: &mut Command) -> io::Result<Child> {
    let parent = std::process::id();
    // SAFETY: between fork and exec the closure only makes two system calls (async-signal-safe) and builds an
    // io::Error from a raw code, which does not allocate.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before the prctl: then nobody would send the signal.
            if libc::getppid() as u32 != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    command.spawn()
}

// --- Registries ------------------------------------------------------------------------------------------------

/// A free TCP port of `ip`, as the kernel picks one. It is free only until someone else takes it: the registry
/// started on it is retried on another port when that happened.
fn free_port(ip: IpAddr) -> u16 {
    TcpListener::bind((ip, 0)).and_then(|listener| listener.local_addr()).expect("a free port").port()
}

/// How many ports [`OwnRegistry`] tries before giving up (each one only if the previous one was taken).
const PORT_TRIES: usize = 5;

/// A `docker-registry` of the test's own (see `start_on`), in a temp dir of its own (config, storage, log); it
/// can be stopped mid-run and started again on the same address and storage, and is stopped by PID when dropped.
pub struct OwnRegistry {
    dir: tempfile::TempDir,
    /// `ip:port`.
    pub address: String,
    /// `tls:` lines of the registry config (under `http:`), when it serves HTTPS.
    tls: String,
    /// `auth:` lines of the registry config, when it asks for credentials.
    auth: String,
    process: Option<Child>,
}

impl OwnRegistry {
    /// Plain HTTP on loopback.
    pub fn start() -> Self {
        Self::start_on(Ipv4Addr::LOCALHOST.into(), None)
    }

    /// HTTPS on loopback with the certificate and key of `cert`.
    pub fn start_tls(cert: &Cert) -> Self {
        Self::start_on(Ipv4Addr::LOCALHOST.into(), Some((&cert.cert, &cert.key)))
    }

    /// On a free port of `ip`, serving HTTPS with `tls` (certificate and key files) when given.
    pub fn start_on(ip: IpAddr, tls: Option<(&Path, &Path)>) -> Self {
        let tls = tls.map_or(String::new(), |(cert, key)| {
            format!("  tls:\n    certificate: {}\n    key: {}\n", cert.display(), key.display())
        });
        Self::start_with(ip, tls, |_| String::new())
    }

    /// Plain HTTP on loopback, asking for basic auth: `user` with `password` (a bcrypt htpasswd file).
    pub fn start_with_auth(user: &str, password: &str) -> Self {
        // The lowest bcrypt cost: the registry checks the password on every request.
        let hash = bcrypt::hash(password, 4).expect("bcrypt");
        Self::start_with(Ipv4Addr::LOCALHOST.into(), String::new(), |dir| {
            let htpasswd = dir.join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).expect("write the htpasswd file");
            format!("auth:\n  htpasswd:\n    realm: imgraph-test\n    path: {}\n", htpasswd.display())
        })
    }

    /// Starts it on a free port of `ip`, with `auth` making its `auth:` lines in its dir; another port when the
    /// one picked was taken meanwhile.
    fn start_with(ip: IpAddr, tls: String, auth: impl FnOnce(&Path) -> String) -> Self {
        let dir = tempfile::Builder::new().prefix("imgraph-registry.").tempdir().expect("temp dir");
        let auth = auth(dir.path());
        let mut registry = Self { dir, address: String::new(), tls, auth, process: None };
        for attempt in 1..=PORT_TRIES {
            registry.address = SocketAddr::new(ip, free_port(ip)).to_string();
            match registry.launch() {
                Ok(()) => return registry,
                Err(log) if attempt < PORT_TRIES && log.contains("address already in use") => {}
                Err(log) => panic!("the registry did not start on {}:\n{log}", registry.address),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Starts it (again) on the same address and storage, and waits until it listens.
    pub fn restart(&mut self) {
        if let Err(log) = self.launch() {
            panic!("the registry did not start again on {}:\n{log}", self.address);
        }
    }

    /// Writes the config, starts the process and waits until it listens; its log if it did not.
    fn launch(&mut self) -> Result<(), String> {
        self.stop();
        let config = self.dir.path().join("config.yml");
        let storage = self.dir.path().join("storage");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: {}\n{}{}",
                storage.display(),
                self.address,
                self.tls,
                self.auth
            ),
        )
        .expect("write the registry config");
        let log = std::fs::File::create(self.log_path()).expect("registry log");
        let mut command = Command::new("docker-registry");
        command
            .args(["serve", &config.to_string_lossy()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("registry log"))
            .stderr(log);
        let child = spawn_tied(command).expect("start docker-registry (scripts/install-test-deps.sh installs it)");
        self.process = Some(child);
        // Listening once it says so (it logs that after binding: the port is its own, not someone else's) and a
        // connection is accepted.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.log().contains("listening on ") && TcpStream::connect(&self.address).is_ok() {
                return Ok(());
            }
            let exited = !matches!(self.process.as_mut().map(Child::try_wait), Some(Ok(None)));
            if exited || Instant::now() >= deadline {
                self.stop();
                let why = if exited { "it exited" } else { "not listening after 20 s" };
                return Err(format!("{why}; its log:\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it (KILL, by PID) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Its process ID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Child::id)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// What it logged since it was last started, its access log included.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for OwnRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The registries shared by the tests of this binary (the `registry`, `auth_*` fields of `TestEnv`).
#[derive(Debug)]
pub struct SharedRegistries {
    /// Plain HTTP, no auth: `127.0.0.1:PORT`.
    pub registry: String,
    /// Plain HTTP, htpasswd (bcrypt) auth for `auth_user` with `auth_password` (random): `127.0.0.1:PORT`.
    pub auth_registry: String,
    pub auth_user: String,
    pub auth_password: String,
}

/// The shared registries, with their log names, kept until the process exits.
static SHARED_PROCESSES: Mutex<Vec<(&'static str, OwnRegistry)>> = Mutex::new(Vec::new());

/// Started on first use, once per test binary; they live until it exits.
pub fn shared_registries() -> &'static SharedRegistries {
    static SHARED: OnceLock<SharedRegistries> = OnceLock::new();
    SHARED.get_or_init(|| {
        static AT_EXIT: Once = Once::new();
        // SAFETY: registers a function that takes no arguments and does not unwind (see its body).
        AT_EXIT.call_once(|| assert_eq!(unsafe { libc::atexit(stop_shared_registries) }, 0, "atexit"));
        let auth_user = "imgraph".to_owned();
        let auth_password = random_hex(24);
        let plain = OwnRegistry::start();
        let auth = OwnRegistry::start_with_auth(&auth_user, &auth_password);
        let shared = SharedRegistries {
            registry: plain.address.clone(),
            auth_registry: auth.address.clone(),
            auth_user,
            auth_password,
        };
        let mut kept = SHARED_PROCESSES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.extend([("registry", plain), ("auth-registry", auth)]);
        shared
    })
}

/// At exit: copies the shared registries' logs to `IMGRAPH_TEST_LOG_DIR` when set, stops them by PID (PDEATHSIG
/// would, a moment later) and removes their directories. Nothing here panics: an `extern "C"` function that
/// unwinds aborts the process.
extern "C" fn stop_shared_registries() {
    let mut kept = match SHARED_PROCESSES.try_lock() {
        Ok(kept) => kept,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => return,
    };
    let log_dir = std::env::var_os("IMGRAPH_TEST_LOG_DIR").filter(|dir| !dir.is_empty()).map(PathBuf::from);
    for (name, mut registry) in kept.drain(..) {
        registry.stop();
        if let Some(dir) = &log_dir {
            let _ = std::fs::create_dir_all(dir);
            let _ = std::fs::copy(registry.log_path(), dir.join(format!("{name}.log")));
        }
    }
}

/// `bytes` random bytes, in hex.
fn random_hex(bytes: usize) -> String {
    let mut random = vec![0; bytes];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut random)).expect("read /dev/urandom");
    hex::encode(random)
}

// --- TLS material ----------------------------------------------------------------------------------------------

/// A certificate and its key, as PEM files.
pub struct Cert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Writes `NAME.pem` (the certificate) and `NAME.key` (its key) in `dir`.
fn write_cert(dir: &Path, name: &str, cert: &rcgen::Certificate, key: &rcgen::KeyPair) -> Cert {
    let files = Cert { cert: dir.join(format!("{name}.pem")), key: dir.join(format!("{name}.key")) };
    std::fs::write(&files.cert, cert.pem()).expect("write the certificate");
    std::fs::write(&files.key, key.serialize_pem()).expect("write the key");
    files
}

/// Certificate parameters for the subject `CN=name` and the subjectAltNames `names` (IP addresses or DNS names).
pub fn cert_params(name: &str, names: &[&str]) -> rcgen::CertificateParams {
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let mut params = rcgen::CertificateParams::new(names).expect("certificate names");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params
}

/// A self-signed certificate `NAME.pem` (key `NAME.key`, EC P-256) in `dir` made from `params`.
pub fn self_signed_from(dir: &Path, name: &str, params: &rcgen::CertificateParams) -> Cert {
    let key = rcgen::KeyPair::generate().expect("a key");
    write_cert(dir, name, &params.self_signed(&key).expect("self-sign"), &key)
}

/// A self-signed certificate (CA:FALSE) `NAME.pem` in `dir` for `names`: some certificate, for a TLS server
/// whose certificate nobody verifies, or that a test wants to be refused.
pub fn self_signed(dir: &Path, name: &str, names: &[&str]) -> Cert {
    self_signed_from(dir, name, &cert_params(name, names))
}

/// A throw-away CA (`ca.pem` in its dir) and the server certificates it signs.
pub struct TestCa {
    dir: tempfile::TempDir,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    /// The CA certificate, `ca.pem`.
    pub cert: PathBuf,
}

impl TestCa {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut params = cert_params("imgraph test CA", &[]);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let key = rcgen::KeyPair::generate().expect("a key");
        let cert = dir.path().join("ca.pem");
        std::fs::write(&cert, params.self_signed(&key).expect("self-sign").pem()).expect("write the CA");
        Self { issuer: rcgen::Issuer::new(params, key), cert, dir }
    }

    /// A server certificate (serverAuth) `NAME.pem` (key `NAME.key`) for `names`, signed by this CA, in its dir.
    pub fn server_cert(&self, name: &str, names: &[&str]) -> Cert {
        let mut params = cert_params(name, names);
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = rcgen::KeyPair::generate().expect("a key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        write_cert(self.dir.path(), name, &cert, &key)
    }
}

// --- The fixtures' own tests -----------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use std::io::BufRead as _;

    use super::*;

    /// Whether process `pid` exists and is not a zombie.
    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
    }

    /// Waits up to 10 s for each of `pids` to be gone.
    #[track_caller]
    fn assert_gone(pids: &[u32], what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        for &pid in pids {
            while alive(pid) {
                assert!(Instant::now() < deadline, "{what}: process {pid} outlived the test process that started it");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// What the helper process started, as it says on its stdout.
    struct Helper {
        process: Child,
        pids: Vec<u32>,
        dirs: Vec<PathBuf>,
    }

    /// Runs [`helper_process`] (this test binary, again) in `mode` and reads what it started until it is ready.
    fn run_helper(mode: &str) -> Helper {
        let mut process = Command::new(std::env::current_exe().expect("the test binary"))
            .args(["--ignored", "--exact", "fixtures::tests::helper_process", "--nocapture"])
            .env("IMGRAPH_FIXTURE_HELPER", mode)
            // Its registries' logs must not overwrite those of this process.
            .env_remove("IMGRAPH_TEST_LOG_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run the helper");
        let (mut pids, mut dirs) = (Vec::new(), Vec::new());
        let stdout = io::BufReader::new(process.stdout.take().expect("stdout"));
        for line in stdout.lines().map_while(Result::ok) {
            if let Some(pid) = line.strip_prefix("fixture-helper pid ") {
                pids.push(pid.parse().expect("a pid"));
            } else if let Some(dir) = line.strip_prefix("fixture-helper dir ") {
                dirs.push(PathBuf::from(dir));
            } else if line == "fixture-helper ready" {
                return Helper { process, pids, dirs };
            }
        }
        panic!("the helper ended before it was ready: {:?}", process.wait());
    }

    /// Run by the tests below (ignored, and it does nothing unless `IMGRAPH_FIXTURE_HELPER` is set): starts a tied
    /// `sleep` and, in the modes `registries-*`, the shared registries; prints their PIDs and directories, then
    /// exits at once without stopping anything (`*-exit`) or waits to be killed (`*-hang`).
    #[ignore = "a helper process of the fixtures' tests, which run it"]
    #[test]
    fn helper_process() {
        let Ok(mode) = std::env::var("IMGRAPH_FIXTURE_HELPER") else { return };
        let mut sleep = Command::new("sleep");
        sleep.arg("600");
        println!("fixture-helper pid {}", spawn_tied(sleep).expect("spawn sleep").id());
        if mode.starts_with("registries-") {
            shared_registries();
            for (_, registry) in SHARED_PROCESSES.lock().unwrap().iter() {
                println!("fixture-helper pid {}", registry.pid().expect("running"));
                println!("fixture-helper dir {}", registry.dir.path().display());
            }
        }
        println!("fixture-helper ready");
        if mode.ends_with("-exit") {
            std::process::exit(0);
        }
        std::thread::sleep(Duration::from_secs(600));
        unreachable!("killed by the test that started it");
    }

    #[ignore = "needs the real Docker environment: run scripts/test.sh"]
    #[test]
    fn a_port_taken_meanwhile_is_told_apart_for_a_retry() {
        let taken = TcpListener::bind("127.0.0.1:0").expect("a port");
        let mut registry = OwnRegistry {
            dir: tempfile::tempdir().expect("temp dir"),
            address: taken.local_addr().expect("its address").to_string(),
            tls: String::new(),
            auth: String::new(),
            process: None,
        };
        let log = registry.launch().expect_err("the port is taken");
        assert!(log.contains("address already in use"), "{log}");
        // And on a free port, as `start` picks them.
        let registry = OwnRegistry::start();
        assert_ne!(registry.address, taken.local_addr().unwrap().to_string());
        assert!(registry.pid().is_some_and(alive));
    }

    #[test]
    fn a_tied_child_dies_when_its_process_is_killed() {
        let mut helper = run_helper("sleep-hang");
        assert!(alive(helper.pids[0]));
        helper.process.kill().expect("kill the helper");
        helper.process.wait().expect("reap the helper");
        assert_gone(&helper.pids, "KILL");
    }

    #[ignore = "needs the real Docker environment: run scripts/test.sh"]
    #[test]
    fn the_shared_registries_never_outlive_the_test_process() {
        // A normal exit: stopped and their directories removed.
        let mut helper = run_helper("registries-exit");
        assert_eq!((helper.pids.len(), helper.dirs.len()), (3, 2));
        assert!(helper.process.wait().expect("wait for the helper").success());
        assert_gone(&helper.pids, "exit");
        for dir in &helper.dirs {
            assert!(!dir.exists(), "{} was left behind", dir.display());
        }

        // KILL: nothing runs in that process any more, but the kernel kills its children all the same.
        let mut helper = run_helper("registries-hang");
        assert!(helper.pids.iter().all(|&pid| alive(pid)));
        helper.process.kill().expect("kill the helper");
        helper.process.wait().expect("reap the helper");
        assert_gone(&helper.pids, "KILL");
        for dir in &helper.dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
