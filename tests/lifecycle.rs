//! C_Initialize / C_Finalize / C_GetInfo (PKCS#11 3.0 §5.4), in one sequential test: this file's
//! process owns the module's global state and walks it through its life.

mod common;

use cryptoki::context::{CInitializeArgs, CInitializeFlags};
use cryptoki::error::RvError;

use common::{expect_rv, load, TestDb};

#[test]
fn initialize_finalize_lifecycle() {
    let db = TestDb::new("lifecycle");
    db.set_env();
    let p = load();

    // Before C_Initialize every function but C_GetFunctionList/C_GetInterface/C_Initialize
    // answers CKR_CRYPTOKI_NOT_INITIALIZED.
    expect_rv(p.get_library_info(), RvError::CryptokiNotInitialized);
    expect_rv(p.get_all_slots(), RvError::CryptokiNotInitialized);
    expect_rv(
        p.get_slot_info(cryptoki::slot::Slot::try_from(0u64).unwrap()),
        RvError::CryptokiNotInitialized,
    );
    // C_Finalize before C_Initialize, too.
    expect_rv(p.clone().finalize(), RvError::CryptokiNotInitialized);

    let args = || CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK);
    p.initialize(args()).expect("C_Initialize");
    expect_rv(p.initialize(args()), RvError::CryptokiAlreadyInitialized);

    let info = p.get_library_info().expect("C_GetInfo");
    let v = info.cryptoki_version();
    assert_eq!((v.major(), v.minor()), (3, 2), "cryptokiVersion is 3.2");
    assert!(
        info.manufacturer_id().to_lowercase().contains("sqlhsm"),
        "manufacturerID names sqlhsm: {:?}",
        info.manufacturer_id()
    );
    assert!(!info.library_description().is_empty());
    println!(
        "C_GetInfo: {} / {} v{}",
        info.manufacturer_id(),
        info.library_description(),
        info.library_version()
    );

    // An initialised module always has the slot with the uninitialised token.
    let slots = p.get_all_slots().expect("C_GetSlotList");
    assert!(!slots.is_empty(), "at least the empty-token slot");

    p.clone().finalize().expect("C_Finalize");
    expect_rv(p.get_all_slots(), RvError::CryptokiNotInitialized);
    expect_rv(p.clone().finalize(), RvError::CryptokiNotInitialized);

    // The module can be initialised again after C_Finalize, and it does not leak state.
    p.initialize(args()).expect("second C_Initialize");
    p.get_library_info().expect("C_GetInfo after re-initialize");
    // Initialising with no locking flags (NULL mutex callbacks, no CKF_OS_LOCKING_OK) is also
    // allowed; we only check that finalize/initialize keep working.
    p.clone().finalize().expect("second C_Finalize");
    p.initialize(CInitializeArgs::new(CInitializeFlags::empty()))
        .expect("C_Initialize without flags");
    p.finalize().expect("third C_Finalize");
}
