//! Exercise 5: ping-pong latency and bandwidth, measured carefully and plotted.
