//! Profile handlers and P/D deciders.

pub mod deciders;
pub mod disagg;
pub mod routing;
pub mod single;

pub use deciders::{AlwaysDisaggDecider, MultimodalDecider, PrefixBasedPdDecider};
pub use disagg::{DisaggProfileHandler, StageOrder};
pub use routing::{DataParallelProfileHandler, HeaderProfileHandler};
pub use single::SingleProfileHandler;
