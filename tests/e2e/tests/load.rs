//! 50 well-behaved Kandji instances and 10 hostile ones at once in one host process:
//! every well-behaved run completes with its exact graph, every hostile one fails.

use corral_e2e::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_good_and_ten_hostile_instances_at_once() {
    let outcome = load_scenario(50, 10).await;
    assert_eq!(outcome.kandji.len(), 50);
    for r in &outcome.kandji {
        assert!(
            r.succeeded(),
            "{}: {:?} {:?}",
            r.instance_id,
            r.validation,
            r.steps.iter().map(|s| &s.error).collect::<Vec<_>>()
        );
        assert_eq!(keys_by_type(r), outcome.expected, "{}", r.instance_id);
    }
    for r in &outcome.hostile {
        assert!(!r.succeeded(), "{} must fail", r.instance_id);
        assert!(r.steps[0].error.is_some(), "{}", r.instance_id);
    }
}
