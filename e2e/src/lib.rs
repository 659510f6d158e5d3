//! Whole-system tests of SaaSaparilla Notifications live in `tests/`; the
//! local test environment they run against is `env/notif-env`, and the way
//! tests reach it is the `testenv` crate.
