//! The instance's graph as the previous run left it, for a connector that re-emits what
//! did not change instead of fetching it again (WIT 0.2 `previous-object` and
//! `list-previous`). The state it comes from lives above this layer
//! (`delivery::state`), so a run is handed a reader.
//!
//! Objects holding a secret value are stored redacted. Handing such an object back would
//! tell a guest, one run later, which of the texts it emitted held a secret (the
//! redaction oracle the run's own read-back avoids by keeping the emitted text). So once
//! any object of an instance was stored redacted, its previous graph is not read at
//! all: a guest learns at most that one bit, once, as HTTP's closure already allows.

/// Reads one instance's previous graph.
pub trait PreviousGraph: Send + Sync {
    /// The object under `key`: its `_type` and its JSON text.
    fn object(&self, key: &str) -> anyhow::Result<Option<(String, String)>>;

    /// Up to `limit` objects of `type_name` from position `cursor` in key order, and the
    /// cursor of the next page.
    fn page(
        &self,
        type_name: &str,
        cursor: u32,
        limit: u32,
    ) -> anyhow::Result<(Vec<String>, Option<u32>)>;

    /// Whether any object of the instance was stored redacted (then nothing is read).
    fn held_redactions(&self) -> anyhow::Result<bool>;

    /// Whether the instance's last recorded run was partial (then the previous graph
    /// reads as empty until a complete run is recorded).
    fn was_partial(&self) -> anyhow::Result<bool> {
        Ok(false)
    }
}

/// The most objects one `list-previous` page holds.
pub const MAX_PAGE: u32 = 1000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::graph::GraphError;
    use crate::capabilities::tests::context_granted;
    use crate::capabilities::{RunContext, StepCtx};
    use crate::policy::{Grant, Policy};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    /// Two `acme_device`s and one `other_thing`; `redacted` and `partial` as told.
    #[derive(Default)]
    struct Fake {
        redacted: bool,
        partial: bool,
    }

    impl PreviousGraph for Fake {
        fn object(&self, key: &str) -> anyhow::Result<Option<(String, String)>> {
            Ok(match key {
                "device-1" | "device-2" => {
                    Some(("acme_device".into(), format!("{{\"_key\":\"{key}\"}}")))
                }
                "thing-1" => Some(("other_thing".into(), "{}".into())),
                _ => None,
            })
        }

        fn page(
            &self,
            type_name: &str,
            cursor: u32,
            limit: u32,
        ) -> anyhow::Result<(Vec<String>, Option<u32>)> {
            let all: Vec<String> = match type_name {
                "acme_device" => vec!["d1".into(), "d2".into()],
                _ => Vec::new(),
            };
            let from = (cursor as usize).min(all.len());
            let to = (from + limit as usize).min(all.len());
            let next = (to < all.len()).then_some(to as u32);
            Ok((all[from..to].to_vec(), next))
        }

        fn held_redactions(&self) -> anyhow::Result<bool> {
            Ok(self.redacted)
        }

        fn was_partial(&self) -> anyhow::Result<bool> {
            Ok(self.partial)
        }
    }

    fn step_with(previous: Option<Fake>) -> (Arc<RunContext>, StepCtx) {
        let policy = r#"{"permissions":[{"effect":"ALLOW","actions":["graph:Read"],"resources":["type:acme_*"]}]}"#;
        let grant = Grant::new(
            Policy::parse(policy, "test", &BTreeMap::new()).unwrap(),
            None,
        );
        let mut run = context_granted(grant, &[], &[]);
        Arc::get_mut(&mut run).unwrap().graph.previous =
            previous.map(|p| Arc::new(p) as Arc<dyn PreviousGraph>);
        let ctx = StepCtx::new(run.clone(), "s");
        (run, ctx)
    }

    #[tokio::test]
    async fn reads_are_granted_by_type_and_paged() {
        let (run, mut ctx) = step_with(Some(Fake::default()));
        assert_eq!(
            ctx.previous_object("device-2").await,
            Ok(Some("{\"_key\":\"device-2\"}".into()))
        );
        assert_eq!(ctx.previous_object("missing").await, Ok(None));
        // Another integration's type: denied, and the denial is recorded.
        assert!(matches!(
            ctx.previous_object("thing-1").await,
            Err(GraphError::Denied(_))
        ));
        assert!(matches!(
            ctx.list_previous("other_thing", 0, 10).await,
            Err(GraphError::Denied(_))
        ));
        assert_eq!(run.stats.denials.lock().unwrap().len(), 2);
        let page = ctx.list_previous("acme_device", 0, 1).await.unwrap();
        assert_eq!(
            (page.entities, page.next),
            (vec!["d1".to_string()], Some(1))
        );
        let page = ctx.list_previous("acme_device", 1, u32::MAX).await.unwrap();
        assert_eq!((page.entities, page.next), (vec!["d2".to_string()], None));
        // A `_type` no manifest could declare has nothing, and needs no policy match.
        let long = "a".repeat(10_000);
        assert_eq!(
            ctx.list_previous(&long, 0, 10)
                .await
                .unwrap()
                .entities
                .len(),
            0
        );
    }

    #[tokio::test]
    async fn without_a_state_the_previous_graph_is_empty() {
        let (_, mut ctx) = step_with(None);
        assert_eq!(ctx.previous_object("device-1").await, Ok(None));
        let page = ctx.list_previous("acme_device", 0, 10).await.unwrap();
        assert!(page.entities.is_empty() && page.next.is_none());
    }

    #[tokio::test]
    async fn a_graph_that_held_redactions_is_never_read_back() {
        let (_, mut ctx) = step_with(Some(Fake {
            redacted: true,
            ..Fake::default()
        }));
        assert!(
            matches!(ctx.previous_object("device-1").await, Err(GraphError::Denied(m)) if m.contains("secret value"))
        );
        assert!(matches!(
            ctx.list_previous("acme_device", 0, 10).await,
            Err(GraphError::Denied(_))
        ));
    }

    #[tokio::test]
    async fn after_a_partial_run_the_log_says_why_the_previous_graph_is_empty() {
        let (run, mut ctx) = step_with(Some(Fake {
            partial: true,
            ..Fake::default()
        }));
        for _ in 0..3 {
            let _ = ctx.previous_object("device-1").await;
        }
        let said: Vec<_> = run
            .log
            .records()
            .into_iter()
            .filter(|r| r.message.contains("last run was partial"))
            .collect();
        assert_eq!(said.len(), 1, "once per run");
        let (run, mut ctx) = step_with(Some(Fake::default()));
        let _ = ctx.previous_object("device-1").await;
        assert!(run.log.records().is_empty());
    }
}
