//! JupiterOne upload into the mock persister: the Kandji graph while it runs, batches
//! split and shrunk, retries, partial types, aborts, and the API key kept out of errors.

use corral::config::{ConfigValue, JupiterOneConfig};
use corral::delivery::jupiterone::{BATCH_LIMIT, JupiterOne, Kind, raw_objects, read_collected};
use corral_e2e::*;
use corral_simulators::SimServer;
use corral_simulators::jupiterone::{MockPersister, PersisterConfig};
use corral_simulators::kandji::{API_PREFIX, KandjiConfig, KandjiSim};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;

const TOKEN: &str = "e2e-sync-kandji-token-51d0";
const J1_KEY: &str = "j1-e2e-api-key-c0ffee-9a7b";
const INTEGRATION: &str = "ii-kandji-0001";

struct Setup {
    sim: Arc<KandjiSim>,
    kandji: SimServer,
    mock: Arc<MockPersister>,
    j1_server: SimServer,
}

async fn setup(devices: usize) -> Setup {
    let sim = KandjiSim::new(&KandjiConfig {
        seed: 11,
        devices,
        token: TOKEN.into(),
    });
    let kandji = sim.start(0).await.unwrap();
    let mock = MockPersister::new(PersisterConfig {
        api_key: J1_KEY.into(),
        ..PersisterConfig::default()
    });
    let j1_server = mock.start(0).await.unwrap();
    Setup {
        sim,
        kandji,
        mock,
        j1_server,
    }
}

impl Setup {
    fn client(&self, key: &str) -> JupiterOne {
        JupiterOne::new(&JupiterOneConfig {
            api_base_url: self.j1_server.origin(),
            account: self.mock.config.account.clone(),
            api_key: ConfigValue::Text(key.into()),
        })
        .unwrap()
    }

    async fn run_and_sync(
        &self,
        key: &str,
    ) -> (
        corral::run::RunReport,
        anyhow::Result<corral::delivery::sync::Synced>,
    ) {
        self.run_and_sync_under(key, None).await
    }

    /// [`Setup::run_and_sync`] under an operator policy.
    async fn run_and_sync_under(
        &self,
        key: &str,
        policy: Option<&str>,
    ) -> (
        corral::run::RunReport,
        anyhow::Result<corral::delivery::sync::Synced>,
    ) {
        let rt = runtime();
        let url = format!("{}{API_PREFIX}", self.kandji.origin());
        let inst = kandji_instance("kandji-sync", &url, ConfigValue::Text(TOKEN.into()));
        let plugin = rt.plugin("kandji").await.unwrap();
        let policy = policy.map(|p| (p.to_string(), "operator.json".to_string()));
        let resolved = corral::run::resolve_with_policy(&inst, plugin, policy).unwrap();
        corral::delivery::sync::run_and_sync(
            &resolved,
            rt.hosts.clone(),
            &self.client(key),
            INTEGRATION,
        )
        .await
    }

    /// Keys of the live objects of `type_name` in the scope.
    fn live_keys(&self, type_name: &str) -> BTreeSet<String> {
        self.mock
            .scope(INTEGRATION)
            .into_iter()
            .filter(|(_, o)| o["_type"] == type_name)
            .map(|(k, _)| k)
            .collect()
    }

    /// Keys of the objects that arrived in accepted batches, by kind, with repeats.
    fn arrived(&self, kind: &str) -> Vec<String> {
        self.mock
            .batches()
            .into_iter()
            .filter(|b| b.kind == kind && b.status == 200)
            .flat_map(|b| b.keys)
            .collect()
    }
}

