//! CircleCI API v2 objects to JupiterOne entities and relationships (the reference
//! integration graph-circleci v1.2.0; deviations in this crate's README).

use corral_sdk::entity::{End, EntityBuilder, Object, Properties, RelationshipBuilder};
use corral_sdk::props::{first_readable, plain, readable, time_ms as ms};
use corral_sdk::standard;

/// A usable text field: not missing, `""`, blank or `null`. Ids and the env-var names
/// that key their entities must be usable (a key built from an empty one would be shared
/// by every such record), and names fall back when they are not.
fn text(v: &Value, field: &str) -> Option<String> {
    readable(v.get(field))
}
use serde_json::{Value, json};

pub const ACCOUNT: &str = "circleci_account";
pub const GROUP: &str = "circleci_user_group";
pub const PIPELINE: &str = "circleci_pipeline";
pub const WORKFLOW: &str = "circleci_workflow";
pub const JOB: &str = "circleci_job";
pub const PROJECT: &str = "circleci_project";
pub const PROJECT_VAR: &str = "circleci_project_environment_variable";
pub const CONTEXT: &str = "circleci_context";
pub const CONTEXT_VAR: &str = "circleci_context_environment_variable";
pub const USER: &str = "circleci_user";
/// The account's `vendor` (the data model's `Account` requires one).
pub const VENDOR: &str = "CircleCI";

pub fn key(type_name: &str, id: &str) -> String {
    format!("{type_name}:{id}")
}

/// The account, named by the configured login (by the user id if that is blank).
pub fn account(user_id: &str, login: &str) -> Object {
    let name = if login.trim().is_empty() {
        user_id
    } else {
        login
    };
    EntityBuilder::new(key(ACCOUNT, user_id), ACCOUNT, "Account")
        .prop("id", user_id)
        .prop("name", name)
        .prop("displayName", name)
        .prop("vendor", VENDOR)
        .raw_data(json!({ "login": login, "id": user_id }))
        .build()
}

/// A collaboration (org), named by its `name`, else its slug, else its id.
pub fn group(c: &Value) -> Option<Object> {
    let id = text(c, "id")?;
    let name = first_readable(c, &["name", "slug"]).unwrap_or_else(|| id.clone());
    Some(
        EntityBuilder::new(key(GROUP, &id), GROUP, "Group")
            .prop("id", id)
            .prop("name", name)
            .opt("slug", plain(c, "slug"))
            .opt("vcstype", plain(c, "vcs_type"))
            .raw_data(c.clone())
            .build(),
    )
}

pub fn pipeline(p: &Value) -> Option<Object> {
    let id = text(p, "id")?;
    Some(
        EntityBuilder::new(key(PIPELINE, &id), PIPELINE, "Configuration")
            .prop("id", id.clone())
            .prop("name", id)
            .opt("slug", plain(p, "project_slug"))
            .opt("state", plain(p, "state"))
            .opt("createdOn", ms(p, "created_at"))
            .opt("updatedOn", ms(p, "updated_at"))
            .raw_data(p.clone())
            .build(),
    )
}

pub fn workflow(w: &Value) -> Option<Object> {
    let id = text(w, "id")?;
    let mut e = EntityBuilder::new(key(WORKFLOW, &id), WORKFLOW, "Configuration")
        .prop("id", id.clone())
        .prop("name", text(w, "name").unwrap_or(id))
        .opt("createdOn", ms(w, "created_at"))
        .opt("stoppedOn", ms(w, "stopped_at"));
    for (prop, field) in [
        ("pipelineId", "pipeline_id"),
        ("canceledBy", "canceled_by"),
        ("projectSlug", "project_slug"),
        ("erroredBy", "errored_by"),
        ("tag", "tag"),
        ("status", "status"),
        ("startedBy", "started_by"),
        ("pipelineNumber", "pipeline_number"),
    ] {
        e = e.opt(prop, plain(w, field));
    }
    Some(e.raw_data(w.clone()).build())
}

pub fn job(j: &Value) -> Option<Object> {
    let id = text(j, "id")?;
    let mut e = EntityBuilder::new(key(JOB, &id), JOB, "Task")
        .prop("id", id.clone())
        .prop("name", text(j, "name").unwrap_or(id))
        .opt("startedOn", ms(j, "started_at"))
        .opt("stoppedOn", ms(j, "stopped_at"));
    for (prop, field) in [
        ("canceledBy", "canceled_by"),
        ("jobNumber", "job_number"),
        ("approvedBy", "approved_by"),
        ("projectSlug", "project_slug"),
        ("status", "status"),
        ("type", "type"),
        ("approvalRequestId", "approval_request_id"),
    ] {
        e = e.opt(prop, plain(j, field));
    }
    Some(e.raw_data(j.clone()).build())
}

