//! Exercise 2: processes launched by hand, a ring, and what starting them costs.
