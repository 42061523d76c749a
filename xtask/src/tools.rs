//! Installing and locating the external tools tests use.
