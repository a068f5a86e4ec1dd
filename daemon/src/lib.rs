//! hermeticd as a library: the HTTP API on a Unix socket, the job queue, job records in
//! SQLite, the config file and the server loop. Jobs run on the engine (`hermetic`) on the
//! daemon's blocking threads; `hermeticd` and the CLI's `hermetic daemon serve` are thin
//! callers of [`server::run_daemon`]. See ARCHITECTURE.md for the map.
pub mod api;
pub mod config;
pub mod queue;
pub mod server;
pub mod store;