/// A project, named by its `name`, else its slug, else its id.
pub fn project(p: &Value) -> Option<Object> {
    let id = text(p, "id")?;
    let name = first_readable(p, &["name", "slug"]).unwrap_or_else(|| id.clone());
    Some(
        EntityBuilder::new(key(PROJECT, &id), PROJECT, "Repository")
            .prop("id", id.clone())
            .prop("name", name)
            .opt("organizationName", plain(p, "organization_name"))
            .opt("organizationId", plain(p, "organization_id"))
            .raw_data(p.clone())
            .build(),
    )
}

/// A project environment variable: the name and when, never the value.
pub fn project_var(v: &Value, project: &Object) -> Option<Object> {
    let name = text(v, "name")?;
    Some(
        EntityBuilder::new(key(PROJECT_VAR, &name), PROJECT_VAR, "Configuration")
            .prop("name", name.clone())
            .opt("createdOn", ms(v, "created_at"))
            .opt("projectId", project.get("id").cloned())
            .opt(
                "projectSlug",
                corral_sdk::entity::raw_data(project)
                    .and_then(|r| r.get("slug"))
                    .cloned(),
            )
            .raw_data(json!({ "name": name, "created_at": v.get("created_at") }))
            .build(),
    )
}

pub fn context(c: &Value) -> Option<Object> {
    let id = text(c, "id")?;
    Some(
        EntityBuilder::new(key(CONTEXT, &id), CONTEXT, "Configuration")
            .prop("id", id.clone())
            .prop("name", text(c, "name").unwrap_or(id))
            .opt("createdOn", ms(c, "created_at"))
            .raw_data(c.clone())
            .build(),
    )
}

pub fn context_var(v: &Value) -> Option<Object> {
    let variable = text(v, "variable")?;
    let mut raw = v.clone();
    if let Some(m) = raw.as_object_mut() {
        m.remove("value");
    }
    Some(
        EntityBuilder::new(key(CONTEXT_VAR, &variable), CONTEXT_VAR, "Configuration")
            .prop("name", variable.clone())
            .prop("variable", variable)
            .opt("contextId", plain(v, "context_id"))
            .opt("createdOn", ms(v, "created_at"))
            .opt("updatedOn", ms(v, "updated_at"))
            .raw_data(raw)
            .build(),
    )
}

/// The `/me` user, named by its login, else its full name, else its id; `username`
/// stays the login (or the id), as a list (the data model's `User.username`). The other
/// properties `User` requires: `firstName`/`lastName` split from the full `name`,
/// `shortLoginId` the login, `email` `null` (`/me` has none); `null` where CircleCI has
/// nothing.
pub fn user(me: &Value) -> Option<Object> {
    let id = text(me, "id")?;
    let login = text(me, "login").unwrap_or_else(|| id.clone());
    let name = first_readable(me, &["login", "name"]).unwrap_or_else(|| id.clone());
    let (first, last) = text(me, "name")
        .map(|n| standard::split_name(&n))
        .unwrap_or_default();
    Some(
        EntityBuilder::new(key(USER, &id), USER, "User")
            .prop("id", id.clone())
            .prop("name", name)
            .prop("username", standard::string_list([login.as_str()]))
            .prop("shortLoginId", standard::string_list(text(me, "login")))
            .prop("firstName", standard::or_null(first))
            .prop("lastName", standard::or_null(last))
            .prop("email", Value::Null)
            .prop("active", true)
            .raw_data(json!({ "name": me.get("name"), "login": login, "id": id }))
            .build(),
    )
}

