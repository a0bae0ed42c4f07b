//! Health checking: keepalived's checkers and the quorum logic that drives VIP announcement.
