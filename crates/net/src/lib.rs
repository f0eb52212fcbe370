//! wharf-net (being written).
