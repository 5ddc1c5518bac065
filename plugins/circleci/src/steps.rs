//! The steps' I/O: `page-token` paging, fan-outs through the host's batch fetch, and
//! steps that read back what earlier ones stored.

use crate::convert::{self, *};
use crate::manifest::*;
use crate::previous;
use corral_sdk::config;
use corral_sdk::entity::Object;
use corral_sdk::graph::{self, Emitter};
use corral_sdk::http::{self, Request, RequestExt, Response, ResponseExt, Retry};
use corral_sdk::serde_json::Value;
use corral_sdk::{Error, Result, log};
use std::collections::{BTreeMap, HashSet};

fn cfg(name: &str) -> Option<String> {
    config::get(name)
        .ok()
        .flatten()
        .filter(|v| !v.trim().is_empty())
}

fn base() -> String {
    let url = cfg("baseUrl").unwrap_or_else(|| DEFAULT_BASE_URL.into());
    if url.ends_with('/') {
        url
    } else {
        format!("{url}/")
    }
}

fn get(path: &str) -> Request {
    http::get(format!("{}{path}", base())).header("Circle-Token", "{{secret:apiKey}}")
}

fn enc(s: &str) -> String {
    http::encode_query_value(s)
}

/// `path` with a `page-token` query parameter, encoded, whatever the path already has.
fn paged(path: &str, token: Option<&str>) -> String {
    match token {
        None => path.to_string(),
        Some(t) => format!(
            "{path}{}page-token={}",
            if path.contains('?') { '&' } else { '?' },
            enc(t)
        ),
    }
}

fn body(r: Response) -> Result<Value> {
    r.error_for_status()?.json()
}

/// Every item of every page of each path; the first pages are fetched at once. `None`
/// where the first page answered 404.
fn all_pages(paths: &[String]) -> Result<Vec<Option<Vec<Value>>>> {
    let first: Vec<Request> = paths.iter().map(|p| get(p)).collect();
    let answers = http::fetch_all(&first, &Retry::default());
    let mut out = Vec::with_capacity(paths.len());
    for (path, answer) in paths.iter().zip(answers) {
        let r = answer?;
        if r.status == 404 {
            out.push(None);
            continue;
        }
        let mut page = body(r)?;
        let mut items = Vec::new();
        let mut seen_tokens = HashSet::new();
        loop {
            items.extend(
                page.get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
            let Some(next) = page
                .get("next_page_token")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            else {
                break;
            };
            if !seen_tokens.insert(next.to_string()) {
                break;
            }
            page = body(http::fetch(
                &get(&paged(path, Some(next))),
                &Retry::default(),
            )?)?;
        }
        out.push(Some(items));
    }
    Ok(out)
}

pub fn validate() -> Result<()> {
    let (Some(_), Some(_), true) = (cfg("login"), cfg("userId"), config::has_secret("apiKey"))
    else {
        return Err(Error::Config(
            "Config requires  {apiKey, login, userId}".into(),
        ));
    };
    http::check_credentials(&get("me/"), &Retry::default(), |s| (200..300).contains(&s))?;
    Ok(())
}

pub fn fetch_account() -> Result<()> {
    one_entity(convert::account(
        &cfg("userId").unwrap_or_default(),
        &cfg("login").unwrap_or_default(),
    ))
}

/// Workflows of each pipeline; an incremental run keeps an unchanged pipeline's
/// workflows when every one of them had finished.
pub fn fetch_workflows() -> Result<()> {
    fetch_children(
        PIPELINE,
        |id| format!("pipeline/{id}/workflow"),
        convert::workflow,
        WORKFLOW,
        |_, workflows| !workflows.is_empty() && workflows.iter().all(previous::finished),
    )
}

/// Jobs of each workflow; an incremental run keeps a finished, unchanged workflow's jobs
/// when each of them had finished too.
pub fn fetch_jobs() -> Result<()> {
    fetch_children(
        WORKFLOW,
        |id| format!("workflow/{id}/job"),
        convert::job,
        JOB,
        |workflow, jobs| previous::finished(workflow) && jobs.iter().all(previous::job_finished),
    )
}

fn one_entity(e: Object) -> Result<()> {
    let mut out = Emitter::new();
    out.entity(e)?;
    Ok(())
}

fn stored(type_name: &str) -> Result<Vec<Object>> {
    graph::entities_of_type(type_name).collect()
}

fn key_of(e: &Object) -> String {
    e.get("_key")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn raw<'a>(e: &'a Object, field: &str) -> Option<&'a str> {
    corral_sdk::entity::raw_data(e)?.get(field)?.as_str()
}

