//! API tests: the daemon in-process on a temporary socket. The files mirror the routes
//! (`v1/jobs/cancel.rs` → `POST /v1/jobs/{id}/cancel`); `errors.rs` is bad input and
//! refused clients on any route, `load.rs` many jobs from many clients, `crash.rs` the
//! real `hermeticd` binary killed with SIGKILL, `socket_activation.rs` it started as
//! systemd would.
mod support;

mod check_config;
mod crash;
mod errors;
mod load;
mod metrics;
mod shutdown;
mod socket_activation;
mod v1;
