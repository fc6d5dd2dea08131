//! `trail-insight`: insight detection jobs over a trail store (IpInsight and rate insights).

pub use trail_query;
