//! Makes PyO3's interpreter cfgs (e.g. `Py_GIL_DISABLED` for free-threaded
//! CPython) visible to this crate's `cfg!` checks.
fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}
