package redisstore

// EscapeGlob exposes escapeGlob to the external tests.
var EscapeGlob = escapeGlob

// AlwaysPipelined makes every call of s go through its auto-pipeliner, as
// if another call were always in flight, so that the suite covers that
// route; s must have Options.AutoPipeline.
func AlwaysPipelined(s *Store) *Store {
	if s.ap == nil {
		panic("AlwaysPipelined: the store has no auto-pipeliner")
	}
	s.busy.Add(1)
	return s
}
