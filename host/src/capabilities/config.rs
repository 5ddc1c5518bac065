//! The `config` import: the instance's non-secret fields, its id and name. A secret
//! field is never readable; the guest can only learn that it is set.

use super::StepCtx;
use wasmtime::component::{ComponentType, Lift, Linker, Lower};

/// A run's config as the `config` capability serves it.
#[derive(Debug, Default)]
pub struct ConfigState {
    /// Non-secret values, as strings.
    pub values: std::collections::BTreeMap<String, String>,
    /// Fields the manifest declares secret (readable only by reference).
    pub secret_fields: std::collections::BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, ComponentType, Lift, Lower)]
#[component(variant)]
pub enum ConfigError {
    /// The field is a secret: its value is only usable by reference in `http`.
    #[component(name = "secret")]
    Secret(String),
}

/// Registers `config` under `interface`.
pub fn add_to_linker(linker: &mut Linker<StepCtx>, interface: &str) -> wasmtime::Result<()> {
    let mut inst = linker.instance(interface)?;
    inst.func_wrap("get", |mut store, (name,): (String,)| {
        Ok((store.data_mut().config_get(name),))
    })?;
    inst.func_wrap("has-secret", |store, (name,): (String,)| {
        Ok((store.data().has_secret(&name),))
    })?;
    inst.func_wrap("instance-id", |store, (): ()| {
        Ok((store.data().run.instance_id.clone(),))
    })?;
    inst.func_wrap("instance-name", |store, (): ()| {
        Ok((store.data().run.instance_name.clone(),))
    })?;
    Ok(())
}

impl StepCtx {
    /// A non-secret field's value; a secret field is refused (and the attempt logged).
    pub fn config_get(&mut self, name: String) -> Result<Option<String>, ConfigError> {
        if self.run.config.secret_fields.contains(&name) || self.run.secrets.contains(&name) {
            let msg =
                format!("config field {name} is a secret: use it by reference in an http request");
            self.run.log.host(&self.run, &self.step, "warn", &msg);
            return Err(ConfigError::Secret(msg));
        }
        Ok(self.run.config.values.get(&name).cloned())
    }

    pub fn has_secret(&self, name: &str) -> bool {
        self.run.secrets.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::tests::{context_with, step};

    #[test]
    fn a_secret_field_is_never_read_and_a_plain_one_is() {
        let run = context_with(&[("apiUrl", "https://example.test/")], &["token"]);
        let mut ctx = step(&run);
        assert_eq!(
            ctx.config_get("apiUrl".into()),
            Ok(Some("https://example.test/".into()))
        );
        assert_eq!(ctx.config_get("missing".into()), Ok(None));
        let Err(ConfigError::Secret(msg)) = ctx.config_get("token".into()) else {
            panic!("a secret field was readable")
        };
        assert!(msg.contains("token is a secret"), "{msg}");
        assert!(ctx.has_secret("token"));
        assert!(!ctx.has_secret("apiUrl"));
        let logged = run.log.records();
        assert_eq!(logged.len(), 1);
        assert_eq!(logged[0].level, "warn");
    }
}
