//! The alignment engine on the worker: feature matrices of each record and
//! on-device accumulation of per-head counts into `PartialCounts`.
//!
//! Dense attention never leaves the device: per batch only per-head counters
//! ([batch, heads] and [batch, heads, features] arrays) come back to the host.

pub mod accumulate;
pub mod features;
pub mod fused;
pub mod null;
pub mod visualize;
