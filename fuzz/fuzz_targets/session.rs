//! Fuzz target `session`: see `sqlhsm_fuzz::session` and README "Fuzzing".
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        sqlhsm_fuzz::init("session");
    },
    |data: &[u8]| {
        sqlhsm_fuzz::session::run(data);
    }
);
