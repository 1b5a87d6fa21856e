//! UPDATE tests (filled in below).
