//! What the CircleCI plugin declares: config fields, steps with their handlers and
//! types, requested capabilities.

use crate::convert::*;
use crate::steps;
use corral_sdk::Result;
use corral_sdk::capabilities::{Capabilities, Limit};
use corral_sdk::connector::{Connector, Field, Step};

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

pub struct CircleCi;

impl Connector for CircleCi {
    const ID: &'static str = "circleci";
    const NAME: &'static str = "CircleCI";
    const DESCRIPTION: &'static str =
        "Orgs, projects, pipelines, workflows, jobs, contexts and env-var names from CircleCI";

    fn config() -> Vec<Field> {
        vec![
            Field::secret("apiKey", "Personal API token (sent as `Circle-Token`)"),
            Field::text("login", "CircleCI login: the account name"),
            Field::text("userId", "CircleCI user id: the account key"),
            Field::text(
                "baseUrl",
                "API base of a CircleCI Server install, ending in /api/v2/",
            )
            .optional()
            .default(DEFAULT_BASE_URL),
            Field::text(
                "incremental",
                "\"true\": finished workflows of an unchanged pipeline, and jobs of a finished workflow, are taken from the previous graph, not fetched again",
            )
            .optional()
            .default("false"),
        ]
    }

    fn capabilities() -> Capabilities {
        Capabilities::new()
            .http(&["GET"], "{{config.baseUrl}}*")
            .secret("apiKey", "{{config.baseUrl}}*")
            .graph("type:circleci_*")
            .limit(Limit::MaxConcurrentRequests, 5.0)
            // No published figure: the host's default rate, shared by the instances of one
            // CircleCI user of one API (every tenant reaches the one host `circleci.com`;
            // the API is in the key so an instance pointed elsewhere cannot reach it).
            .limit(Limit::RequestsPerMinute, 1_200.0)
            .quota_key("circleci:{{config.baseUrl}}{{config.userId}}")
    }

    fn steps() -> Vec<Step> {
        vec![
            Step::new(FETCH_ACCOUNT, "Fetch Account", steps::fetch_account)
                .entity("Account", ACCOUNT, "Account"),
            Step::new(FETCH_GROUPS, "Fetch User Groups", steps::fetch_groups)
                .entity("UserGroup", GROUP, "Group")
                .after(&[FETCH_ACCOUNT]),
            Step::new(
                ACCOUNT_GROUPS,
                "Build Account and User Group Relationships",
                steps::account_groups,
            )
            .relationship("HAS", ACCOUNT, GROUP)
            .after(&[FETCH_ACCOUNT, FETCH_GROUPS]),
            Step::new(FETCH_PIPELINES, "Fetch Pipelines", steps::fetch_pipelines)
                .entity("Pipeline", PIPELINE, "Configuration")
                .after(&[FETCH_GROUPS]),
            Step::new(
                FETCH_WORKFLOWS,
                "Fetch Pipeline Workflows",
                steps::fetch_workflows,
            )
            .entity("Pipeline Workflow", WORKFLOW, "Configuration")
            .relationship("HAS", PIPELINE, WORKFLOW)
            .after(&[FETCH_PIPELINES]),
            Step::new(FETCH_JOBS, "Fetch Workflow Jobs", steps::fetch_jobs)
                .entity("Workflow Job", JOB, "Task")
                .relationship("HAS", WORKFLOW, JOB)
                .after(&[FETCH_WORKFLOWS]),
            Step::new(FETCH_PROJECTS, "Fetch Projects", steps::fetch_projects)
                .entity("Project", PROJECT, "Repository")
                .relationship("HAS", PROJECT, PIPELINE)
                .after(&[FETCH_PIPELINES]),
            Step::new(
                FETCH_PROJECT_VARS,
                "Fetch Project Environment Variables",
                steps::fetch_project_vars,
            )
            .entity("Project Environment Variable", PROJECT_VAR, "Configuration")
            .relationship("HAS", PROJECT, PROJECT_VAR)
            .after(&[FETCH_PROJECTS]),
            Step::new(
                GROUP_PROJECTS,
                "Build Project and Pipelines Relationships",
                steps::group_projects,
            )
            .relationship("HAS", GROUP, PROJECT)
            .after(&[FETCH_GROUPS, FETCH_PROJECTS]),
            Step::new(FETCH_CONTEXTS, "Fetch Contexts", steps::fetch_contexts)
                .entity("Context", CONTEXT, "Configuration")
                .entity("Context Environment Variable", CONTEXT_VAR, "Configuration")
                .relationship("HAS", CONTEXT, CONTEXT_VAR)
                .relationship("USES", PROJECT, CONTEXT_VAR)
                .after(&[FETCH_GROUPS, FETCH_PROJECTS]),
            Step::new(FETCH_USERS, "Fetch Users", steps::fetch_users)
                .entity("User", USER, "User")
                .relationship("HAS", GROUP, USER)
                .after(&[FETCH_GROUPS]),
            Step::new(
                ACCOUNT_USERS,
                "Build Account and User Relationships",
                steps::account_users,
            )
            .relationship("HAS", ACCOUNT, USER)
            .after(&[FETCH_ACCOUNT, FETCH_USERS]),
        ]
    }

    fn validate() -> Result<()> {
        steps::validate()
    }
}
