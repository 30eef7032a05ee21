//! Accuracy of the vectorised elementary functions and activations, on every SIMD level.
