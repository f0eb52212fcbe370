//! wharf-imap (being written).
