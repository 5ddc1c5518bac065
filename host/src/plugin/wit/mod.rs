//! The WIT versions this host offers, side by side in one linker.
//!
//! Each version is a frozen file under `wit/<version>/` and a module here that says which
//! capability registers what under that version's interface names ([`v0_1`], [`v0_2`]).
//! The capabilities pass their own types, which the component model matches by shape, so
//! a version whose interface keeps its shape needs no conversion; one that changes it
//! (0.2's typed log fields) picks the capability's entry for that shape. A component's
//! version is the one of the `connector` it exports ([`Version::of`]); whatever it
//! imports is checked by the linker.

pub mod connector;
pub mod v0_1;
pub mod v0_2;

use crate::capabilities::StepCtx;
use wasmtime::component::{Component, Linker};

/// A WIT version of `corral:integration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    V0_1,
    V0_2,
}

impl Version {
    /// Every version this host offers, oldest first.
    pub const ALL: [Version; 2] = [Version::V0_1, Version::V0_2];

    /// The version as in a package name: `0.1.0`.
    pub fn number(self) -> &'static str {
        match self {
            Version::V0_1 => "0.1.0",
            Version::V0_2 => "0.2.0",
        }
    }

    /// `corral:integration@0.1.0`
    pub fn package(self) -> String {
        format!("corral:integration@{}", self.number())
    }

    /// An interface's full name in this version: `corral:integration/http@0.1.0`.
    pub fn interface(self, name: &str) -> String {
        format!("corral:integration/{name}@{}", self.number())
    }

    /// The version of the `connector` a component exports, if it exports one.
    pub fn of(component: &Component) -> Option<Version> {
        Version::ALL.into_iter().rev().find(|v| {
            component
                .get_export_index(None, v.interface("connector").as_str())
                .is_some()
        })
    }

    /// The frozen WIT text of this version.
    pub fn wit(self) -> &'static str {
        match self {
            Version::V0_1 => include_str!("../../../../wit/0.1.0/corral.wit"),
            Version::V0_2 => include_str!("../../../../wit/0.2.0/corral.wit"),
        }
    }
}

/// The packages this host offers, for messages: `corral:integration@0.1.0 and @0.2.0`.
pub fn offered() -> String {
    let numbers: Vec<String> = Version::ALL
        .iter()
        .map(|v| format!("@{}", v.number()))
        .collect();
    format!("corral:integration{}", numbers.join(" and "))
}

