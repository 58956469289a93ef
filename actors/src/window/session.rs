//! Session merging for one key (to be implemented).
