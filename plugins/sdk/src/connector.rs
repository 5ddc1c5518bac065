//! A connector declared once: what it is, its config fields, its capability request and
//! its steps, each step with its handler. [`export!`](crate::export) makes it the
//! component's `connector` export: the manifest is built from the declarations, and
//! `run-step` calls the handler of the step the host names.
//!
//! ```ignore
//! struct Acme;
//!
//! impl Connector for Acme {
//!     const ID: &'static str = "acme";
//!     const NAME: &'static str = "Acme";
//!     const DESCRIPTION: &'static str = "Devices from the Acme API";
//!
//!     fn config() -> Vec<Field> {
//!         vec![Field::text("apiUrl", "API base URL"), Field::secret("apiToken", "API token")]
//!     }
//!     fn capabilities() -> Capabilities {
//!         Capabilities::new()
//!             .http(&["GET"], "{{config.apiUrl}}*")
//!             .secret("apiToken", "{{config.apiUrl}}*")
//!             .graph("type:acme_*")
//!     }
//!     fn steps() -> Vec<Step> {
//!         vec![Step::new("fetch-devices", "Fetch Devices", fetch_devices)
//!             .entity("Device", "acme_device", "Device")]
//!     }
//! }
//!
//! corral_sdk::export!(Acme);
//! ```

use crate::bindings::exports::corral::integration::connector as wit;
use crate::capabilities::Capabilities;
use crate::error::{Error, Result};
use crate::manifest;

/// What a connector declares; everything but its identity, capabilities and steps has
/// a default.
pub trait Connector {
    /// The plugin id operators name in `corral.toml` (`plugin = "acme"`).
    const ID: &'static str;
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    /// The version; `None` is the crate's own (`CARGO_PKG_VERSION`).
    const VERSION: Option<&'static str> = None;

    fn config() -> Vec<Field> {
        Vec::new()
    }

    fn capabilities() -> Capabilities;

    fn steps() -> Vec<Step>;

    /// Checks config and credentials, usually with one cheap authenticated request.
    fn validate() -> Result<()> {
        Ok(())
    }

    /// Steps to skip for this config (say, ones that need an optional credential).
    fn disabled_steps() -> Vec<String> {
        Vec::new()
    }
}

/// A config field of the instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    name: String,
    secret: bool,
    optional: bool,
    description: String,
    default: Option<String>,
}

impl Field {
    /// A plain field, readable with `config::get`.
    pub fn text(name: &str, description: &str) -> Self {
        Field {
            name: name.into(),
            secret: false,
            optional: false,
            description: description.into(),
            default: None,
        }
    }

    /// A secret field: never readable, usable only by reference in a request.
    pub fn secret(name: &str, description: &str) -> Self {
        Field {
            secret: true,
            ..Field::text(name, description)
        }
    }

    /// An instance may leave it unset.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// The value used when the instance does not set it.
    ///
    /// # Panics
    /// On a secret field: a secret has no default (the manifest read fails, saying so).
    pub fn default(mut self, value: &str) -> Self {
        assert!(
            !self.secret,
            "Field::default on {}: a secret field has no default",
            self.name
        );
        self.default = Some(value.into());
        self
    }

    fn declared(self) -> wit::ConfigField {
        wit::ConfigField {
            name: self.name,
            secret: self.secret,
            optional: self.optional,
            description: self.description,
            default_value: self.default,
        }
    }
}

