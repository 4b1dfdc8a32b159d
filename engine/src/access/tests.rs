//! Tests of the loaded rules and the decision.
