//! corral's pure logic: what can be checked without running anything. The host
//! (`corral-host`) re-exports these modules; the fuzz targets depend on this crate.

pub mod canonical;
pub mod classes;
pub mod glob;
pub mod limits;
pub mod manifest;
pub mod policy;
pub mod text;
pub mod url_glob;
