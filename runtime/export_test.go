package runtime

// Poll is poll, for the memory sampler of the external benchmarks.
var Poll = poll
