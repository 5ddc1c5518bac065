//! The CircleCI API v2 simulator under `/api/v2/`: `me`, `me/collaborations`, pipelines by
//! org, workflows, jobs, projects, project env vars, contexts with restrictions and env
//! vars; `page-token` pagination (20 a page; tokens contain `+`, `/` and `=`),
//! `Circle-Token` auth.
//!
//! Edge cases from the spec: an org whose slug answers 404, a project that answers 403,
//! a project without pipelines (never discovered), env-var names shared by several
//! projects and contexts, expression restrictions, a group named like the login (the only
//! one the account HAS), masked env-var values; records without a usable name: a
//! collaboration with a `null` name and no slug, and in the first org project `repo-2`
//! (`name: ""`), the first pipeline's second workflow (`null`), that pipeline's first
//! workflow's second job (`""`) and context `ctx-1` (blank).

use crate::rng::Rng;
use crate::server::{Provider, SimRequest, SimResponse, SimServer};
use serde_json::{Value, json};
use std::sync::Arc;

pub const API_PREFIX: &str = "/api/v2/";
const PAGE: usize = 20;

#[derive(Debug, Clone)]
pub struct CircleCiConfig {
    pub seed: u64,
    pub projects_per_org: usize,
    pub pipelines_per_org: usize,
    pub token: String,
}

impl Default for CircleCiConfig {
    fn default() -> Self {
        CircleCiConfig {
            seed: 42,
            projects_per_org: 4,
            pipelines_per_org: 45,
            token: "circle-sim-token".into(),
        }
    }
}

#[derive(Clone)]
pub struct CircleCiSim {
    pub token: String,
    pub me: Value,
    pub groups: Vec<Value>,
    pub projects: Vec<Value>,
    pub pipelines: Vec<Value>,
    pub workflows: Vec<Value>,
    pub jobs: Vec<Value>,
    /// (project slug, env var)
    pub project_envvars: Vec<(String, Value)>,
    /// (owner slug, context)
    pub contexts: Vec<(String, Value)>,
    pub restrictions: Vec<Value>,
    pub context_envvars: Vec<Value>,
    /// The project that answers 403.
    pub forbidden_project: String,
}

fn iso(r: &mut Rng) -> String {
    format!(
        "2024-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        1 + r.below(12),
        1 + r.below(28),
        r.below(24),
        r.below(60),
        r.below(60),
        r.below(1000)
    )
}

const VAR_NAMES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "NPM_TOKEN",
    "DOCKER_PASSWORD",
    "SLACK_WEBHOOK",
    "SENTRY_DSN",
];

/// Shared names first (so projects and contexts collide, as the spec warns), then unique ones.
fn var_name(n: usize, prefix: &str) -> String {
    VAR_NAMES
        .get(n)
        .map_or_else(|| format!("{prefix}_{n}"), |v| v.to_string())
}

impl CircleCiSim {
    pub fn new(c: &CircleCiConfig) -> Arc<Self> {
        let mut r = Rng::for_item(c.seed, "cci", 0);
        let me = json!({ "id": r.uuid(), "login": "octocat", "name": "The Octocat" });
        let org_ids: Vec<String> = (0..3).map(|_| r.uuid()).collect();
        let groups = vec![
            json!({ "id": org_ids[0], "name": "octocat", "slug": "gh/octocat", "vcs_type": "github", "avatar_url": "https://x/a.png" }),
            json!({ "id": org_ids[1], "name": "cci-h6wmx", "slug": format!("circleci/{}", org_ids[1]), "vcs_type": "circleci", "avatar_url": "" }),
            json!({ "id": org_ids[2], "name": "gone-org", "slug": "bb/gone-org", "vcs_type": "bitbucket", "avatar_url": "" }),
            json!({ "id": r.uuid(), "name": "no-slug", "slug": "", "vcs_type": "github", "avatar_url": "" }),
            // Its own generator, so the other records stay as they were.
            json!({ "id": Rng::for_item(c.seed, "cci-nameless-group", 0).uuid(), "name": null, "slug": "", "vcs_type": "github", "avatar_url": "" }),
        ];
        let mut sim = CircleCiSim {
            token: c.token.clone(),
            me,
            groups: groups.clone(),
            projects: vec![],
            pipelines: vec![],
            workflows: vec![],
            jobs: vec![],
            project_envvars: vec![],
            contexts: vec![],
            restrictions: vec![],
            context_envvars: vec![],
            forbidden_project: String::new(),
        };
        for g in groups.iter().take(2) {
            sim.add_org(c, g, &mut r);
        }
        sim.blank_some_names();
        Arc::new(sim)
    }

