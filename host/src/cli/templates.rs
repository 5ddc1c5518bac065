//! The files `corral plugin new` writes, compiled into corral: each language's project
//! template and its SDK, vendored so a project builds outside this repository. A test
//! holds each SDK table equal to the SDK's folder.

/// (path, text) of each file.
pub type Files = &'static [(&'static str, &'static str)];

/// A table of files under one folder of this repository (relative to `host/src/cli`).
macro_rules! files {
    ($root:literal; $($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!($root, $path)))),*]
    };
}

/// The Rust SDK, written to `vendor/corral-sdk/`.
pub const RUST_SDK: Files = files![
    "../../../plugins/sdk/";
    "Cargo.toml",
    "src/capabilities.rs",
    "src/carry.rs",
    "src/connector.rs",
    "src/entity.rs",
    "src/error.rs",
    "src/graph.rs",
    "src/http.rs",
    "src/kv.rs",
    "src/lib.rs",
    "src/log.rs",
    "src/manifest.rs",
    "src/projection.rs",
    "src/props.rs",
    "src/standard.rs",
    "src/testing.rs",
    "src/time.rs",
    "wit/corral.wit",
];

/// The TypeScript SDK, written to `vendor/corral-sdk/`.
pub const TYPESCRIPT_SDK: Files = files![
    "../../../plugins/sdk-ts/";
    "README.md",
    "bin/corral-sdk.mjs",
    "package.json",
    "scripts/gen-types.mjs",
    "src/capabilities.ts",
    "src/classes.ts",
    "src/config.ts",
    "src/connector.ts",
    "src/datamodel.ts",
    "src/entity.ts",
    "src/errors.ts",
    "src/graph.ts",
    "src/http.ts",
    "src/index.ts",
    "src/kv.ts",
    "src/log.ts",
    "src/props.ts",
    "src/standard.ts",
    "src/testing/index.ts",
    "src/testing/state.ts",
    "src/testing/wit/clocks.ts",
    "src/testing/wit/config.ts",
    "src/testing/wit/graph.ts",
    "src/testing/wit/http.ts",
    "src/testing/wit/kv.ts",
    "src/testing/wit/log.ts",
    "src/text.ts",
    "src/time.ts",
    "test/sdk.test.ts",
    "tsconfig.json",
    "types/interfaces/corral-integration-config.d.ts",
    "types/interfaces/corral-integration-connector.d.ts",
    "types/interfaces/corral-integration-graph.d.ts",
    "types/interfaces/corral-integration-http.d.ts",
    "types/interfaces/corral-integration-kv.d.ts",
    "types/interfaces/corral-integration-log.d.ts",
    "types/interfaces/wasi-clocks-monotonic-clock.d.ts",
    "types/interfaces/wasi-io-poll.d.ts",
    "types/runtime.d.ts",
    "types/typescript-plugin.d.ts",
    "wit/corral.wit",
    "wit/deps/clocks/monotonic-clock.wit",
    "wit/deps/io/poll.wit",
    "wit/typescript.wit",
];

/// The Python SDK's package, written to `corral_sdk/` (importable from the project).
pub const PYTHON_SDK: Files = files![
    "../../../plugins/sdk-py/corral_sdk/";
    "__init__.py",
    "_host.py",
    "capabilities.py",
    "classes.py",
    "config.py",
    "connector.py",
    "datamodel.py",
    "entity.py",
    "errors.py",
    "graph.py",
    "http.py",
    "kv.py",
    "log.py",
    "props.py",
    "testing.py",
    "time.py",
    "wit/corral.wit",
];

/// What every project has: the replay test's config, recording and snapshot (one API, one graph, whatever the language).
pub const COMMON: Files = files![
    "../../templates/common/";
    "corral-test.toml.tmpl",
    "recordings/__ID__-example.jsonl.tmpl",
    "snapshots/__ID__-example.json.tmpl",
];

/// The rust project, by template path (`.tmpl` is dropped, `gitignore` becomes `.gitignore`).
pub const RUST: Files = files![
    "../../templates/rust/";
    "Cargo.lock.tmpl",
    "Cargo.toml.tmpl",
    "README.md.tmpl",
    "gitignore.tmpl",
    "rust-toolchain.toml.tmpl",
    "src/lib.rs.tmpl",
];

/// The typescript project, by template path (`.tmpl` is dropped, `gitignore` becomes `.gitignore`).
pub const TYPESCRIPT: Files = files![
    "../../templates/typescript/";
    "README.md.tmpl",
    "gitignore.tmpl",
    "package.json.tmpl",
    "src/index.ts.tmpl",
    "test/widgets.test.ts.tmpl",
    "tsconfig.json.tmpl",
];

/// The python project, by template path (`.tmpl` is dropped, `gitignore` becomes `.gitignore`).
pub const PYTHON: Files = files![
    "../../templates/python/";
    "README.md.tmpl",
    "app.py.tmpl",
    "gitignore.tmpl",
    "pyproject.toml.tmpl",
    "requirements.txt.tmpl",
    "tests/test_widgets.py.tmpl",
];
