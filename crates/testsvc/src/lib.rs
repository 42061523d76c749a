//! Test-only services for kflite's tests. Production crates depend on this
//! crate only as a dev-dependency.

pub mod control_plane;
pub mod mariadb;
pub mod seaweedfs;

pub use control_plane::{Binaries, ControlPlane, ControlPlaneError};
