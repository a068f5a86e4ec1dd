#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hermetic_fuzz_harness::profile_parse(data);
});
