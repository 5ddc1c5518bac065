//! Helpers for the cluster tests: a `nats-server -js` on a free loopback port with a
//! temporary store, and `corral serve --cluster` / `corral worker` as real processes
//! (so one can be killed with SIGKILL).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    /// SIGKILL, as a crashed machine would stop.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("the process exits")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub struct Nats {
    pub url: String,
    pub port: u16,
    pub store: PathBuf,
    pub proc: Proc,
}

impl Nats {
    /// `nats-server -js` on a free port, its store under `dir` (`.ci/run` installs it).
    pub fn start(dir: &Path) -> Nats {
        Nats::start_on(free_port(), &dir.join("jetstream"))
    }

    /// Starts (or restarts) the server on `port` with the store at `store`.
    pub fn start_on(port: u16, store: &Path) -> Nats {
        install_nats_server();
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server runs (Debian package nats-server; .ci/run installs it)");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Nats {
            url: format!("nats://127.0.0.1:{port}"),
            port,
            store: store.to_path_buf(),
            proc: Proc { child },
        }
    }
}

/// Installs Debian's `nats-server` on first use, as the other tests install their npm
/// and PyPI packages (it needs apt and root; `.ci/run` does the same up front).
fn install_nats_server() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let present = |cmd: &str| {
            Command::new(cmd)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if present("nats-server") {
            return;
        }
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !apt(&["install", "-y", "nats-server"]) {
            apt(&["update"]);
            apt(&["install", "-y", "nats-server"]);
        }
        assert!(
            present("nats-server"),
            "the cluster tests need nats-server (Debian: apt-get install nats-server)"
        );
    });
}

/// The `corral` binary of this build: the workspace's `cargo test` builds it beside the
/// test binaries (`target/<profile>/corral`).
pub fn corral_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = dir.join("corral");
    assert!(
        bin.exists(),
        "{} is missing: run the workspace's `cargo test` (it builds the corral binary)",
        bin.display()
    );
    bin
}

/// `corral serve --cluster`; returns it with its admin API's base URL.
pub fn coordinator(config: &Path, nats: &str) -> (Proc, String) {
    let mut child = Command::new(corral_bin())
        .args([
            "serve",
            "--admin",
            "127.0.0.1:0",
            "--cluster",
            nats,
            "--config",
        ])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("corral serve starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("corral serve prints its admin address");
    let base = line
        .trim()
        .rsplit(' ')
        .next()
        .filter(|u| u.starts_with("http://"))
        .unwrap_or_else(|| panic!("not the admin line: {line:?}"))
        .to_string();
    (Proc { child }, base)
}

/// `corral worker` with `env` (its secrets) in its environment; returns once it takes runs.
pub fn worker(config: &Path, nats: &str, name: &str, slots: usize, env: &[(&str, &str)]) -> Proc {
    let mut child = Command::new(corral_bin())
        .args([
            "worker",
            "--nats",
            nats,
            "--name",
            name,
            "--slots",
            &slots.to_string(),
            "--config",
        ])
        .arg(config)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("corral worker starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("corral worker prints that it is ready");
    assert!(line.contains("taking runs"), "{line:?}");
    Proc { child }
}
