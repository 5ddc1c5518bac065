//! CircleCI in the real host against the simulator.

use corral::config::ConfigValue;
use corral_e2e::*;
use corral_simulators::FaultRule;
use corral_simulators::circleci::{API_PREFIX, CircleCiConfig, CircleCiSim};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;

const TOKEN: &str = "e2e-circle-token-4f1c";
const USER_ID: &str = "b1b6e8a6-0000-4000-8000-00000000c1c1";

fn sim() -> Arc<CircleCiSim> {
    CircleCiSim::new(&CircleCiConfig {
        seed: 8,
        token: TOKEN.into(),
        ..CircleCiConfig::default()
    })
}

fn instance(
    id: &str,
    server: &corral_simulators::SimServer,
    token: &str,
) -> corral::config::InstanceConfig {
    plugin_instance(
        id,
        "circleci",
        vec![
            (
                "baseUrl",
                ConfigValue::Text(format!("{}{API_PREFIX}", server.origin())),
            ),
            ("apiKey", ConfigValue::Text(token.into())),
            ("login", ConfigValue::Text("octocat".into())),
            ("userId", ConfigValue::Text(USER_ID.into())),
        ],
    )
}

fn s(v: &Value, f: &str) -> String {
    v[f].as_str().unwrap().to_string()
}