fn all_keys(expected: &KeysByType, relationships: bool) -> BTreeSet<String> {
    expected
        .iter()
        .filter(|(t, _)| t.contains("_has_") == relationships)
        .flat_map(|(_, k)| k.iter().cloned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sync_uploads_every_kandji_object_once_and_finalizes() {
    let s = setup(30).await;
    let (report, synced) = s.run_and_sync(J1_KEY).await;
    assert!(report.succeeded(), "{:?}", report.validation);
    let synced = synced.expect("the sync succeeds");

    let expected = expected_kandji_keys(&s.sim.data());
    for (kind, rels) in [("entities", false), ("relationships", true)] {
        let arrived = s.arrived(kind);
        let unique: BTreeSet<String> = arrived.iter().cloned().collect();
        assert_eq!(
            arrived.len(),
            unique.len(),
            "{kind}: an object arrived twice"
        );
        assert_eq!(unique, all_keys(&expected, rels), "{kind}");
    }
    let jobs = s.mock.jobs();
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job.integration_instance_id, INTEGRATION);
    assert_eq!(job.status, "FINISHED");
    assert_eq!(job.partial_types.as_deref(), Some(&[][..]));
    assert_eq!(synced.job["status"], "FINISHED");
    assert_eq!(synced.stats.retries, 0);

    // Batches: each within the limit, each with its own correlation id (a UUID).
    let batches = s.mock.batches();
    let ids: BTreeSet<&str> = batches
        .iter()
        .map(|b| b.correlation_id.as_deref().expect("a correlation id"))
        .collect();
    assert_eq!(ids.len(), batches.len());
    for b in &batches {
        assert!(b.bytes <= BATCH_LIMIT);
        assert_eq!(b.correlation_id.as_ref().unwrap().len(), 36);
    }
    // One batch per step and kind that emitted something: uploads follow the steps.
    assert!(batches.len() >= 4, "{} batches", batches.len());

    // Events: a start and an end for each of the four steps.
    let names: Vec<&str> = job
        .events
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.iter().filter(|n| **n == "step_start").count(), 4);
    assert_eq!(names.iter().filter(|n| **n == "step_end").count(), 4);

    // The scope holds the graph after finalize.
    let scope: BTreeSet<String> = s.mock.scope(INTEGRATION).into_keys().collect();
    let mut everything = all_keys(&expected, false);
    everything.extend(all_keys(&expected, true));
    assert_eq!(scope, everything);
    assert_eq!(
        job.counts["numEntitiesCreated"],
        all_keys(&expected, false).len() as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_is_listed_as_partial_and_its_live_data_survives() {
    let s = setup(12).await;
    let (_, first) = s.run_and_sync(J1_KEY).await;
    first.unwrap();
    let apps_before = s.live_keys("kandji_app");
    assert!(!apps_before.is_empty());

    s.kandji
        .add_fault(corral_simulators::FaultRule::new("/apps", 403, u32::MAX));
    let (report, second) = s.run_and_sync(J1_KEY).await;
    assert!(!report.succeeded());
    let synced = second.expect("a partial run still finalizes");
    assert_eq!(
        synced.partial_types,
        ["kandji_app", "kandji_device_has_app"]
    );
    let job = s.mock.jobs().pop().unwrap();
    assert_eq!(
        job.partial_types.as_deref(),
        Some(
            &[
                "kandji_app".to_string(),
                "kandji_device_has_app".to_string()
            ][..]
        )
    );
    assert_eq!(job.counts["numEntitiesDeleted"], 0);
    assert_eq!(job.counts["numRelationshipsDeleted"], 0);
    assert!(job.events.iter().any(|e| {
        e["name"] == "step_failure"
            && e["description"]
                .as_str()
                .unwrap()
                .contains("fetch-device-apps")
    }));
    let apps_after = s.live_keys("kandji_app");
    assert_eq!(apps_after, apps_before);
}

/// Objects the operator's policy refuses make their types partial: JupiterOne deletes
/// nothing of them, though every step succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_objects_are_partial_and_their_live_data_survives() {
    const NARROW: &str = r#"{"permissions":[
        {"effect":"ALLOW","actions":["*"],"resources":["*"]},
        {"effect":"DENY","actions":["graph:EmitEntity"],"resources":["type:kandji_app"]}],
        "limits":{"allowPrivateNetworks":true}}"#;
    let s = setup(12).await;
    let (_, first) = s.run_and_sync(J1_KEY).await;
    first.unwrap();
    let apps_before = s.live_keys("kandji_app");
    let (report, second) = s.run_and_sync_under(J1_KEY, Some(NARROW)).await;
    assert!(report.succeeded());
    let synced = second.unwrap();
    assert_eq!(
        synced.partial_types,
        ["kandji_app", "kandji_device_has_app"]
    );
    let job = s.mock.jobs().pop().unwrap();
    assert_eq!(job.counts["numEntitiesDeleted"], 0);
    assert_eq!(job.counts["numRelationshipsDeleted"], 0);
    assert_eq!(s.live_keys("kandji_app"), apps_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_with_the_same_correlation_id() {
    let s = setup(8).await;
    s.mock.inject("entities", 503, 2);
    let (_, synced) = s.run_and_sync(J1_KEY).await;
    let synced = synced.expect("retries get the batch through");
    assert_eq!(synced.stats.retries, 2);
    let batches = s.mock.batches();
    let failed: Vec<_> = batches.iter().filter(|b| b.status == 503).collect();
    assert_eq!(failed.len(), 2);
    // Both failures are attempts of one batch that later arrived with the same id.
    for f in &failed {
        assert!(
            batches
                .iter()
                .any(|b| b.status == 200 && b.correlation_id == f.correlation_id),
            "the retried batch keeps its correlation id"
        );
    }
    assert_eq!(s.mock.jobs()[0].status, "FINISHED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_error_aborts_the_job_and_a_wrong_key_is_never_shown() {
    let s = setup(6).await;
    s.mock.inject("relationships", 400, 1);
    let (report, synced) = s.run_and_sync(J1_KEY).await;
    assert!(report.succeeded(), "the run itself is fine");
    let err = format!("{:#}", synced.unwrap_err());
    assert!(err.contains("aborted") && err.contains("400"), "{err}");
    let job = s.mock.jobs().pop().unwrap();
    assert_eq!(job.status, "ABORTED");
    assert!(job.abort_reason.as_deref().unwrap().contains("400"));
    assert!(job.partial_types.is_none(), "never finalized");
    assert!(s.mock.scope(INTEGRATION).is_empty(), "nothing went live");

    // A key the server refuses: 401 on job creation, the run still happens, the key
    // appears in no error.
    let wrong = "j1-wrong-key-ffff-0000-1111";
    let (report, synced) = s.run_and_sync(wrong).await;
    assert!(report.succeeded());
    let err = format!("{:#}", synced.unwrap_err());
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains(wrong) && !err.contains(J1_KEY), "{err}");
    assert_eq!(
        s.mock.jobs().len(),
        1,
        "no job was created with the wrong key"
    );
}

fn synthetic(n: usize, raw: usize) -> Vec<Map<String, Value>> {
    (0..n)
        .map(|i| {
            json!({
                "_key": format!("synthetic-{i:07}"),
                "_type": "synthetic_thing",
                "_class": "Resource",
                "name": format!("thing {i} {}", "n".repeat(400)),
                "_rawData": [{ "name": "default", "rawData": { "blob": "r".repeat(raw), "id": i } }],
            })
            .as_object()
            .unwrap()
            .clone()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_over_five_megabytes_is_split_and_a_413_shrinks_the_batch() {
    let s = setup(1).await;
    let client = s.client(J1_KEY);

    // ~7.5 MB of entities: at least two batches, none over the limit.
    let job = client.start_job(INTEGRATION).await.unwrap();
    job.upload(Kind::Entity, raw_objects(synthetic(12_000, 100)))
        .await
        .unwrap();
    job.finalize(&[]).await.unwrap();
    let batches = s.mock.batches();
    assert!(batches.len() >= 2, "{} batches", batches.len());
    assert!(
        batches
            .iter()
            .all(|b| b.status == 200 && b.bytes <= BATCH_LIMIT)
    );
    assert!(batches.iter().map(|b| b.bytes).sum::<usize>() > BATCH_LIMIT);
    assert_eq!(s.arrived("entities").len(), 12_000);

    // A server with a smaller limit answers 413: the largest _rawData fields are
    // truncated until the batch fits, and every object still arrives.
    s.mock.set_max_body(150_000);
    let job = client.start_job(INTEGRATION).await.unwrap();
    job.upload(Kind::Entity, raw_objects(synthetic(3, 100_000)))
        .await
        .unwrap();
    let stats = job.stats();
    assert_eq!(stats.truncated, 2);
    let batches: Vec<_> = s
        .mock
        .batches()
        .into_iter()
        .filter(|b| b.job == job.id)
        .collect();
    assert_eq!(
        batches.iter().map(|b| b.status).collect::<Vec<_>>(),
        [413, 413, 200]
    );
    assert!(
        batches
            .iter()
            .all(|b| b.correlation_id == batches[0].correlation_id)
    );
    job.finalize(&[]).await.unwrap();
    let scope = s.mock.scope(INTEGRATION);
    let truncated = (0..3)
        .filter(|i| {
            scope[&format!("synthetic-{i:07}")]["_rawData"][0]["rawData"]["blob"] == "TRUNCATED"
        })
        .count();
    assert_eq!(truncated, 2);
    assert_eq!(
        scope.len(),
        3,
        "the second job replaced the first one's objects"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_of_a_collected_graph_matches_the_run() {
    let s = setup(10).await;
    let rt = runtime();
    let url = format!("{}{API_PREFIX}", s.kandji.origin());
    let inst = kandji_instance("kandji-collected", &url, ConfigValue::Text(TOKEN.into()));
    let report = run_kandji(&rt, &inst, None).await;
    let out = daemon::scratch("sync-collected");
    let dest = corral::delivery::output::write_run(&out, &report, None).unwrap();
    let graph = read_collected(&dest).unwrap();
    assert_eq!(
        graph.load(Kind::Entity).unwrap().len(),
        report.graph.entity_count()
    );
    assert_eq!(
        graph.load(Kind::Relationship).unwrap().len(),
        report.graph.relationship_count()
    );
    let synced = corral::delivery::sync::sync_collected(&s.client(J1_KEY), INTEGRATION, graph)
        .await
        .unwrap();
    assert_eq!(synced.stats.entities as usize, report.graph.entity_count());
    assert_eq!(
        synced.stats.relationships as usize,
        report.graph.relationship_count()
    );
    let expected = expected_kandji_keys(&s.sim.data());
    let scope: BTreeSet<String> = s.mock.scope(INTEGRATION).into_keys().collect();
    let mut everything = all_keys(&expected, false);
    everything.extend(all_keys(&expected, true));
    assert_eq!(scope, everything);
    assert!(
        s.mock.jobs()[0].events.is_empty(),
        "sync posts no step events"
    );
    let _ = std::fs::remove_dir_all(&out);
}
