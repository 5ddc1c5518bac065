//! The graphs of the four connectors, run end to end against the demo simulators, checked
//! with JupiterOne's own data-model package (`@jupiterone/data-model`, pinned in
//! `tests/datamodel/package.json`): every entity valid against each of its class schemas.
//! Also: the host's generated class table (`core/src/classes.rs`) is what the package
//! gives today. Needs Node.js and npm; the package is installed on first use.

use corral::cli::demo::DemoTenants;
use corral::run::{resolve_with_policy, run_instance};
use corral_e2e::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn harness() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../datamodel")
}

/// `tests/datamodel/node_modules`, installed from the lock file if it is not there.
fn installed() -> PathBuf {
    let dir = harness();
    npm_installed(&dir, "@jupiterone/data-model");
    dir
}

fn node(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("node")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "node {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_hosts_class_table_is_the_packages() {
    let dir = installed();
    let generated = node(&dir, &["generate.js"]);
    let committed = std::fs::read_to_string(dir.join("../../core/src/classes.rs")).unwrap();
    assert!(
        generated == committed,
        "core/src/classes.rs is not what @jupiterone/data-model gives: run `node tests/datamodel/generate.js > core/src/classes.rs`"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connector_graph_validates_with_jupiterones_package() {
    let dir = installed();
    let out = std::env::temp_dir().join(format!("corral-datamodel-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let rt = runtime();
    let tenants = DemoTenants::start(60).await.unwrap();
    let mut written = Vec::new();
    for d in tenants.instances() {
        let plugin = rt.plugin(&d.config.plugin).await.unwrap();
        let policy = Some((d.policy.0.to_string(), d.policy.1.to_string()));
        let resolved = resolve_with_policy(&d.config, plugin, policy).unwrap();
        let report = run_instance(&resolved, rt.hosts.clone()).await;
        assert!(report.succeeded(), "{}", d.config.id);
        let summary = corral::delivery::output::summary(&report);
        assert_eq!(summary["corral"]["dataModel"]["version"], "0.64.2");
        let dest = corral::delivery::output::write_run(&out, &report, None).unwrap();
        written.push(dest.display().to_string());
    }
    let mut args = vec!["validate.js"];
    args.extend(written.iter().map(String::as_str));
    let result: Value = serde_json::from_str(&node(&dir, &args)).unwrap();
    assert_eq!(result["version"], "0.64.2");
    let mut failures = Vec::new();
    for (instance, r) in result["instances"].as_object().unwrap() {
        assert!(
            r["entities"].as_u64().unwrap() > 0,
            "{instance}: no entities"
        );
        if r["valid"] != r["entities"] {
            failures.push(format!(
                "{instance}: {} of {} valid: {}",
                r["valid"], r["entities"], r["failures"]
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
