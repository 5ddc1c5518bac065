//! Helpers for the `corral serve` tests: a daemon in this process on a scratch
//! directory, its admin API over real HTTP, and component variants to swap in.

use corral::config::CorralConfig;
use corral::serve::{DaemonHandle, ShutdownReport};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A fresh directory with an empty `plugins.d`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("corral-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("plugins.d")).unwrap();
    dir
}

/// `corral.toml` text for a Kandji instance (`extra` lines go before its config).
pub fn kandji_toml(id: &str, api_url: &str, token: &str, extra: &str) -> String {
    format!(
        "[[instance]]\nid = \"{id}\"\nplugin = \"kandji\"\n{extra}\n\
         [instance.config]\napiUrl = \"{api_url}\"\naccessToken = \"{token}\"\n\n"
    )
}

/// The same component with a custom section added: a different digest, the same
/// behaviour (a rebuilt release of the same code).
pub fn variant(component: &[u8], tag: &str) -> Vec<u8> {
    let name = b"corral-test-variant";
    let mut body = vec![name.len() as u8];
    body.extend_from_slice(name);
    body.extend_from_slice(tag.as_bytes());
    assert!(body.len() < 128, "one-byte LEB128 size");
    let mut out = component.to_vec();
    out.extend_from_slice(&[0, body.len() as u8]);
    out.extend_from_slice(&body);
    out
}

/// Writes `bytes` in two halves with a pause between, as a slow copy does; the daemon
/// must not take the half-written file.
pub fn write_slowly(path: &Path, bytes: &[u8], pause: Duration) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let half = bytes.len() / 2;
    f.write_all(&bytes[..half]).unwrap();
    f.flush().unwrap();
    std::thread::sleep(pause);
    f.write_all(&bytes[half..]).unwrap();
}

pub fn sha256(bytes: &[u8]) -> String {
    corral::plugin::digest(bytes)
}

pub struct TestDaemon {
    pub dir: PathBuf,
    pub base: String,
    handle: Option<DaemonHandle>,
    client: reqwest::Client,
}

impl TestDaemon {
    /// Writes `dir/corral.toml` (`plugins.d`, `state`, a short debounce, the `serve`
    /// lines given, then `instances`) and starts a daemon on a free port.
    pub async fn start(dir: &Path, serve: &str, instances: &str) -> TestDaemon {
        let text = format!(
            "plugin_dir = \"plugins.d\"\ndata_dir = \"state\"\n\n[serve]\nwatch_debounce_ms = 250\n{serve}\n\n{instances}"
        );
        let path = dir.join("corral.toml");
        std::fs::write(&path, text).unwrap();
        let config = CorralConfig::load(&path).expect("test config parses");
        let handle = corral::serve::start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("daemon starts");
        TestDaemon {
            dir: dir.to_path_buf(),
            base: format!("http://{}", handle.admin_addr),
            handle: Some(handle),
            client: reqwest::Client::new(),
        }
    }

    pub fn plugin_file(&self, id: &str) -> PathBuf {
        self.dir.join("plugins.d").join(format!("{id}.wasm"))
    }

    async fn call(&self, method: reqwest::Method, path: &str) -> (u16, String) {
        let r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .send()
            .await
            .expect("admin API answers");
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let (status, body) = self.call(reqwest::Method::GET, path).await;
        (status, serde_json::from_str(&body).expect("JSON body"))
    }

    pub async fn post(&self, path: &str) -> (u16, Value) {
        let (status, body) = self.call(reqwest::Method::POST, path).await;
        (status, serde_json::from_str(&body).expect("JSON body"))
    }

    pub async fn metrics(&self) -> String {
        self.call(reqwest::Method::GET, "/metrics").await.1
    }

    /// The `/plugins` entry of `id`.
    pub async fn plugin(&self, id: &str) -> Value {
        let (_, list) = self.get("/plugins").await;
        list.as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Starts a run through the API and returns its id.
    pub async fn start_run(&self, instance: &str) -> String {
        let (status, body) = self.post(&format!("/instances/{instance}/runs")).await;
        assert_eq!(status, 202, "{body}");
        body["runId"].as_str().unwrap().to_string()
    }

    /// The run once it has ended.
    pub async fn finished(&self, run: &str) -> Value {
        let path = format!("/runs/{run}");
        self.wait_for(&format!("{run} to end"), || async {
            let (_, r) = self.get(&path).await;
            (!matches!(r["status"].as_str(), Some("queued" | "running"))).then_some(r)
        })
        .await
    }

    /// Polls `check` until it gives a value; panics naming `what` after a minute.
    pub async fn wait_for<T, F, Fut>(&self, what: &str, check: F) -> T
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(v) = check().await {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until the current generation of `id` has `digest`.
    pub async fn wait_for_digest(&self, id: &str, digest: &str) -> Value {
        self.wait_for(&format!("{id} to serve {digest}"), || async {
            let p = self.plugin(id).await;
            (p["digest"] == digest).then_some(p)
        })
        .await
    }

    /// Waits until the last rejected candidate of `id` has `digest`; returns the reason.
    pub async fn wait_for_rejection(&self, id: &str, digest: &str) -> String {
        self.wait_for(&format!("{id} to refuse {digest}"), || async {
            let p = self.plugin(id).await;
            (p["lastRejected"]["digest"] == digest)
                .then(|| p["lastRejected"]["reason"].as_str().unwrap().to_string())
        })
        .await
    }

    pub async fn shutdown(mut self, grace: Duration) -> ShutdownReport {
        self.handle.take().unwrap().shutdown(grace).await
    }
}

/// `corral.toml` instances for `copies` of each demo instance (ids suffixed `-N`), each
/// under its demo policy (written to `dir`), run every `interval` seconds if given.
pub fn demo_instances_toml(
    tenants: &corral::cli::demo::DemoTenants,
    copies: usize,
    interval: Option<u64>,
    dir: &Path,
) -> String {
    let mut out = String::new();
    for d in tenants.instances() {
        let policy = dir.join(format!("{}-policy.json", d.config.plugin));
        std::fs::write(&policy, d.policy.0).unwrap();
        let mut values = String::new();
        for (k, v) in &d.config.config {
            let corral::config::ConfigValue::Text(text) = v else {
                panic!("demo config values are text")
            };
            values.push_str(&format!("{k} = {}\n", serde_json::to_string(text).unwrap()));
        }
        let every = interval.map_or(String::new(), |s| {
            format!("polling_interval_seconds = {s}\n")
        });
        for n in 1..=copies {
            out.push_str(&format!(
                "[[instance]]\nid = \"{}-{n}\"\nplugin = \"{}\"\npolicy = {}\n{every}[instance.config]\n{values}\n",
                d.config.id,
                d.config.plugin,
                serde_json::to_string(&policy.display().to_string()).unwrap()
            ));
        }
    }
    out
}
