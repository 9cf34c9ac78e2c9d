//! Embedded, versioned SQL migrations per dialect.
