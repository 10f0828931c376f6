//! Exercise 1: Pool.map, by hand with array_split and Process, and with threads.
