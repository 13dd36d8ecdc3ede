//! JS symbolication through HTTP.