/// Whether the instance turned config field `name` on: its value is `true` (any case,
/// spaces around it ignored). Unset, a secret, or anything else is off.
pub fn is_on(name: &str) -> bool {
    crate::config::get(name)
        .ok()
        .flatten()
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// A step: its declared types and dependencies, and the function that runs it.
pub struct Step {
    id: String,
    name: String,
    entities: Vec<wit::EntityType>,
    relationships: Vec<wit::RelationshipType>,
    depends_on: Vec<String>,
    run: fn() -> Result<()>,
}

impl Step {
    pub fn new(id: &str, name: &str, run: fn() -> Result<()>) -> Self {
        Step {
            id: id.into(),
            name: name.into(),
            entities: Vec::new(),
            relationships: Vec::new(),
            depends_on: Vec::new(),
            run,
        }
    }

    /// Declares an entity type: the docs' resource name, `_type` and `_class`.
    pub fn entity(mut self, resource: &str, type_name: &str, class: &str) -> Self {
        self.entities
            .push(manifest::entity(resource, type_name, class));
        self
    }

    /// Declares a direct relationship, its `_type` by JupiterOne's formula.
    pub fn relationship(mut self, class: &str, source: &str, target: &str) -> Self {
        self.relationships
            .push(manifest::relationship(class, source, target));
        self
    }

    /// Declares a mapped relationship (to entities another integration owns).
    pub fn mapped(mut self, type_name: &str, class: &str, source: &str, target: &str) -> Self {
        self.relationships
            .push(manifest::mapped(type_name, class, source, target));
        self
    }

    /// Runs after these steps.
    pub fn after(mut self, steps: &[&str]) -> Self {
        self.depends_on.extend(steps.iter().map(|s| s.to_string()));
        self
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn declared(self) -> wit::Step {
        wit::Step {
            id: self.id,
            name: self.name,
            entities: self.entities,
            relationships: self.relationships,
            depends_on: self.depends_on,
        }
    }
}

/// The SDK and WIT versions a component was built with, kept in its `corral:sdk` custom
/// section so a host can tell without running it.
pub const STAMP: &str = concat!(
    "corral-sdk ",
    env!("CARGO_PKG_VERSION"),
    "; corral:integration@0.2.0"
);

const fn stamp_bytes() -> [u8; STAMP.len()] {
    let mut out = [0u8; STAMP.len()];
    let bytes = STAMP.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

#[cfg(target_arch = "wasm32")]
#[used]
#[unsafe(link_section = "corral:sdk")]
static STAMP_SECTION: [u8; STAMP.len()] = stamp_bytes();

/// Keeps the stamp's section in the component (the export refers to it).
#[doc(hidden)]
pub fn keep_stamp() {
    #[cfg(target_arch = "wasm32")]
    std::hint::black_box(&STAMP_SECTION);
    #[cfg(not(target_arch = "wasm32"))]
    std::hint::black_box(stamp_bytes());
}

/// The manifest `C` declares (`crate_version` is the connector crate's).
#[doc(hidden)]
pub fn manifest_of<C: Connector>(crate_version: &str) -> wit::PluginManifest {
    keep_stamp();
    wit::PluginManifest {
        id: C::ID.into(),
        version: C::VERSION.unwrap_or(crate_version).into(),
        name: C::NAME.into(),
        description: C::DESCRIPTION.into(),
        config_fields: C::config().into_iter().map(Field::declared).collect(),
        steps: C::steps().into_iter().map(Step::declared).collect(),
        capabilities: C::capabilities().to_json(),
    }
}

/// Runs the step `id` of `C`. What an emitter could not send when it was dropped is the
/// step's error if the handler itself succeeded.
#[doc(hidden)]
pub fn run_step_of<C: Connector>(id: &str) -> Result<()> {
    crate::graph::take_deferred_error();
    let step = C::steps()
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| Error::Config(format!("unknown step {id}")))?;
    with_deferred(step.run)
}

/// Runs `f`; an emitter's failure while dropped is its error if `f` itself succeeded.
#[doc(hidden)]
pub fn with_deferred(f: impl FnOnce() -> Result<()>) -> Result<()> {
    crate::graph::take_deferred_error();
    let outcome = f();
    match (outcome, crate::graph::take_deferred_error()) {
        (Ok(()), Some(e)) => Err(e),
        (outcome, _) => outcome,
    }
}

/// Makes `$ty` (a [`Connector`]) the component's `connector` export.
#[macro_export]
macro_rules! export {
    ($ty:ty) => {
        #[doc(hidden)]
        pub struct __CorralExport;

        impl $crate::Guest for __CorralExport {
            fn manifest() -> $crate::PluginManifest {
                $crate::connector::manifest_of::<$ty>(env!("CARGO_PKG_VERSION"))
            }

            fn validate() -> ::core::result::Result<(), $crate::StepError> {
                $crate::connector::with_deferred(<$ty as $crate::connector::Connector>::validate)
                    .map_err(::core::convert::Into::into)
            }

            fn disabled_steps() -> ::std::vec::Vec<::std::string::String> {
                <$ty as $crate::connector::Connector>::disabled_steps()
            }

            fn run_step(step_id: ::std::string::String) -> ::core::result::Result<(), $crate::StepError> {
                $crate::connector::run_step_of::<$ty>(&step_id).map_err(::core::convert::Into::into)
            }
        }

        // Exported only in the component: the export names (`corral:integration/…`) are
        // not valid symbols for a native shared library, where converters are unit-tested.
        #[cfg(target_arch = "wasm32")]
        $crate::export_connector!(__CorralExport with_types_in $crate::bindings);
    };
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::capabilities::Limit;

    struct Acme;

    fn ok() -> Result<()> {
        Ok(())
    }

    fn fails() -> Result<()> {
        Err(Error::Provider("down".into()))
    }

    impl Connector for Acme {
        const ID: &'static str = "acme";
        const NAME: &'static str = "Acme";
        const DESCRIPTION: &'static str = "Devices from Acme";

        fn config() -> Vec<Field> {
            vec![
                Field::text("apiUrl", "API URL").default("https://acme.test/"),
                Field::secret("apiToken", "token"),
                Field::text("site", "a site").optional(),
            ]
        }

        fn capabilities() -> Capabilities {
            Capabilities::new()
                .graph("type:acme_*")
                .limit(Limit::MaxConcurrentSteps, 2.0)
        }

        fn steps() -> Vec<Step> {
            vec![
                Step::new("fetch-account", "Fetch Account", ok).entity(
                    "Account",
                    "acme_account",
                    "Account",
                ),
                Step::new("fetch-devices", "Fetch Devices", fails)
                    .entity("Device", "acme_device", "Device")
                    .relationship("HAS", "acme_account", "acme_device")
                    .after(&["fetch-account"]),
            ]
        }
    }

    #[test]
    fn the_manifest_is_built_from_the_declarations() {
        let m = manifest_of::<Acme>("1.2.3");
        assert_eq!((m.id.as_str(), m.version.as_str()), ("acme", "1.2.3"));
        let fields: Vec<_> = m
            .config_fields
            .iter()
            .map(|f| {
                (
                    f.name.as_str(),
                    f.secret,
                    f.optional,
                    f.default_value.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            fields,
            [
                ("apiUrl", false, false, Some("https://acme.test/")),
                ("apiToken", true, false, None),
                ("site", false, true, None),
            ]
        );
        assert_eq!(m.steps.len(), 2);
        assert_eq!(m.steps[1].depends_on, ["fetch-account"]);
        assert_eq!(
            m.steps[1].relationships[0].type_name,
            "acme_account_has_device"
        );
        assert!(m.capabilities.contains(r#""maxConcurrentSteps":2"#));
        assert!(STAMP.ends_with("; corral:integration@0.2.0"));
    }

    #[test]
    #[should_panic(expected = "a secret field has no default")]
    fn a_secret_field_has_no_default() {
        let _ = Field::secret("apiToken", "token").default("x");
    }

    #[test]
    fn the_stamp_names_the_wit_the_bindings_are_built_from() {
        let wit = include_str!("../../../wit/0.2.0/corral.wit");
        let package = STAMP.rsplit("; ").next().unwrap();
        assert!(wit.contains(&format!("package {package};")), "{STAMP}");
    }

    #[test]
    fn run_step_calls_the_named_handler_and_refuses_an_unknown_one() {
        assert_eq!(run_step_of::<Acme>("fetch-account"), Ok(()));
        assert_eq!(
            run_step_of::<Acme>("fetch-devices"),
            Err(Error::Provider("down".into()))
        );
        assert_eq!(
            run_step_of::<Acme>("nope"),
            Err(Error::Config("unknown step nope".into()))
        );
    }
}
