//! Test rigs: real services the end-to-end tests start themselves.
