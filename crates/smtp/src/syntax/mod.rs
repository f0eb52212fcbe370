//! The wire syntax of SMTP: command lines in (`command`, RFC 5321 §4.1 with the ESMTP parameters
//! Wharf offers) and replies out (`reply`, RFC 5321 §4.2 with RFC 3463 enhanced codes). Pure: no
//! state, no I/O.

pub mod command;
pub mod reply;
