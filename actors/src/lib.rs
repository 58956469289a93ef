//! weir-actors
