//! The `config` import: the instance's non-secret fields, its id and name. A secret
//! field is never readable; the guest can only learn that it is set.

use super::StepCtx;
use crate::bindings::config::{ConfigError, Host};

impl Host for StepCtx {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<Option<String>, ConfigError>> {
        if self.run.secret_fields.contains(&name) || self.run.secrets.contains(&name) {
            let msg =
                format!("config field {name} is a secret: use it by reference in an http request");
            self.run.log.host(&self.run, &self.step, "warn", &msg);
            return Ok(Err(ConfigError::Secret(msg)));
        }
        Ok(Ok(self.run.config.get(&name).cloned()))
    }

    fn has_secret(&mut self, name: String) -> wasmtime::Result<bool> {
        Ok(self.run.secrets.contains(&name))
    }

    fn instance_id(&mut self) -> wasmtime::Result<String> {
        Ok(self.run.instance_id.clone())
    }

    fn instance_name(&mut self) -> wasmtime::Result<String> {
        Ok(self.run.instance_name.clone())
    }
}
