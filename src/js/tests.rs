//! Tests of the JS lookup module.
