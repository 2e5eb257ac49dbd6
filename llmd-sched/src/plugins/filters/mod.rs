//! Built-in filters.

pub mod concurrency;
pub mod header_testing;
pub mod label;
pub mod prefix_affinity;
pub mod role;
pub mod saturation;
pub mod slo_tier;
pub mod utilization;

pub use concurrency::{ConcurrencyDetector, ConcurrencyMode};
pub use header_testing::HeaderBasedTestingFilter;
pub use label::{ByLabelFilter, LabelSelectorFilter};
pub use prefix_affinity::PrefixCacheAffinityFilter;
pub use role::{RoleFilter, Stage};
pub use saturation::SaturationDetector;
pub use slo_tier::SloHeadroomTierFilter;
pub use utilization::{UtilizationDetector, UtilizationFilter};
