//! The `connector` export, the same in every version so far: where a component keeps
//! it (found once per loaded plugin) and its functions in one instance.

use super::Version;
use crate::capabilities::StepCtx;
use wasmtime::Store;
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentType, Func, Instance, InstancePre, Lift, Lower,
    TypedFunc,
};

/// A guest's step error: its kind, and the guest's message.
#[derive(Debug, Clone, PartialEq, Eq, ComponentType, Lift, Lower)]
#[component(variant)]
pub enum StepError {
    /// Credentials were refused by the provider.
    #[component(name = "authentication")]
    Authentication(String),
    /// The instance config is missing or malformed.
    #[component(name = "config")]
    Config(String),
    /// The provider failed or answered garbage.
    #[component(name = "provider")]
    Provider(String),
    #[component(name = "other")]
    Other(String),
}

type Outcome = (Result<(), StepError>,);

/// Where a component keeps its connector's functions.
#[derive(Clone)]
struct Exports {
    manifest: ComponentExportIndex,
    validate: ComponentExportIndex,
    disabled_steps: ComponentExportIndex,
    run_step: ComponentExportIndex,
}

/// A linked component, ready to instantiate, with its connector export found.
#[derive(Clone)]
pub struct GuestPre {
    pub pre: InstancePre<StepCtx>,
    pub version: Version,
    exports: Exports,
}

impl GuestPre {
    /// Finds the connector a linked component exports; the error names what is missing.
    pub fn new(pre: InstancePre<StepCtx>) -> Result<Self, String> {
        let component = pre.component();
        let version = Version::of(component).ok_or_else(|| {
            format!(
                "does not export corral:integration/connector (this host offers {})",
                super::offered()
            )
        })?;
        let exports = find_exports(component, version)?;
        Ok(GuestPre {
            pre,
            version,
            exports,
        })
    }

    pub fn engine(&self) -> &wasmtime::Engine {
        self.pre.engine()
    }

    /// Instantiates the component and looks its connector's functions up, typed: a
    /// function of the wrong type is an error here, before the guest runs anything.
    pub async fn instantiate(&self, store: &mut Store<StepCtx>) -> wasmtime::Result<Connector> {
        let instance = self.pre.instantiate_async(&mut *store).await?;
        Connector::new(&instance, store, &self.exports)
    }
}

fn find_exports(component: &Component, version: Version) -> Result<Exports, String> {
    let name = version.interface("connector");
    let parent = component.get_export_index(None, &name);
    let find = |func: &str| {
        component
            .get_export_index(parent.as_ref(), func)
            .ok_or_else(|| format!("{name} has no function {func}"))
    };
    Ok(Exports {
        manifest: find("manifest")?,
        validate: find("validate")?,
        disabled_steps: find("disabled-steps")?,
        run_step: find("run-step")?,
    })
}

/// A connector's functions in one instance.
pub struct Connector {
    /// Lifted with caps by `capabilities::lift::manifest`.
    pub manifest: Func,
    validate: TypedFunc<(), Outcome>,
    /// Lifted with caps by `capabilities::lift::disabled_steps`.
    pub disabled_steps: Func,
    run_step: TypedFunc<(String,), Outcome>,
}

impl Connector {
    fn new(
        instance: &Instance,
        store: &mut Store<StepCtx>,
        exports: &Exports,
    ) -> wasmtime::Result<Self> {
        let func = |store: &mut Store<StepCtx>, index: &ComponentExportIndex| {
            instance
                .get_func(&mut *store, index)
                .ok_or_else(|| wasmtime::Error::msg("a connector function is missing"))
        };
        let manifest = func(store, &exports.manifest)?;
        let disabled_steps = func(store, &exports.disabled_steps)?;
        crate::capabilities::lift::check_export_types(manifest, disabled_steps, store)?;
        Ok(Connector {
            manifest,
            validate: instance.get_typed_func(&mut *store, exports.validate)?,
            disabled_steps,
            run_step: instance.get_typed_func(&mut *store, exports.run_step)?,
        })
    }

    pub async fn validate(
        &self,
        store: &mut Store<StepCtx>,
    ) -> wasmtime::Result<Result<(), StepError>> {
        let (out,) = self.validate.call_async(&mut *store, ()).await?;
        Ok(out)
    }

    pub async fn run_step(
        &self,
        store: &mut Store<StepCtx>,
        step: &str,
    ) -> wasmtime::Result<Result<(), StepError>> {
        let (out,) = self
            .run_step
            .call_async(&mut *store, (step.to_string(),))
            .await?;
        Ok(out)
    }
}
