// Swift has no cache-prefetch instruction; this one-line wrapper lets the
// engine's linear kernels ask for the weight panels they will read next.
static inline void kick_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }
