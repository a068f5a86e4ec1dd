//! API tests: the daemon in-process on a temporary socket. The files mirror the routes
//! (`v1/jobs/cancel.rs` → `POST /v1/jobs/{id}/cancel`); `errors.rs` is bad input and
//! refused clients on any route, `crash.rs` the real `hermeticd` binary killed with
//! SIGKILL, `socket_activation.rs` it started as systemd would. Tests that observe the whole
//! daemon process (its children, descriptors, memory) are in `tests/process/`.
mod support;

mod check_config;
mod crash;
mod errors;
mod metrics;
mod shutdown;
mod socket_activation;
mod v1;
