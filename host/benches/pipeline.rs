//! The whole `corral run` (collect, state, change set, output) measured from outside, as
//! an operator would: the release `corral` binary against a `corral simulate` process,
//! under `/usr/bin/time`, twice (the baseline, then a run over the unchanged tenant).
//!
//! ```sh
//! cargo bench -p corral-host --bench pipeline -- kandji 5000            # sizes vary
//! cargo bench -p corral-host --bench pipeline -- kandji 1000 --latency-ms 50
//! cargo bench -p corral-host --bench pipeline -- sentinelone 48000
//! ```
//!
//! `--policy FILE` replaces the demo policy, `--plugin-dir DIR` adds the instance's
//! `plugin_dir` (a component there overrides the built-in of its id): with the Kandji
//! connector built `--features unthrottled`, a tenant of 50,000 devices is collected in
//! minutes (docs/benchmarks.md has the commands).
//!
//! Prints, per run: wall time, CPU (user + system), peak RSS, requests, objects. Then
//! `corral sync` uploads the collected graph to `corral simulate jupiterone` (a mock
//! persister in its own process, so its copy of the graph is not counted): objects/s,
//! CPU and peak RSS of the upload. Results go in docs/benchmarks.md.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const CORRAL: &str = env!("CARGO_BIN_EXE_corral");
const TOKEN: &str = "bench-token";

/// One provider's instance table, given the simulator's origin.
fn instance(provider: &str, origin: &str, policy: &Path) -> String {
    let (url_field, path, secret) = match provider {
        "kandji" => ("apiUrl", "/api/v1/", "accessToken"),
        "sentinelone" => ("serverUrl", "", "apiToken"),
        "runzero" => ("baseUrl", "/api/v1.0/", "accountAPIKey"),
        other => panic!("no bench instance for {other}"),
    };
    format!(
        "[[instance]]\nid = \"bench-{provider}\"\nplugin = \"{provider}\"\npolicy = \"{}\"\n\
         integration_instance_id = \"bench-integration\"\n\
         [instance.config]\n{url_field} = \"{origin}{path}\"\n{secret} = {{ env = \"BENCH_TOKEN\" }}\n",
        policy.display()
    )
}

/// `corral simulate` on a free port; returns the process and its origin.
fn simulator(provider: &str, size: usize, latency_ms: u64) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut child = Command::new(CORRAL)
        .args(["simulate", provider, "--devices", &size.to_string()])
        .args(["--port", &port.to_string(), "--token", TOKEN])
        .args(["--latency-ms", &latency_ms.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("corral simulate starts");
    // The first line says it is listening.
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    println!("{}", line.trim());
    (child, format!("http://127.0.0.1:{port}"))
}

/// Runs `corral run` under `/usr/bin/time`; prints and returns (CPU s, peak RSS KiB).
fn measured_run(label: &str, config: &Path, data: &Path) -> (f64, u64) {
    measured(label, config, data, &["run"])
}

/// Runs `corral VERB --config CONFIG ARGS…` under `/usr/bin/time`.
fn measured(label: &str, config: &Path, data: &Path, verb: &[&str]) -> (f64, u64) {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "TIME %e %U %S %M"])
        .arg(CORRAL)
        .arg(verb[0])
        .arg("--config")
        .arg(config)
        .args(&verb[1..])
        .env("BENCH_TOKEN", TOKEN)
        // A cache of its own: the first run compiles the plugin, later ones read it back.
        .env("CORRAL_CACHE_DIR", data.with_file_name("cache"))
        .output()
        .expect("/usr/bin/time runs corral");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("TIME "))
        .unwrap_or_else(|| panic!("no timing:\n{stdout}\n{stderr}"));
    let f: Vec<f64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let cpu = f[1] + f[2];
    let first = stdout.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    println!(
        "{label}: wall {:.1} s, CPU {cpu:.2} s ({:.2} user + {:.2} sys), peak RSS {:.0} MiB\n  {}",
        f[0],
        f[1],
        f[2],
        f[3] / 1024.0,
        first.trim()
    );
    assert!(
        out.status.success(),
        "corral run failed:\n{stdout}\n{stderr}"
    );
    (cpu, f[3] as u64)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let provider = args.first().map_or("kandji", String::as_str).to_string();
    let size: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let latency_ms: u64 = args
        .iter()
        .position(|a| a == "--latency-ms")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(0);
    let option = |name: &str| {
        let at = args.iter().position(|a| a == name)?;
        Some(PathBuf::from(args.get(at + 1)?))
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("corral-bench-pipeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = option("--policy").unwrap_or(root.join(format!("demo/{provider}-policy.json")));
    let plugin_dir = option("--plugin-dir")
        .map(|d| {
            format!(
                "plugin_dir = {}\n",
                toml::Value::String(d.display().to_string())
            )
        })
        .unwrap_or_default();
    let (mut sim, origin) = simulator(&provider, size, latency_ms);
    let (mut persister, j1) = simulator("jupiterone", 0, 0);
    let config = dir.join("corral.toml");
    let data = dir.join("data");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n{plugin_dir}\n[jupiterone]\napi_base_url = \"{j1}\"\naccount = \"j1-test-account\"\n\
             api_key = {{ env = \"BENCH_TOKEN\" }}\n\n{}",
            data.display(),
            instance(&provider, &origin, &policy)
        ),
    )
    .unwrap();
    println!("{provider}, {size} devices, {latency_ms} ms latency");
    measured_run("first run (baseline, compiles the plugin)", &config, &data);
    measured_run("second run (unchanged tenant)", &config, &data);
    let id = format!("bench-{provider}");
    measured("corral sync", &config, &data, &["sync", "--instance", &id]);
    let _ = sim.kill();
    let _ = persister.kill();
    let _ = std::fs::remove_dir_all(&dir);
}
