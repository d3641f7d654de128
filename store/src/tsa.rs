//! RFC 3161 client (being written).