    fn add_org(&mut self, c: &CircleCiConfig, g: &Value, r: &mut Rng) {
        let slug = g["slug"].as_str().unwrap().to_string();
        let org_id = g["id"].as_str().unwrap().to_string();
        let first = self.projects.len();
        for p in 0..c.projects_per_org {
            let name = format!("repo-{p}");
            let project = json!({ "id": r.uuid(), "slug": format!("{slug}/{name}"), "name": name, "organization_id": org_id,
                "organization_name": g["name"], "organization_slug": slug,
                "vcs_info": { "vcs_url": format!("https://github.com/{slug}/{name}"), "provider": "GitHub", "default_branch": "main" } });
            let vars = if p == 0 { 22 } else { p % 3 };
            for v in 0..vars {
                let name = var_name(v, "VAR");
                self.project_envvars.push((project["slug"].as_str().unwrap().to_string(), json!({ "name": name, "value": format!("xxxx{}", r.alnum(4)), "created_at": iso(r) })));
            }
            self.projects.push(project);
        }
        // The last project has no pipelines, so it is never discovered.
        let with_pipelines = &self.projects[first..self.projects.len() - 1].to_vec();
        if self.forbidden_project.is_empty() {
            self.forbidden_project = with_pipelines[1]["slug"].as_str().unwrap().to_string();
        }
        for n in 0..c.pipelines_per_org {
            let project = &with_pipelines[n % with_pipelines.len()];
            let id = r.uuid();
            self.pipelines.push(json!({ "id": id, "project_slug": project["slug"], "number": n + 1, "state": "created",
                "created_at": iso(r), "updated_at": iso(r), "errors": [],
                "trigger": { "type": "webhook", "received_at": iso(r), "actor": { "login": "octocat", "avatar_url": null } },
                "trigger_parameters": { "git": { "checkout_sha": format!("{:040x}", r.next_u64()) } } }));
            let workflows = if n == 0 { 22 } else { 1 + n % 2 };
            for w in 0..workflows {
                let wid = r.uuid();
                self.workflows.push(json!({ "id": wid, "name": format!("build-{w}"), "pipeline_id": id, "pipeline_number": n + 1,
                    "project_slug": project["slug"], "status": *r.pick(&["success", "failed", "running"]), "started_by": r.uuid(),
                    "created_at": iso(r), "stopped_at": if w % 3 == 0 { Value::Null } else { json!(iso(r)) } }));
                let jobs = if n == 0 && w == 0 { 21 } else { 1 + w % 3 };
                for j in 0..jobs {
                    self.jobs.push(json!({ "id": r.uuid(), "workflow_id": wid, "job_number": j + 1, "name": format!("job-{j}"),
                        "project_slug": project["slug"], "status": "success", "type": if j == 2 { "approval" } else { "build" },
                        "started_at": iso(r), "stopped_at": null, "dependencies": [] }));
                }
            }
        }
        // The first org has enough contexts, and its first context enough expression
        // rules, to need a second page of each.
        let contexts = if self.contexts.is_empty() { 21 } else { 2 };
        for k in 0..contexts {
            let ctx = json!({ "id": r.uuid(), "name": format!("ctx-{k}"), "created_at": iso(r) });
            let cid = ctx["id"].as_str().unwrap().to_string();
            let vars = if k == 0 { 21 } else { 2 };
            for v in 0..vars {
                let variable = var_name(v, "CTX_VAR");
                self.context_envvars.push(json!({ "variable": variable, "context_id": cid, "created_at": iso(r), "updated_at": iso(r) }));
            }
            for (i, p) in self.projects[first..]
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 2 == k)
            {
                self.restrictions.push(json!({ "id": r.uuid(), "context_id": cid, "project_id": p["id"], "name": p["name"],
                    "restriction_type": "project", "restriction_value": p["id"] }));
                let _ = i;
            }
            let rules = if k == 0 && contexts > 2 { 21 } else { 1 };
            for n in 0..rules {
                self.restrictions.push(json!({ "id": r.uuid(), "context_id": cid, "project_id": "00000000-0000-0000-0000-000000000000",
                    "name": format!("rule {n}"), "restriction_type": "expression", "restriction_value": "pipeline.git.branch == \"main\"" }));
            }
            self.contexts.push((self_slug(&self.groups, &org_id), ctx));
        }
    }

    /// Blanks the names of a project, a workflow, a job and a context of the first org,
    /// after generation (the generator's draws, and so every id, are unchanged).
    fn blank_some_names(&mut self) {
        if let Some(p) = self.projects.get_mut(2) {
            p["name"] = json!("");
        }
        let first_pipeline = self.pipelines.first().map(|p| p["id"].clone());
        let mut workflows = self
            .workflows
            .iter_mut()
            .filter(|w| Some(&w["pipeline_id"]) == first_pipeline.as_ref());
        let first_workflow = workflows.next().map(|w| w["id"].clone());
        if let Some(w) = workflows.next() {
            w["name"] = Value::Null;
        }
        if let Some(j) = self
            .jobs
            .iter_mut()
            .filter(|j| Some(&j["workflow_id"]) == first_workflow.as_ref())
            .nth(1)
        {
            j["name"] = json!("");
        }
        if let Some((_, c)) = self.contexts.get_mut(1) {
            c["name"] = json!("   ");
        }
    }

    pub async fn start(self: &Arc<Self>, port: u16) -> anyhow::Result<SimServer> {
        SimServer::start(self.clone(), port).await
    }
}

