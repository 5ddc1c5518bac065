//! The admin API (a contract; JSON bodies): health, plugins and their generations, runs,
//! rollback and Prometheus metrics.

use super::Daemon;
use super::registry::RollbackError;
use super::runs::{Admission, AdmitError, Trigger};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

type Shared = State<Arc<Daemon>>;

pub fn router(daemon: Arc<Daemon>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/plugins", get(plugins))
        .route("/plugins/{id}/rollback", post(rollback))
        .route("/instances/{id}/runs", post(start_run))
        .route("/runs", get(list_runs))
        .route("/runs/{run_id}", get(get_run))
        .route("/metrics", get(metrics))
        .with_state(daemon)
}

/// Serves until the daemon stops.
pub fn spawn(daemon: Arc<Daemon>, listener: TcpListener) -> JoinHandle<()> {
    let mut stopping = daemon.stopping();
    let app = router(daemon);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopping.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!("admin API: {e}");
        }
    })
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    reply(status, json!({ "error": message.to_string() }))
}

async fn healthz(State(d): Shared) -> Response {
    if d.is_admitting() {
        reply(StatusCode::OK, json!({ "status": "ok" }))
    } else {
        reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "shutting down" }),
        )
    }
}

async fn plugins(State(d): Shared) -> Response {
    reply(StatusCode::OK, json!(d.registry.describe()))
}

async fn rollback(State(d): Shared, Path(id): Path<String>) -> Response {
    match d
        .registry
        .rollback(&id, "on request (POST /plugins/{id}/rollback)")
    {
        Ok(rb) => {
            d.metrics.record_rollback(&id);
            tracing::warn!(plugin = %id, from = rb.from_generation, to = rb.to_generation, "rolled back on request");
            reply(StatusCode::OK, json!(rb))
        }
        Err(e @ RollbackError::Unknown(_)) => error(StatusCode::NOT_FOUND, e),
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

async fn start_run(State(d): Shared, Path(id): Path<String>) -> Response {
    match d.request_run(&id, Trigger::Api) {
        Ok(Admission::Queued(run)) => reply(StatusCode::ACCEPTED, json!({ "runId": run })),
        Ok(Admission::InFlight(run)) => reply(
            StatusCode::CONFLICT,
            json!({ "runId": run, "error": format!("instance {id} already has run {run} in flight") }),
        ),
        Err(e @ AdmitError::UnknownInstance(_)) => error(StatusCode::NOT_FOUND, e),
        Err(e @ AdmitError::ShuttingDown) => error(StatusCode::SERVICE_UNAVAILABLE, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn get_run(State(d): Shared, Path(run_id): Path<String>) -> Response {
    match d.history.get(&run_id) {
        Ok(Some(r)) => reply(StatusCode::OK, json!(r)),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no run {run_id:?}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[derive(serde::Deserialize)]
struct RunsQuery {
    instance: Option<String>,
    limit: Option<u32>,
}

/// The newest runs, newest first (`?instance=ID&limit=N`, default 100).
async fn list_runs(State(d): Shared, Query(q): Query<RunsQuery>) -> Response {
    let limit = q.limit.unwrap_or(100).min(10_000);
    match d.history.recent(q.instance.as_deref(), limit) {
        Ok(runs) => reply(StatusCode::OK, json!(runs)),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn metrics(State(d): Shared) -> Response {
    let body = d.metrics.render(&d.gauges());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