/// A direct relationship between two stored keys of the given types.
pub fn edge(class: &str, from: (&str, &str), to: (&str, &str)) -> Object {
    RelationshipBuilder::direct(
        class,
        End {
            key: from.0,
            entity_type: from.1,
        },
        End {
            key: to.0,
            entity_type: to.1,
        },
    )
    .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_is_named_by_its_id() {
        let p = json!({ "id": "p-1", "project_slug": "gh/o/r", "state": "created", "created_at": "2024-01-02T03:04:05.678Z" });
        let e = pipeline(&p).unwrap();
        assert_eq!(e["_key"], "circleci_pipeline:p-1");
        assert_eq!(
            (e["name"].as_str(), e["displayName"].as_str()),
            (Some("p-1"), Some("p-1"))
        );
        assert_eq!(e["slug"], "gh/o/r");
        assert_eq!(e["createdOn"], 1_704_164_645_678i64);
    }

    #[test]
    fn env_var_values_never_reach_an_entity() {
        let project = project(&json!({ "id": "pr-1", "slug": "gh/o/r", "name": "r" })).unwrap();
        let v = project_var(&json!({ "name": "NPM_TOKEN", "value": "xxxxabcd", "created_at": "2024-01-01T00:00:00Z" }), &project).unwrap();
        assert_eq!(v["_key"], "circleci_project_environment_variable:NPM_TOKEN");
        assert_eq!(
            (v["projectId"].as_str(), v["projectSlug"].as_str()),
            (Some("pr-1"), Some("gh/o/r"))
        );
        assert!(!Value::Object(v).to_string().contains("xxxxabcd"));
        let c =
            context_var(&json!({ "variable": "AWS_KEY", "context_id": "c-1", "value": "leak" }))
                .unwrap();
        assert_eq!(
            (c["name"].as_str(), c["variable"].as_str()),
            (Some("AWS_KEY"), Some("AWS_KEY"))
        );
        assert!(!Value::Object(c).to_string().contains("leak"));
    }

    #[test]
    fn user_and_group_shapes() {
        let u = user(&json!({ "id": "u-1", "login": "octocat", "name": "The Octocat" })).unwrap();
        assert_eq!(
            (u["name"].as_str(), u["active"].as_bool()),
            (Some("octocat"), Some(true))
        );
        assert_eq!(
            u["username"],
            json!(["octocat"]),
            "a list in the data model"
        );
        let g =
            group(&json!({ "id": "g-1", "name": "org", "slug": "gh/org", "vcs_type": "github" }))
                .unwrap();
        assert_eq!(g["vcstype"], "github");
        let r = edge(
            "USES",
            ("circleci_project:p", PROJECT),
            ("circleci_context_environment_variable:V", CONTEXT_VAR),
        );
        assert_eq!(
            r["_type"],
            "circleci_project_uses_context_environment_variable"
        );
        assert_eq!(
            r["_key"],
            "circleci_project:p|uses|circleci_context_environment_variable:V"
        );
    }

    #[test]
    fn user_and_account_have_the_standard_properties() {
        let u = user(&json!({ "id": "u-1", "login": "octocat", "name": "The Octo Cat" })).unwrap();
        assert_eq!(
            (u["firstName"].as_str(), u["lastName"].as_str()),
            (Some("The"), Some("Octo Cat"))
        );
        assert_eq!(u["shortLoginId"], json!(["octocat"]));
        assert_eq!(u["email"], Value::Null, "/me has no e-mail");
        for blank in [json!(""), json!(" "), Value::Null] {
            let u = user(&json!({ "id": "u-1", "login": blank, "name": blank })).unwrap();
            for f in ["firstName", "lastName", "email", "shortLoginId"] {
                assert_eq!(u[f], Value::Null, "{f}");
            }
            assert_eq!(u["username"], json!(["u-1"]), "the id, as before");
        }
        let single = user(&json!({ "id": "u-1", "login": "o", "name": "Octocat" })).unwrap();
        assert_eq!(
            (single["firstName"].as_str(), single["lastName"].clone()),
            (Some("Octocat"), Value::Null)
        );
        let a = account("b1b6e8a6-0000-4000-8000-00000000c1c1", "octocat");
        assert_eq!(a["vendor"], "CircleCI");
    }

    /// Issue 12 (the host's property rules): an over-long name falls through to the next
    /// name; an unparsable (non-ASCII) time and an over-long field are left out; the
    /// record is kept.
    #[test]
    fn fields_the_host_would_reject_leave_the_record_whole() {
        corral_sdk::log::take_captured();
        let long = "p".repeat(4097);
        let p = json!({ "id": "pr-1", "name": long, "slug": "gh/o/r" });
        let e = project(&p).unwrap();
        assert_eq!(
            (e["name"].as_str(), e["displayName"].as_str()),
            (Some("gh/o/r"), Some("gh/o/r"))
        );
        let p = json!({ "id": "p-1", "project_slug": long, "state": "created",
            "created_at": "2024-01-0é", "updated_at": "２０２４-０１-０１T00:00:00Z" });
        let e = pipeline(&p).unwrap();
        assert_eq!(e["_key"], "circleci_pipeline:p-1");
        for gone in ["slug", "createdOn", "updatedOn"] {
            assert!(!e.contains_key(gone), "{gone}");
        }
        assert_eq!(e["state"], "created");
        let w = corral_sdk::log::take_captured();
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(
            (w[0].field("key"), w[0].field("property")),
            (Some("circleci_pipeline:p-1"), Some("slug"))
        );
    }

    #[test]
    fn records_without_a_name_fall_back_to_slug_or_id() {
        let named = |e: Object| {
            assert_eq!(e["displayName"], e["name"]);
            e["name"].as_str().unwrap().to_string()
        };
        for blank in [json!(""), json!("  "), Value::Null] {
            let g = json!({ "id": "g-1", "name": blank, "slug": "gh/org", "vcs_type": "github" });
            assert_eq!(named(group(&g).unwrap()), "gh/org", "group name {blank}");
            let g = json!({ "id": "g-1", "name": blank, "slug": blank });
            assert_eq!(named(group(&g).unwrap()), "g-1");
            let p = json!({ "id": "pr-1", "name": blank, "slug": "gh/o/r" });
            assert_eq!(
                named(project(&p).unwrap()),
                "gh/o/r",
                "project name {blank}"
            );
            let p = json!({ "id": "pr-1", "name": blank });
            assert_eq!(named(project(&p).unwrap()), "pr-1");
            let w = json!({ "id": "w-1", "name": blank, "pipeline_id": "p-1" });
            assert_eq!(named(workflow(&w).unwrap()), "w-1");
            let j = json!({ "id": "j-1", "name": blank, "job_number": 3 });
            assert_eq!(named(job(&j).unwrap()), "j-1");
            let c = json!({ "id": "c-1", "name": blank });
            assert_eq!(named(context(&c).unwrap()), "c-1");
            let u = user(&json!({ "id": "u-1", "login": blank, "name": "The Octocat" })).unwrap();
            assert_eq!(u["username"], json!(["u-1"]));
            assert_eq!(named(u), "The Octocat");
            let u = user(&json!({ "id": "u-1", "login": blank, "name": blank })).unwrap();
            assert_eq!(named(u), "u-1");
            let a = account(
                "b1b6e8a6-0000-4000-8000-00000000c1c1",
                blank.as_str().unwrap_or(""),
            );
            assert_eq!(named(a), "b1b6e8a6-0000-4000-8000-00000000c1c1");
        }
    }

    #[test]
    fn records_without_an_id_or_variable_name_get_no_shared_key() {
        let project = project(&json!({ "id": "pr-1", "slug": "gh/o/r", "name": "r" })).unwrap();
        for blank in [json!(""), json!("  "), Value::Null] {
            assert!(group(&json!({ "id": blank, "name": "org" })).is_none());
            assert!(pipeline(&json!({ "id": blank })).is_none());
            assert!(workflow(&json!({ "id": blank, "name": "w" })).is_none());
            assert!(job(&json!({ "id": blank, "name": "j" })).is_none());
            assert!(self::project(&json!({ "id": blank, "name": "r" })).is_none());
            assert!(context(&json!({ "id": blank, "name": "c" })).is_none());
            assert!(user(&json!({ "id": blank, "login": "o" })).is_none());
            assert!(project_var(&json!({ "name": blank }), &project).is_none());
            assert!(context_var(&json!({ "variable": blank })).is_none());
        }
    }

    /// The recorded samples, when `../shared` is beside the project.
    #[test]
    fn samples_convert() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/providers/samples/circleci");
        let read = |f: &str| -> Option<Value> {
            serde_json::from_str(&std::fs::read_to_string(dir.join(f)).ok()?).ok()
        };
        let (Some(pipelines), Some(workflows), Some(jobs), Some(proj), Some(vars)) = (
            read("pipelines.json"),
            read("pipeline-workflows.json"),
            read("workflow-jobs.json"),
            read("project.json"),
            read("project-envvar.json"),
        ) else {
            eprintln!("skipped: {} is absent", dir.display());
            return;
        };
        assert_eq!(
            pipelines["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(pipeline)
                .count(),
            20
        );
        assert!(
            workflows["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|w| workflow(w).is_some())
        );
        assert!(
            jobs["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|j| job(j).is_some())
        );
        let p = project(&proj).unwrap();
        for v in vars["items"].as_array().unwrap() {
            let e = project_var(v, &p).unwrap();
            assert!(
                !Value::Object(e).to_string().contains("xxxx"),
                "a masked value was stored"
            );
        }
    }
}