fn expected(sim: &CircleCiSim) -> KeysByType {
    let mut out = KeysByType::new();
    let mut add = |t: &str, k: String| {
        out.entry(t.to_string()).or_default().insert(k);
    };
    let account = format!("circleci_account:{USER_ID}");
    let user = format!("circleci_user:{}", s(&sim.me, "id"));
    add("circleci_account", account.clone());
    add("circleci_user", user.clone());
    add("circleci_account_has_user", format!("{account}|has|{user}"));
    for g in &sim.groups {
        let key = format!("circleci_user_group:{}", s(g, "id"));
        add("circleci_user_group", key.clone());
        add("circleci_user_group_has_user", format!("{key}|has|{user}"));
        if g["name"] == "octocat" {
            add(
                "circleci_account_has_user_group",
                format!("{account}|has|{key}"),
            );
        }
    }
    let slugs: BTreeSet<String> = sim
        .pipelines
        .iter()
        .map(|p| s(p, "project_slug"))
        .filter(|p| *p != sim.forbidden_project)
        .collect();
    let projects: Vec<&Value> = sim
        .projects
        .iter()
        .filter(|p| slugs.contains(&s(p, "slug")))
        .collect();
    let project_ids: BTreeSet<String> = projects.iter().map(|p| s(p, "id")).collect();
    for p in &sim.pipelines {
        let key = format!("circleci_pipeline:{}", s(p, "id"));
        add("circleci_pipeline", key.clone());
        if let Some(project) = projects.iter().find(|x| x["slug"] == p["project_slug"]) {
            add(
                "circleci_project_has_pipeline",
                format!("circleci_project:{}|has|{key}", s(project, "id")),
            );
        }
    }
    for w in &sim.workflows {
        let key = format!("circleci_workflow:{}", s(w, "id"));
        add("circleci_workflow", key.clone());
        add(
            "circleci_pipeline_has_workflow",
            format!("circleci_pipeline:{}|has|{key}", s(w, "pipeline_id")),
        );
    }
    for j in &sim.jobs {
        let key = format!("circleci_job:{}", s(j, "id"));
        add("circleci_job", key.clone());
        add(
            "circleci_workflow_has_job",
            format!("circleci_workflow:{}|has|{key}", s(j, "workflow_id")),
        );
    }
    for p in &projects {
        let key = format!("circleci_project:{}", s(p, "id"));
        add("circleci_project", key.clone());
        add(
            "circleci_user_group_has_project",
            format!("circleci_user_group:{}|has|{key}", s(p, "organization_id")),
        );
        for (slug, v) in sim
            .project_envvars
            .iter()
            .filter(|(slug, _)| *slug == s(p, "slug"))
        {
            let _ = slug;
            let var = format!("circleci_project_environment_variable:{}", s(v, "name"));
            add("circleci_project_environment_variable", var.clone());
            add(
                "circleci_project_has_environment_variable",
                format!("{key}|has|{var}"),
            );
        }
    }
    for (_, c) in &sim.contexts {
        let key = format!("circleci_context:{}", s(c, "id"));
        add("circleci_context", key.clone());
        let users: Vec<String> = sim
            .restrictions
            .iter()
            .filter(|r| {
                r["context_id"] == c["id"]
                    && r["restriction_type"] == "project"
                    && project_ids.contains(&s(r, "project_id"))
            })
            .map(|r| format!("circleci_project:{}", s(r, "project_id")))
            .collect();
        for v in sim
            .context_envvars
            .iter()
            .filter(|v| v["context_id"] == c["id"])
        {
            let var = format!("circleci_context_environment_variable:{}", s(v, "variable"));
            add("circleci_context_environment_variable", var.clone());
            add(
                "circleci_context_has_environment_variable",
                format!("{key}|has|{var}"),
            );
            for project in &users {
                add(
                    "circleci_project_uses_context_environment_variable",
                    format!("{project}|uses|{var}"),
                );
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_is_exact_across_page_tokens() {
    let sim = sim();
    let server = sim.start(0).await.unwrap();
    let report = run_builtin("circleci", &instance("circleci-e2e", &server, TOKEN)).await;

    assert_run_succeeded(&report);
    assert_eq!(keys_by_type(&report), expected(&sim));
    // Issue 12 item 3: what the data model's `User` and `Account` require, from `/me`
    // ("The Octocat", login "octocat") and the vendor.
    let user = &report
        .graph
        .entity(&format!("circleci_user:{}", s(&sim.me, "id")))
        .expect("the user")
        .object;
    assert_eq!(sim.me["name"], "The Octocat", "premise");
    assert_eq!(
        (user["firstName"].as_str(), user["lastName"].as_str()),
        (Some("The"), Some("Octocat"))
    );
    assert_eq!(user["username"], serde_json::json!(["octocat"]));
    assert_eq!(user["shortLoginId"], serde_json::json!(["octocat"]));
    assert_eq!(user["email"], Value::Null, "/me has no e-mail");
    let account = &report
        .graph
        .entity(&format!("circleci_account:{USER_ID}"))
        .expect("the account")
        .object;
    assert_eq!(account["vendor"], "CircleCI");
    let log = server.requests();
    // Every paged endpoint crossed a page boundary with an encoded page-token.
    let token = "page-token=cGFn%2B20%2FZQ%3D%3D";
    for path in [
        "/pipeline?org-slug=",
        "/workflow?",
        "/job?",
        "/envvar?",
        "/environment-variable?",
        "/context?owner-slug=",
        "/restrictions?",
    ] {
        assert!(
            log.iter()
                .any(|r| r.target.contains(path) && r.target.contains(token)),
            "no second page of {path}"
        );
    }
    assert!(
        log.iter().all(|r| r.status != 400),
        "a malformed page-token was sent"
    );
    // Each project is fetched once, however many pipelines name it.
    let project_calls: Vec<&str> = log
        .iter()
        .map(|r| r.target.as_str())
        .filter(|t| t.starts_with("/api/v2/project/") && !t.contains("/envvar"))
        .collect();
    let distinct: BTreeSet<&&str> = project_calls.iter().collect();
    assert_eq!(project_calls.len(), distinct.len(), "{project_calls:?}");
    // Env-var values are never stored.
    let everything = format!(
        "{:?}",
        report
            .graph
            .entities()
            .iter()
            .map(|e| &e.object)
            .collect::<Vec<_>>()
    );
    for (_, v) in &sim.project_envvars {
        assert!(!everything.contains(v["value"].as_str().unwrap()));
    }
    assert!(report.log.iter().any(|l| {
        l.message
            .starts_with("Could not fetch pipelines from the following org slugs: bb/gone-org")
    }));
    assert!(
        report
            .log
            .iter()
            .any(|l| l.message.starts_with("project could not be fetched"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_server_errors_are_retried() {
    let sim = sim();
    let server = sim.start(0).await.unwrap();
    server.add_fault(FaultRule::new("/job", 429, 2).retry_after(1));
    server.add_fault(FaultRule::new("/me/collaborations", 500, 1));
    let rt = runtime();
    let plugin = rt.plugin("circleci").await.unwrap();
    let report = run_plugin(
        &rt,
        plugin,
        &instance("circleci-retry", &server, TOKEN),
        None,
    )
    .await;
    assert_run_succeeded(&report);
    assert_eq!(keys_by_type(&report), expected(&sim));
    assert_eq!(server.requests().iter().filter(|r| r.injected).count(), 3);
}

/// Only 403 and 404 skip a project (the simulator's forbidden project is one); any other
/// error status fails `fetch-projects`, whose types are then partial, so nothing of them
/// is deleted. (401 here: it is not retried, as 429 and 5xx are before they fail alike.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_error_other_than_403_or_404_fails_the_step() {
    let sim = sim();
    let server = sim.start(0).await.unwrap();
    server.add_fault(FaultRule::new("/project/", 401, u32::MAX));
    let report = run_builtin(
        "circleci",
        &instance("circleci-project-error", &server, TOKEN),
    )
    .await;
    let step = report
        .steps
        .iter()
        .find(|s| s.info.id == "fetch-projects")
        .unwrap();
    assert_eq!(step.status, corral::run::StepStatus::Failure);
    let err = step.error.clone().unwrap();
    assert!(err.contains("401"), "{err}");
    assert!(
        report
            .partial_types()
            .contains(&"circleci_project".to_string()),
        "{:?}",
        report.partial_types()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_fails_validation() {
    let sim = sim();
    let server = sim.start(0).await.unwrap();
    let wrong = "wrong-circle-token-818";
    let report = run_builtin("circleci", &instance("circleci-bad", &server, wrong)).await;
    let err = report.validation.clone().unwrap_err();
    assert!(
        err.contains("Provider authentication failed at")
            && err.contains("/api/v2/me/")
            && err.ends_with("401 Unauthorized"),
        "{err}"
    );
    assert!(!format!("{err} {:?}", report.log).contains(wrong));
    assert_eq!(server.requests().len(), 1);
}

/// A string a person can read as a name: not empty, not only whitespace.
fn readable(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.trim().is_empty())
}

/// By `_key`, every entity's `name` by the spec's formulas and the README's fallbacks:
/// org and project `name`, slug, id; workflow, job and context `name`, id; pipeline id;
/// user login; env vars their name.
fn expected_names(sim: &CircleCiSim) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut add = |ty: &str, id: &str, name: &str| {
        out.insert(format!("{ty}:{id}"), name.to_string());
    };
    add("circleci_account", USER_ID, "octocat");
    add("circleci_user", &s(&sim.me, "id"), &s(&sim.me, "login"));
    for (ty, list) in [
        ("circleci_user_group", &sim.groups),
        ("circleci_project", &sim.projects),
    ] {
        for g in list {
            let id = s(g, "id");
            let name = readable(&g["name"]).or_else(|| readable(&g["slug"]));
            add(ty, &id, name.unwrap_or(&id));
        }
    }
    for p in &sim.pipelines {
        add("circleci_pipeline", &s(p, "id"), &s(p, "id"));
    }
    let contexts: Vec<&Value> = sim.contexts.iter().map(|(_, c)| c).collect();
    for (ty, list) in [
        (
            "circleci_workflow",
            sim.workflows.iter().collect::<Vec<_>>(),
        ),
        ("circleci_job", sim.jobs.iter().collect()),
        ("circleci_context", contexts),
    ] {
        for x in list {
            let id = s(x, "id");
            add(ty, &id, readable(&x["name"]).unwrap_or(&id));
        }
    }
    for (_, v) in &sim.project_envvars {
        add(
            "circleci_project_environment_variable",
            &s(v, "name"),
            &s(v, "name"),
        );
    }
    for v in &sim.context_envvars {
        let name = s(v, "variable");
        add("circleci_context_environment_variable", &name, &name);
    }
    out
}

/// Issue 12: an org, a project, a workflow, a job and a context without a usable name are
/// in the graph under the documented fallback names, with their relationships; nothing is
/// rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_without_a_name_keep_their_relationships() {
    let sim = sim();
    let nameless = |list: &[Value]| -> Vec<Value> {
        list.iter()
            .filter(|x| readable(&x["name"]).is_none())
            .cloned()
            .collect()
    };
    let (groups, projects) = (nameless(&sim.groups), nameless(&sim.projects));
    let (workflows, jobs) = (nameless(&sim.workflows), nameless(&sim.jobs));
    let contexts: Vec<Value> = sim.contexts.iter().map(|(_, c)| c.clone()).collect();
    let contexts = nameless(&contexts);
    for (what, n) in [
        ("group", groups.len()),
        ("project", projects.len()),
        ("workflow", workflows.len()),
        ("job", jobs.len()),
        ("context", contexts.len()),
    ] {
        assert_eq!(n, 1, "premise: one {what} without a name");
    }
    let server = sim.start(0).await.unwrap();
    let report = run_builtin("circleci", &instance("circleci-nameless", &server, TOKEN)).await;
    assert_run_succeeded(&report);
    assert!(report.rejections.is_empty(), "{:?}", report.rejections);
    let keys = keys_by_type(&report);
    assert_eq!(keys, expected(&sim));

    let got: std::collections::BTreeMap<String, String> = report
        .graph
        .entities()
        .iter()
        .map(|e| {
            let name = e.object["name"].as_str().unwrap().to_string();
            assert_eq!(e.object["displayName"], name, "{}", e.key);
            (e.key.clone(), name)
        })
        .collect();
    let mut want = expected_names(&sim);
    want.retain(|k, _| keys.values().any(|ks| ks.contains(k)));
    assert_eq!(got, want);

    let user = format!("circleci_user:{}", s(&sim.me, "id"));
    let group = format!("circleci_user_group:{}", s(&groups[0], "id"));
    assert_eq!(got[&group], s(&groups[0], "id"));
    assert!(keys["circleci_user_group_has_user"].contains(&format!("{group}|has|{user}")));
    let project = format!("circleci_project:{}", s(&projects[0], "id"));
    assert_eq!(got[&project], s(&projects[0], "slug"));
    assert!(keys["circleci_user_group_has_project"].contains(&format!(
        "circleci_user_group:{}|has|{project}",
        s(&projects[0], "organization_id")
    )));
    assert!(
        keys["circleci_project_has_pipeline"]
            .iter()
            .any(|k| k.starts_with(&format!("{project}|has|")))
    );
    let workflow = format!("circleci_workflow:{}", s(&workflows[0], "id"));
    assert_eq!(got[&workflow], s(&workflows[0], "id"));
    assert!(keys["circleci_pipeline_has_workflow"].contains(&format!(
        "circleci_pipeline:{}|has|{workflow}",
        s(&workflows[0], "pipeline_id")
    )));
    let job = format!("circleci_job:{}", s(&jobs[0], "id"));
    assert_eq!(got[&job], s(&jobs[0], "id"));
    assert!(keys["circleci_workflow_has_job"].contains(&format!(
        "circleci_workflow:{}|has|{job}",
        s(&jobs[0], "workflow_id")
    )));
    let context = format!("circleci_context:{}", s(&contexts[0], "id"));
    assert_eq!(got[&context], s(&contexts[0], "id"));
    assert!(
        keys["circleci_context_has_environment_variable"]
            .iter()
            .any(|k| k.starts_with(&format!("{context}|has|")))
    );
}

/// Pages of 20 the simulator answers `n` items in (an empty list is one page).
fn pages(n: usize) -> usize {
    n.div_ceil(20).max(1)
}

fn children_of<'a>(items: &'a [Value], field: &str, parent: &Value) -> Vec<&'a Value> {
    items.iter().filter(|x| x[field] == parent["id"]).collect()
}

/// `incremental = "true"`: after the tenant changed (a running workflow finished with one
/// more job; a new pipeline), the second run fetches workflows only of pipelines that had
/// an unfinished one or are new, and jobs only of workflows not finished before, and its
/// graph is a full run's against the changed tenant, object for object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_keeps_finished_workflows_and_equals_a_full_run() {
    use corral::delivery::Delivery;
    use corral::run::{resolve_with_policy, run_instance};
    use serde_json::json;
    let before = sim();
    let mut after = (*before).clone();
    let running = after
        .workflows
        .iter()
        .position(|w| w["status"] == "running")
        .expect("a running workflow");
    let finished_id = after.workflows[running]["id"].clone();
    after.workflows[running]["status"] = json!("success");
    after.workflows[running]["stopped_at"] = json!("2031-01-01T00:00:00.000Z");
    let mut job = (*children_of(&after.jobs, "workflow_id", &after.workflows[running])[0]).clone();
    job["id"] = json!("00000000-0000-4000-8000-00000000j0b1");
    job["job_number"] = json!(99);
    after.jobs.push(job);
    let mut pipeline = after.pipelines[1].clone();
    let mut workflow = (*children_of(&after.workflows, "pipeline_id", &pipeline)[0]).clone();
    pipeline["id"] = json!("00000000-0000-4000-8000-0000000p1pe1");
    pipeline["number"] = json!(999);
    workflow["id"] = json!("00000000-0000-4000-8000-0000000w0rk1");
    workflow["pipeline_id"] = pipeline["id"].clone();
    after.pipelines.push(pipeline);
    after.workflows.push(workflow);
    let after = Arc::new(after);
    let (server_a, server_b) = (
        before.start(0).await.unwrap(),
        after.start(0).await.unwrap(),
    );

    let dir = corral_e2e::daemon::scratch("circleci-incremental");
    let rt = runtime();
    let delivery = Delivery::open(&dir, dir.join("out"), Vec::new(), rt.hosts.clone()).unwrap();
    let plugin = rt.plugin("circleci").await.unwrap();
    let incremental = |server| {
        let mut inst = instance("circleci-incremental", server, TOKEN);
        inst.config
            .insert("incremental".into(), ConfigValue::Text("true".into()));
        inst
    };
    let run = |inst: corral::config::InstanceConfig| {
        let (plugin, delivery, rt) = (&plugin, &delivery, &rt);
        async move {
            let mut r = resolve_with_policy(&inst, plugin.clone(), None).unwrap();
            r.previous = Some(delivery.previous(&r.id));
            run_instance(&r, rt.hosts.clone()).await
        }
    };
    let first = run(incremental(&server_a)).await;
    assert_run_succeeded(&first);
    delivery.deliver("run-1", &first).await.unwrap();

    let second = run(incremental(&server_b)).await;
    assert_run_succeeded(&second);
    // What the second run must have asked for: the workflows of each pipeline that is
    // new or had a workflow that was not finished, the jobs of each workflow that is new
    // or changed or was not finished.
    let done = |w: &Value| w["status"] == "success" || w["status"] == "failed";
    let kept_pipeline = |p: &&Value| {
        let was = children_of(&before.workflows, "pipeline_id", p);
        before.pipelines.contains(p) && !was.is_empty() && was.into_iter().all(done)
    };
    let workflow_requests: usize = after
        .pipelines
        .iter()
        .filter(|p| !kept_pipeline(p))
        .map(|p| pages(children_of(&after.workflows, "pipeline_id", p).len()))
        .sum();
    let job_requests: usize = after
        .workflows
        .iter()
        .filter(|w| !(before.workflows.contains(w) && done(w)))
        .map(|w| pages(children_of(&after.jobs, "workflow_id", w).len()))
        .sum();
    let log = server_b.requests();
    let count = |parent: &str, child: &str| {
        log.iter()
            .filter(|r| r.target.starts_with(&format!("{API_PREFIX}{parent}/")))
            .filter(|r| r.target.split('?').next().unwrap().ends_with(child))
            .count()
    };
    // 48 workflow requests for 91 pipelines, 60 job requests for 177 workflows.
    assert_eq!(count("pipeline", "/workflow"), workflow_requests);
    assert_eq!(count("workflow", "/job"), job_requests);
    assert!(
        workflow_requests < after.pipelines.len() && job_requests < after.workflows.len() / 2,
        "{workflow_requests} workflow and {job_requests} job requests"
    );
    let new_job = json!("00000000-0000-4000-8000-00000000j0b1");
    let finished_jobs = second
        .graph
        .entities()
        .iter()
        .filter(|e| e.object.get("id") == Some(&new_job))
        .count();
    assert_eq!(
        finished_jobs, 1,
        "the finished workflow {finished_id}'s new job"
    );

    // A full run of the changed tenant, with no previous graph, gives the same objects.
    let full = run_plugin(
        &rt,
        plugin.clone(),
        &instance("circleci-incremental", &server_b, TOKEN),
        None,
    )
    .await;
    assert_run_succeeded(&full);
    let (incremental, fresh) = (all_objects(&second), all_objects(&full));
    assert_eq!(incremental.len(), fresh.len());
    assert!(
        incremental == fresh,
        "the incremental graph differs from a full run's"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