/// Emits `e` unless its key was already emitted by this step.
fn emit_once(out: &mut Emitter, seen: &mut HashSet<String>, e: Object) -> Result<()> {
    if seen.insert(key_of(&e)) {
        out.entity(e)
    } else {
        Ok(())
    }
}

fn relate_once(out: &mut Emitter, seen: &mut HashSet<String>, r: Object) -> Result<()> {
    if seen.insert(key_of(&r)) {
        out.relationship(r)
    } else {
        Ok(())
    }
}

pub fn fetch_groups() -> Result<()> {
    let list = body(http::fetch(&get("me/collaborations"), &Retry::default())?)?;
    let mut out = Emitter::new();
    let mut seen = HashSet::new();
    for c in list.as_array().into_iter().flatten() {
        match convert::group(c) {
            Some(g) => emit_once(&mut out, &mut seen, g)?,
            None => log::warn("skipping a collaboration without an id", &[]),
        }
    }
    Ok(())
}

pub fn account_groups() -> Result<()> {
    let login = cfg("login").unwrap_or_default();
    let account = convert::key(ACCOUNT, &cfg("userId").unwrap_or_default());
    let mut out = Emitter::new();
    for g in stored(GROUP)?
        .iter()
        .filter(|g| g.get("name").and_then(Value::as_str) == Some(login.as_str()))
    {
        out.relationship(convert::edge(
            "HAS",
            (&account, ACCOUNT),
            (&key_of(g), GROUP),
        ))?;
    }
    Ok(())
}

/// Groups with a slug, and the list endpoint for each (`org-slug` or `owner-slug`).
fn per_group(param: &str, path: &str) -> Result<(Vec<String>, Vec<String>)> {
    let slugs: Vec<String> = stored(GROUP)?
        .iter()
        .filter_map(|g| {
            g.get("slug")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(String::from)
        })
        .collect();
    let paths = slugs
        .iter()
        .map(|s| format!("{path}?{param}={}", enc(s)))
        .collect();
    Ok((slugs, paths))
}

fn warn_missing(what: &str, slugs: &[String]) {
    if !slugs.is_empty() {
        let msg = format!(
            "Could not fetch {what} from the following org slugs: {}. Please make sure to use personal API tokens with the right access permissions.",
            slugs.join(", ")
        );
        log::warn(&msg, &[]);
    }
}

pub fn fetch_pipelines() -> Result<()> {
    let (slugs, paths) = per_group("org-slug", "pipeline")?;
    let mut out = Emitter::new();
    let mut seen = HashSet::new();
    let mut missing = Vec::new();
    for (slug, items) in slugs.iter().zip(all_pages(&paths)?) {
        let Some(items) = items else {
            missing.push(slug.clone());
            continue;
        };
        for p in &items {
            if let Some(e) = convert::pipeline(p) {
                emit_once(&mut out, &mut seen, e)?;
            }
        }
    }
    warn_missing("pipelines", &missing);
    Ok(())
}

/// Children of each stored parent (workflows of pipelines, jobs of workflows), with the
/// parent HAS child edge. In an incremental run, a parent whose previous children `done`
/// says still stand has them re-emitted from the previous graph instead of fetched.
fn fetch_children(
    parent_type: &str,
    path: fn(&str) -> String,
    convert: fn(&Value) -> Option<Object>,
    child_type: &str,
    done: previous::Done,
) -> Result<()> {
    let mut parents = stored(parent_type)?;
    let mut out = Emitter::new();
    let (mut seen, mut edges) = (HashSet::new(), HashSet::new());
    if let Some(mut kept) = previous::Kept::open(parent_type, child_type) {
        let before = parents.len();
        let mut fetch = Vec::new();
        for parent in parents {
            let Some(children) = kept.take(&parent, done) else {
                fetch.push(parent);
                continue;
            };
            let kept_edges = kept.edges(&parent, &children);
            for child in children {
                emit_once(&mut out, &mut seen, child)?;
            }
            for edge in kept_edges {
                relate_once(&mut out, &mut edges, edge)?;
            }
        }
        log::typed(
            "info",
            "children taken from the previous graph",
            &[
                ("parents", before.into()),
                ("kept", (before - fetch.len()).into()),
                ("fetched", fetch.len().into()),
            ],
        );
        parents = fetch;
    }
    for chunk in parents.chunks(50) {
        let paths: Vec<String> = chunk
            .iter()
            .map(|p| path(p.get("id").and_then(Value::as_str).unwrap_or_default()))
            .collect();
        for (parent, items) in chunk.iter().zip(all_pages(&paths)?) {
            for item in items.unwrap_or_default() {
                let Some(child) = convert(&item) else {
                    continue;
                };
                let child_key = key_of(&child);
                emit_once(&mut out, &mut seen, child)?;
                relate_once(
                    &mut out,
                    &mut edges,
                    convert::edge(
                        "HAS",
                        (&key_of(parent), parent_type),
                        (&child_key, child_type),
                    ),
                )?;
            }
        }
    }
    Ok(())
}

