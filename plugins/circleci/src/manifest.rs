//! What the CircleCI plugin declares: config fields, steps and types, capabilities.

use crate::convert::*;
use corral_sdk::PluginManifest;
use corral_sdk::manifest::{entity, field, relationship as rel, step};

pub const FETCH_ACCOUNT: &str = "fetch-account";
pub const FETCH_GROUPS: &str = "fetch-user-groups";
pub const ACCOUNT_GROUPS: &str = "build-account-and-user-group-relationships";
pub const FETCH_PIPELINES: &str = "fetch-pipelines";
pub const FETCH_WORKFLOWS: &str = "fetch-pipeline-workflows";
pub const FETCH_JOBS: &str = "fetch-workflow-jobs";
pub const FETCH_PROJECTS: &str = "fetch-projects";
pub const FETCH_PROJECT_VARS: &str = "fetch-projects-env-variables";
pub const GROUP_PROJECTS: &str = "build-project-and-pipelines-relationships";
pub const FETCH_CONTEXTS: &str = "fetch-contexts";
pub const FETCH_USERS: &str = "fetch-users";
pub const ACCOUNT_USERS: &str = "build-account-and-user-relationships";

pub const DEFAULT_BASE_URL: &str = "https://circleci.com/api/v2/";

const CAPABILITIES: &str = r#"{
  "permissions": [
    { "effect": "ALLOW", "actions": ["http:GET"], "resources": ["{{config.baseUrl}}*"] },
    { "effect": "ALLOW", "actions": ["secret:Use"], "resources": ["secret:apiKey"],
      "condition": { "stringLike": { "http:url": "{{config.baseUrl}}*" } } },
    { "effect": "ALLOW", "actions": ["graph:EmitEntity", "graph:EmitRelationship", "graph:Read"],
      "resources": ["type:circleci_*"] }
  ],
  "limits": { "maxConcurrentRequests": 5 }
}"#;

pub fn manifest() -> PluginManifest {
    PluginManifest {
        id: "circleci".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        name: "CircleCI".into(),
        description:
            "Orgs, projects, pipelines, workflows, jobs, contexts and env-var names from CircleCI"
                .into(),
        config_fields: vec![
            field(
                "apiKey",
                true,
                false,
                "Personal API token (sent as `Circle-Token`)",
                None,
            ),
            field(
                "login",
                false,
                false,
                "CircleCI login: the account name",
                None,
            ),
            field(
                "userId",
                false,
                false,
                "CircleCI user id: the account key",
                None,
            ),
            field(
                "baseUrl",
                false,
                true,
                "API base of a CircleCI Server install, ending in /api/v2/",
                Some(DEFAULT_BASE_URL),
            ),
        ],
        steps: vec![
            step(
                FETCH_ACCOUNT,
                "Fetch Account",
                vec![entity("Account", ACCOUNT, "Account")],
                vec![],
                &[],
            ),
            step(
                FETCH_GROUPS,
                "Fetch User Groups",
                vec![entity("UserGroup", GROUP, "Group")],
                vec![],
                &[FETCH_ACCOUNT],
            ),
            step(
                ACCOUNT_GROUPS,
                "Build Account and User Group Relationships",
                vec![],
                vec![rel("HAS", ACCOUNT, GROUP)],
                &[FETCH_ACCOUNT, FETCH_GROUPS],
            ),
            step(
                FETCH_PIPELINES,
                "Fetch Pipelines",
                vec![entity("Pipeline", PIPELINE, "Configuration")],
                vec![],
                &[FETCH_GROUPS],
            ),
            step(
                FETCH_WORKFLOWS,
                "Fetch Pipeline Workflows",
                vec![entity("Pipeline Workflow", WORKFLOW, "Configuration")],
                vec![rel("HAS", PIPELINE, WORKFLOW)],
                &[FETCH_PIPELINES],
            ),
            step(
                FETCH_JOBS,
                "Fetch Workflow Jobs",
                vec![entity("Workflow Job", JOB, "Task")],
                vec![rel("HAS", WORKFLOW, JOB)],
                &[FETCH_WORKFLOWS],
            ),
            step(
                FETCH_PROJECTS,
                "Fetch Projects",
                vec![entity("Project", PROJECT, "Repository")],
                vec![rel("HAS", PROJECT, PIPELINE)],
                &[FETCH_PIPELINES],
            ),
            step(
                FETCH_PROJECT_VARS,
                "Fetch Project Environment Variables",
                vec![entity(
                    "Project Environment Variable",
                    PROJECT_VAR,
                    "Configuration",
                )],
                vec![rel("HAS", PROJECT, PROJECT_VAR)],
                &[FETCH_PROJECTS],
            ),
            step(
                GROUP_PROJECTS,
                "Build Project and Pipelines Relationships",
                vec![],
                vec![rel("HAS", GROUP, PROJECT)],
                &[FETCH_GROUPS, FETCH_PROJECTS],
            ),
            step(
                FETCH_CONTEXTS,
                "Fetch Contexts",
                vec![
                    entity("Context", CONTEXT, "Configuration"),
                    entity("Context Environment Variable", CONTEXT_VAR, "Configuration"),
                ],
                vec![
                    rel("HAS", CONTEXT, CONTEXT_VAR),
                    rel("USES", PROJECT, CONTEXT_VAR),
                ],
                &[FETCH_GROUPS, FETCH_PROJECTS],
            ),
            step(
                FETCH_USERS,
                "Fetch Users",
                vec![entity("User", USER, "User")],
                vec![rel("HAS", GROUP, USER)],
                &[FETCH_GROUPS],
            ),
            step(
                ACCOUNT_USERS,
                "Build Account and User Relationships",
                vec![],
                vec![rel("HAS", ACCOUNT, USER)],
                &[FETCH_ACCOUNT, FETCH_USERS],
            ),
        ],
        capabilities: CAPABILITIES.into(),
    }
}
