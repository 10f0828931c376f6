//! Exercise 3: gather a value from every rank on rank 0, three ways.