/// What a project's answer means for the step.
#[derive(Debug, PartialEq)]
enum ProjectAnswer {
    Use,
    /// 403 or 404: the token may not read it, or it is gone; a warning.
    Skip,
    /// Anything else that is not a success (429 or 5xx after the retries, 401, …).
    Fail,
}

fn project_answer(status: u16) -> ProjectAnswer {
    match status {
        200..=299 => ProjectAnswer::Use,
        403 | 404 => ProjectAnswer::Skip,
        _ => ProjectAnswer::Fail,
    }
}

/// Each project once, however many pipelines name it. A project that answers 403 or 404
/// is a warning, and its pipelines keep no project edge; any other error status (429 or
/// 5xx once the retries are spent, …) fails the step, so its types are partial and
/// nothing of them is deleted, where skipping would drop a project that still exists.
pub fn fetch_projects() -> Result<()> {
    let pipelines = stored(PIPELINE)?;
    let mut by_slug: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in &pipelines {
        if let Some(slug) = p.get("slug").and_then(Value::as_str) {
            by_slug.entry(slug.to_string()).or_default().push(key_of(p));
        }
    }
    let slugs: Vec<&String> = by_slug.keys().collect();
    let reqs: Vec<Request> = slugs
        .iter()
        .map(|s| get(&format!("project/{}", enc(s))))
        .collect();
    let answers = http::fetch_all(&reqs, &Retry::default());
    let mut out = Emitter::new();
    let mut seen = HashSet::new();
    for (slug, answer) in slugs.iter().zip(answers) {
        let r = answer?;
        match project_answer(r.status) {
            ProjectAnswer::Use => {}
            ProjectAnswer::Skip => {
                log::warn(
                    "project could not be fetched; skipped",
                    &[
                        ("project", slug.as_str()),
                        ("status", &r.status.to_string()),
                    ],
                );
                continue;
            }
            ProjectAnswer::Fail => return Err(Error::provider_status(&r.url, r.status)),
        }
        let Some(project) = convert::project(&r.json()?) else {
            continue;
        };
        let project_key = key_of(&project);
        emit_once(&mut out, &mut seen, project)?;
        for pipeline in &by_slug[*slug] {
            out.relationship(convert::edge(
                "HAS",
                (&project_key, PROJECT),
                (pipeline, PIPELINE),
            ))?;
        }
    }
    Ok(())
}

pub fn fetch_project_vars() -> Result<()> {
    let projects = stored(PROJECT)?;
    let paths: Vec<String> = projects
        .iter()
        .map(|p| format!("project/{}/envvar", enc(raw(p, "slug").unwrap_or_default())))
        .collect();
    let mut out = Emitter::new();
    let (mut seen, mut edges) = (HashSet::new(), HashSet::new());
    for (project, vars) in projects.iter().zip(all_pages(&paths)?) {
        for v in vars.unwrap_or_default() {
            let Some(var) = convert::project_var(&v, project) else {
                continue;
            };
            let var_key = key_of(&var);
            emit_once(&mut out, &mut seen, var)?;
            relate_once(
                &mut out,
                &mut edges,
                convert::edge("HAS", (&key_of(project), PROJECT), (&var_key, PROJECT_VAR)),
            )?;
        }
    }
    Ok(())
}

