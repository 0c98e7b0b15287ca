// Package bench compares the session codecs and compression layers of this
// repository against the JSON default: Load+Save of a changed session on a
// memstore, at 500 B, 5 KB and 50 KB sessions (sized by their JSON
// encoding), reporting ns/op, B/op, allocs/op and the bytes stored. It has
// benchmarks only; run them with
//
//	cd codecs/bench && go test -run '^$' -bench . -benchmem
package bench
