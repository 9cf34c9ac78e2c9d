//! Fuzz target `attributes`: see `sqlhsm_fuzz::attributes` and README "Fuzzing".
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        sqlhsm_fuzz::init("attributes");
    },
    |data: &[u8]| {
        sqlhsm_fuzz::attributes::run(data);
    }
);