pub fn group_projects() -> Result<()> {
    let mut out = Emitter::new();
    for p in stored(PROJECT)? {
        let Some(org) = p.get("organizationId").and_then(Value::as_str) else {
            continue;
        };
        let group = convert::key(GROUP, org);
        if graph::has_key(&group) {
            out.relationship(convert::edge(
                "HAS",
                (&group, GROUP),
                (&key_of(&p), PROJECT),
            ))?;
        }
    }
    Ok(())
}

pub fn fetch_contexts() -> Result<()> {
    let (slugs, paths) = per_group("owner-slug", "context")?;
    let mut contexts = Vec::new();
    let mut missing = Vec::new();
    for (slug, items) in slugs.iter().zip(all_pages(&paths)?) {
        match items {
            Some(items) => contexts.extend(items),
            None => missing.push(slug.clone()),
        }
    }
    warn_missing("contexts", &missing);
    // A context without a usable id has no key; leaving it out here also keeps the
    // restrictions and variables below aligned with their contexts.
    let (contexts, idless): (Vec<Value>, Vec<Value>) = contexts
        .into_iter()
        .partition(|c| convert::context(c).is_some());
    if !idless.is_empty() {
        log::warn(
            "skipping contexts without an id",
            &[("count", &idless.len().to_string())],
        );
    }
    let ids: Vec<String> = contexts
        .iter()
        .filter_map(|c| c.get("id").and_then(Value::as_str).map(String::from))
        .collect();
    let restrictions = all_pages(
        &ids.iter()
            .map(|id| format!("context/{}/restrictions", enc(id)))
            .collect::<Vec<_>>(),
    )?;
    let variables = all_pages(
        &ids.iter()
            .map(|id| format!("context/{id}/environment-variable"))
            .collect::<Vec<_>>(),
    )?;
    let mut out = Emitter::new();
    let (mut seen, mut edges) = (HashSet::new(), HashSet::new());
    for ((context, rules), vars) in contexts.iter().zip(restrictions).zip(variables) {
        let Some(entity) = convert::context(context) else {
            continue;
        };
        let context_key = key_of(&entity);
        emit_once(&mut out, &mut seen, entity)?;
        let projects: Vec<String> = rules
            .unwrap_or_default()
            .iter()
            .filter(|r| r.get("restriction_type").and_then(Value::as_str) == Some("project"))
            .filter_map(|r| {
                r.get("project_id")
                    .and_then(Value::as_str)
                    .map(|id| convert::key(PROJECT, id))
            })
            .filter(|k| graph::has_key(k))
            .collect();
        for v in vars.unwrap_or_default() {
            let Some(var) = convert::context_var(&v) else {
                continue;
            };
            let var_key = key_of(&var);
            emit_once(&mut out, &mut seen, var)?;
            relate_once(
                &mut out,
                &mut edges,
                convert::edge("HAS", (&context_key, CONTEXT), (&var_key, CONTEXT_VAR)),
            )?;
            for project in &projects {
                relate_once(
                    &mut out,
                    &mut edges,
                    convert::edge("USES", (project, PROJECT), (&var_key, CONTEXT_VAR)),
                )?;
            }
        }
    }
    Ok(())
}

pub fn fetch_users() -> Result<()> {
    let me = body(http::fetch(&get("me"), &Retry::default())?)?;
    let Some(user) = convert::user(&me) else {
        return Err(Error::Provider("me: no user id".into()));
    };
    let user_key = key_of(&user);
    let mut out = Emitter::new();
    out.entity(user)?;
    for g in stored(GROUP)? {
        out.relationship(convert::edge(
            "HAS",
            (&key_of(&g), GROUP),
            (&user_key, USER),
        ))?;
    }
    Ok(())
}

pub fn account_users() -> Result<()> {
    let account = convert::key(ACCOUNT, &cfg("userId").unwrap_or_default());
    let mut out = Emitter::new();
    for u in stored(USER)? {
        out.relationship(convert::edge(
            "HAS",
            (&account, ACCOUNT),
            (&key_of(&u), USER),
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{ProjectAnswer, project_answer};

    #[test]
    fn only_403_and_404_skip_a_project() {
        assert_eq!(project_answer(200), ProjectAnswer::Use);
        assert_eq!(project_answer(403), ProjectAnswer::Skip);
        assert_eq!(project_answer(404), ProjectAnswer::Skip);
        for status in [400, 401, 409, 429, 500, 502, 503, 504] {
            assert_eq!(project_answer(status), ProjectAnswer::Fail, "{status}");
        }
    }
}
