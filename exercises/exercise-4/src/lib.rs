//! Exercise 4: broadcast, reduce and allreduce, linear and along trees.
