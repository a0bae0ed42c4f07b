//! The appliance: `fulcrumd` and `fulcrum`.
