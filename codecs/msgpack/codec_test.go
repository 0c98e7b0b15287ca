package msgpack_test

import "github.com/typedsession/session/codecs/msgpack"

// testCodec is the codec session_test.go runs its conformance tests on.
var testCodec = msgpack.Codec{}
