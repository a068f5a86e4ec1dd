//! Test-only switches that turn one restore check off, so that a test can show the poison
//! drill (`drill::poison`) catching the gap. Compiled only with the `fault-hooks` feature,
//! which only test builds enable: a build without it has neither the switches nor the
//! branch that reads them.
use std::sync::atomic::{AtomicBool, Ordering};

static SKIP_KEY_CHECK: AtomicBool = AtomicBool::new(false);

/// Makes every restore in this process skip the comparison of the signed cache key with
/// the requested one (step `key`), until called again with `false`.
pub fn skip_key_check(skip: bool) {
    SKIP_KEY_CHECK.store(skip, Ordering::SeqCst);
}

pub(super) fn key_check_skipped() -> bool {
    SKIP_KEY_CHECK.load(Ordering::SeqCst)
}
