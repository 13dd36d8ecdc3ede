//! Native symbolication through HTTP.
