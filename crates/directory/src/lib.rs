//! wharf-directory (being written).