/// Registers every version's imports.
pub fn add_to_linker(linker: &mut Linker<StepCtx>) -> wasmtime::Result<()> {
    v0_1::add_to_linker(linker)?;
    v0_2::add_to_linker(linker)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::tests::context_with;
    use crate::engine::{PoolSize, build_engine};
    use sha2::{Digest, Sha256};
    use wasmtime::Store;
    use wit_parser::{LiftLowerAbi, ManglingAndAbi};

    /// A component built from version `v`'s WIT alone, importing every function of every
    /// interface and exporting the connector (its functions trap if called).
    fn every_import_of(v: Version) -> Vec<u8> {
        component_of(v, v.wit())
    }

    /// A component of the `plugin` world of `wit` (a version's text, perhaps altered).
    fn component_of(v: Version, wit: &str) -> Vec<u8> {
        let mut resolve = wit_parser::Resolve::default();
        let pkg = resolve
            .push_str(format!("corral-{}.wit", v.number()), wit)
            .unwrap();
        let world = resolve.select_world(&[pkg], Some("plugin")).unwrap();
        let mangling = ManglingAndAbi::Legacy(LiftLowerAbi::Sync);
        let mut module = wit_component::dummy_module(&resolve, world, mangling);
        wit_component::embed_component_metadata(
            &mut module,
            &resolve,
            world,
            wit_component::StringEncoding::UTF8,
        )
        .unwrap();
        wit_component::ComponentEncoder::default()
            .module(&module)
            .unwrap()
            .validate(true)
            .encode()
            .unwrap()
    }

    /// The host registers each version's imports by hand: this links a component that
    /// imports all of them, with the types of the frozen file, and finds its exports
    /// typed. A renamed function or a changed type fails here.
    #[tokio::test]
    async fn every_import_and_export_of_each_version_links() {
        let engine = build_engine(&PoolSize { instances: 4 }).unwrap();
        let linker = crate::plugin::build_linker(&engine).unwrap();
        for v in Version::ALL {
            let component = Component::new(&engine, every_import_of(v)).unwrap();
            assert_eq!(Version::of(&component), Some(v));
            let pre = linker
                .instantiate_pre(&component)
                .unwrap_or_else(|e| panic!("{}: {e:#}", v.package()));
            let guest = connector::GuestPre::new(pre).unwrap();
            assert_eq!(guest.version, v);
            let mut store = Store::new(&engine, StepCtx::new(context_with(&[], &[]), "link"));
            store.set_epoch_deadline(1000);
            if let Err(e) = guest.instantiate(&mut store).await {
                panic!("{}: {e:#}", v.package());
            }
        }
    }

    /// A published version never changes: a new one is a new directory.
    #[test]
    fn published_wit_versions_are_frozen() {
        let frozen = [
            (
                Version::V0_1,
                "14d70c52ed60205e725402382d7c76b1ac00ef5981ec20dc7bc41796eda7a493",
            ),
            (
                Version::V0_2,
                "8c19a42c3985b23951077851608d8584cdedafde7e31d2242f319243ed1bdfba",
            ),
        ];
        for (version, sha) in frozen {
            let got = hex::encode(Sha256::digest(version.wit()));
            assert_eq!(
                got,
                sha,
                "wit/{}/corral.wit changed: publish a new version instead",
                version.number()
            );
        }
    }

    /// Each SDK binds to its own copy of the newest WIT (so it builds outside this
    /// repository): every copy is the frozen file.
    #[test]
    fn the_sdks_wit_is_the_newest_frozen_version() {
        for (path, vendored) in [
            (
                "plugins/sdk/wit/corral.wit",
                include_str!("../../../../plugins/sdk/wit/corral.wit"),
            ),
            (
                "plugins/sdk-ts/wit/corral.wit",
                include_str!("../../../../plugins/sdk-ts/wit/corral.wit"),
            ),
            (
                "plugins/sdk-py/corral_sdk/wit/corral.wit",
                include_str!("../../../../plugins/sdk-py/corral_sdk/wit/corral.wit"),
            ),
        ] {
            assert_eq!(vendored, Version::V0_2.wit(), "{path}");
        }
    }

    /// An export of the wrong type is refused before the guest runs, even one the host
    /// only calls through a capped lift (`disabled-steps`).
    #[tokio::test]
    async fn a_mistyped_export_is_refused_at_instantiation() {
        let engine = build_engine(&PoolSize { instances: 4 }).unwrap();
        let linker = crate::plugin::build_linker(&engine).unwrap();
        let v = Version::V0_2;
        let wit = v.wit().replace(
            "disabled-steps: func() -> list<string>;",
            "disabled-steps: func() -> list<u32>;",
        );
        assert_ne!(wit, v.wit());
        let component = Component::new(&engine, component_of(v, &wit)).unwrap();
        let guest = connector::GuestPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
        let mut store = Store::new(&engine, StepCtx::new(context_with(&[], &[]), "link"));
        store.set_epoch_deadline(1000);
        let Err(e) = guest.instantiate(&mut store).await else {
            panic!("a mistyped disabled-steps was accepted")
        };
        assert!(format!("{e:#}").contains("type mismatch"), "{e:#}");
    }

    #[test]
    fn each_file_declares_its_own_version() {
        for v in Version::ALL {
            assert!(
                v.wit().contains(&format!("package {};", v.package())),
                "wit/{} does not declare {}",
                v.number(),
                v.package()
            );
        }
        assert_eq!(offered(), "corral:integration@0.1.0 and @0.2.0");
    }
}
