//! wharf-pop3 (being written).
