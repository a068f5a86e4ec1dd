//! Drills: hermetic checking itself the way a platform team schedules it (docs/drills.md).
//!
//! - [`poison`]: the cache-poisoning drill (`hermetic drill poison`): every attack of the
//!   restore catalog against a scratch copy of the deployment's cache, each run as a real
//!   restore, plus checks of the deployment itself.
pub mod poison;
