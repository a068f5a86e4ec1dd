//! Dual runs: build twice, the second time varying what no pin controls, and decide
//! whether the outputs are reproducible.
//!
//! - [`vary`]: derives the second run's spec from the canonical one;
//! - [`dual`]: runs both (concurrently), and a noise pass when they differ;
//! - [`compare`]: the manifest diff that decides the verdict;
//! - [`explain`]: suspected causes (timestamp leaks, intrinsic randomness) and reports.
//!
//! Comparing decides; explaining only helps a human, and never changes a verdict.
pub mod compare;
pub mod dual;
pub mod explain;
pub mod fleet;
pub mod vary;
