//! Fuzz target `templates`: see `sqlhsm_fuzz::templates` and README "Fuzzing".
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        sqlhsm_fuzz::init("templates");
    },
    |data: &[u8]| {
        sqlhsm_fuzz::templates::run(data);
    }
);
