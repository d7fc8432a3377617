//! A value replaced while running: the TLS configuration and authentication files on
//! SIGHUP, the index store after a write failure.
//!
//! Owns: the swap itself. Readers take an `Arc` of the current value and keep it as long
//! as they need, however often it is replaced meanwhile.

use std::sync::{Arc, PoisonError, RwLock};

/// A value that can be replaced while readers keep the one they took.
#[derive(Debug)]
pub struct Swap<T>(RwLock<Arc<T>>);

impl<T> Swap<T> {
    /// Holds `value`.
    pub fn new(value: T) -> Swap<T> {
        Swap(RwLock::new(Arc::new(value)))
    }

    /// The current value.
    pub fn get(&self) -> Arc<T> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the value for later readers.
    pub fn set(&self, value: T) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(value);
    }
}
