//! wharf-smtp (being written).
