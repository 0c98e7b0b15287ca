package redisstore

// EscapeGlob exposes escapeGlob to the external tests.
var EscapeGlob = escapeGlob
