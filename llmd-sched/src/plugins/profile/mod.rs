//! Profile handlers and P/D deciders.

pub mod deciders;
pub mod disagg;
pub mod pd_legacy;
pub mod routing;
pub mod single;

pub use deciders::{AlwaysDisaggDecider, MultimodalDecider, PrefixBasedPdDecider};
pub use disagg::{DisaggProfileHandler, StageOrder};
pub use pd_legacy::PdProfileHandler;
pub use routing::{DataParallelProfileHandler, HeaderProfileHandler};
pub use single::SingleProfileHandler;