fn self_slug(groups: &[Value], org_id: &str) -> String {
    groups
        .iter()
        .find(|g| g["id"] == org_id)
        .and_then(|g| g["slug"].as_str())
        .unwrap_or_default()
        .to_string()
}

pub fn encode_token(offset: usize) -> String {
    format!("cGFn+{offset}/ZQ==")
}

fn decode_token(t: &str) -> Option<usize> {
    t.strip_prefix("cGFn+")?.strip_suffix("/ZQ==")?.parse().ok()
}

fn page(req: &SimRequest, items: Vec<Value>) -> SimResponse {
    let offset = match req.query_param("page-token") {
        None => 0,
        Some(t) => match decode_token(t) {
            Some(o) => o,
            None => return SimResponse::json(400, &json!({ "message": "invalid page-token" })),
        },
    };
    let end = (offset + PAGE).min(items.len());
    let next = (end < items.len()).then(|| encode_token(end));
    SimResponse::json(
        200,
        &json!({ "items": &items[offset.min(items.len())..end], "next_page_token": next }),
    )
    .with_header("content-type", "text/plain;charset=utf-8")
}

fn not_found() -> SimResponse {
    SimResponse::json(404, &json!({ "message": "Not found." }))
}

impl Provider for CircleCiSim {
    fn authorized(&self, req: &SimRequest) -> bool {
        req.header("circle-token") == Some(self.token.as_str())
    }

    fn unauthorized(&self) -> SimResponse {
        SimResponse::json(401, &json!({ "message": "You must log in first." }))
    }

    fn handle(&self, req: &SimRequest) -> SimResponse {
        let Some(rest) = req.path.strip_prefix(API_PREFIX) else {
            return not_found();
        };
        // Slugs arrive percent-encoded (`gh%2Foctocat%2Frepo`): decode per segment.
        let decoded: Vec<String> = rest.split('/').map(crate::server::percent_decode).collect();
        let parts: Vec<&str> = decoded.iter().map(String::as_str).collect();
        let known_org = |slug: &str| self.groups.iter().take(2).any(|g| g["slug"] == slug);
        let filter = |list: &[Value], f: &str, v: &str| {
            list.iter()
                .filter(|x| x[f] == v)
                .cloned()
                .collect::<Vec<_>>()
        };
        match parts.as_slice() {
            ["me"] | ["me", ""] => SimResponse::json(200, &self.me),
            ["me", "collaborations"] => SimResponse::json(200, &json!(self.groups)),
            ["pipeline"] => match req.query_param("org-slug") {
                Some(slug) if known_org(slug) => page(
                    req,
                    self.pipelines
                        .iter()
                        .filter(|p| {
                            p["project_slug"]
                                .as_str()
                                .unwrap_or("")
                                .starts_with(&format!("{slug}/"))
                        })
                        .cloned()
                        .collect(),
                ),
                _ => not_found(),
            },
            ["pipeline", id, "workflow"] => page(req, filter(&self.workflows, "pipeline_id", id)),
            ["workflow", id, "job"] => page(req, filter(&self.jobs, "workflow_id", id)),
            ["project", slug] if *slug == self.forbidden_project => {
                SimResponse::json(403, &json!({ "message": "Permission denied" }))
            }
            ["project", slug] => self
                .projects
                .iter()
                .find(|p| p["slug"] == *slug)
                .map_or_else(not_found, |p| SimResponse::json(200, p)),
            ["project", slug, "envvar"] => page(
                req,
                self.project_envvars
                    .iter()
                    .filter(|(s, _)| s == slug)
                    .map(|(_, v)| v.clone())
                    .collect(),
            ),
            ["context"] => match req.query_param("owner-slug") {
                Some(slug) if known_org(slug) => page(
                    req,
                    self.contexts
                        .iter()
                        .filter(|(s, _)| s == slug)
                        .map(|(_, c)| c.clone())
                        .collect(),
                ),
                _ => not_found(),
            },
            ["context", id, "restrictions"] => {
                page(req, filter(&self.restrictions, "context_id", id))
            }
            ["context", id, "environment-variable"] => {
                page(req, filter(&self.context_envvars, "context_id", id))
            }
            _ => not_found(),
        }
    }
}
