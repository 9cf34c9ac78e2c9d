//! Fuzz target `mechanisms`: see `sqlhsm_fuzz::mechanisms` and README "Fuzzing".
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        sqlhsm_fuzz::init("mechanisms");
    },
    |data: &[u8]| {
        sqlhsm_fuzz::mechanisms::run(data);
    }
);
